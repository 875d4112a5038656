"""Rancher's JSON in and out: answers decoded into core values, error answers into the bot's error tree."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx

from bot.core.errors import ConflictError, PermanentUpstreamError, TransientUpstreamError, UpstreamError
from bot.core.model import GlobalRole, PolicyRule, RancherUser, RoleBinding, RoleTemplate, Scope

Item = dict[str, Any]
SERVICE = "Rancher"
CRTBS = "clusterroletemplatebindings"
PRTBS = "projectroletemplatebindings"
GRBS = "globalrolebindings"
KIND_SCOPE = {GRBS: Scope.GLOBAL, CRTBS: Scope.CLUSTER, PRTBS: Scope.PROJECT}
RETRY_STATUS = frozenset({429, 502, 503, 504})


def _json_decoder() -> Callable[[bytes], Any]:
    """orjson when installed (2-3x faster on multi-megabyte binding lists, same objects), else the stdlib."""
    try:
        import orjson  # noqa: PLC0415 - optional speed-up
    except ImportError:  # pragma: no cover - orjson is a declared dependency; keep working without it
        return json.loads
    return orjson.loads


_loads = _json_decoder()


def text_of(value: Any) -> str:
    """A filter value as Rancher compares it (booleans as `true`/`false`)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def path_of(url: str) -> str:
    """The path of a URL, for log lines."""
    return urlsplit(url).path or url


def json_of(response: httpx.Response) -> Item:
    """The answer's JSON object, or a permanent error naming the status."""
    try:
        body = _loads(response.content)
    except ValueError as exc:  # orjson.JSONDecodeError is a ValueError too
        raise PermanentUpstreamError(SERVICE, f"answer was not JSON (HTTP {response.status_code})") from exc
    if not isinstance(body, dict):
        raise PermanentUpstreamError(SERVICE, f"unexpected answer (HTTP {response.status_code})")
    return body


def retry_after_of(response: httpx.Response) -> float | None:
    """Retry-After in seconds, when the answer has a readable one."""
    value = response.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def error_from(method: str, response: httpx.Response) -> UpstreamError:
    """Translate a Rancher error answer into the bot's error tree, keeping status, code and message."""
    status = response.status_code
    code = ""
    message = ""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        code = str(body.get("code") or "")
        message = str(body.get("message") or "")
        if body.get("fieldName"):
            message = f"{message} (field {body['fieldName']})".strip()
    if status == 401:
        code = code or "Unauthorized"
        message = "the API key was refused (401 must authenticate): it is wrong, expired or disabled"
    message = message or code or f"HTTP {status}"
    if status == 409:
        return ConflictError(SERVICE, message, status=status, code=code or "Conflict")
    transient = status in RETRY_STATUS or (status >= 500 and method != "POST")
    kind = TransientUpstreamError if transient else PermanentUpstreamError
    return kind(SERVICE, message, status=status, code=code)


def user_of(item: Item) -> RancherUser:
    """A user object as the core value."""
    return RancherUser(
        id=str(item["id"]),
        name=str(item.get("name") or item.get("username") or item["id"]),
        principal_ids=tuple(item.get("principalIds") or ()),
        enabled=item.get("enabled") is not False,
    )


def binding_of(plural: str, item: Item) -> RoleBinding:
    """A GRB, CRTB or PRTB object (by its collection name) as the core value."""
    get = item.get
    scope = KIND_SCOPE[plural]
    project_id = get("projectId") if scope is Scope.PROJECT else None
    cluster_id = get("clusterId") if scope is Scope.CLUSTER else None
    if project_id:
        cluster_id = str(project_id).split(":", 1)[0]
    return RoleBinding(
        id=str(item["id"]),
        scope=scope,
        role_id=str(get("globalRoleId") or get("roleTemplateId") or ""),
        cluster_id=cluster_id,
        project_id=project_id,
        user_id=get("userId") or None,
        user_principal_id=get("userPrincipalId") or None,
        group_principal_id=get("groupPrincipalId") or None,
        labels=get("labels") or {},  # freshly parsed JSON: nobody else holds these dicts
        annotations=get("annotations") or {},
        name=str(get("name") or ""),
        terminating=bool(get("removed")),
        uid=str(get("uuid") or ""),
    )


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in value) if isinstance(value, list) else ()


def rules_of(value: Any) -> tuple[PolicyRule, ...]:
    """A role's `rules` (Kubernetes PolicyRule JSON) as core values; anything malformed is skipped."""
    if not isinstance(value, list):
        return ()
    return tuple(
        PolicyRule(
            api_groups=_strings(rule.get("apiGroups")),
            resources=_strings(rule.get("resources")),
            verbs=_strings(rule.get("verbs")),
            non_resource_urls=_strings(rule.get("nonResourceURLs")),
        )
        for rule in value
        if isinstance(rule, dict)
    )


def role_template_of(item: Item) -> RoleTemplate:
    """A role template with its rules and the templates it inherits (`roleTemplateIds`)."""
    return RoleTemplate(
        id=str(item["id"]),
        name=str(item.get("name") or item["id"]),
        context=str(item.get("context") or ""),
        hidden=bool(item.get("hidden")),
        locked=bool(item.get("locked")),
        builtin=bool(item.get("builtin")),
        inherits=_strings(item.get("roleTemplateIds")),
        rules=rules_of(item.get("rules")),
    )


def global_role_of(item: Item) -> GlobalRole:
    """A global role with its rules and the cluster roles it gives in every downstream cluster."""
    return GlobalRole(
        id=str(item["id"]),
        name=str(item.get("name") or item["id"]),
        inherited_cluster_roles=_strings(item.get("inheritedClusterRoles")),
        rules=rules_of(item.get("rules")),
        builtin=bool(item.get("builtin")),
    )
