"""The v3 resource types the emulator serves: names, filterable fields, references, indexes, and field formats."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

GRB_OWNER_LABEL = "authz.management.cattle.io/grb-owner"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
"""Set to `rancher` on objects Rancher's controllers own (rancher pkg/controllers/options.go:20-21@v2.14.0)."""
DISPLAY_NAME_ANNOTATION = "auth.cattle.io/principal-display-name"

Obj = dict[str, Any]


@dataclass(frozen=True)
class ResourceType:
    """One v3 resource type: names, filterable fields and which fields are references."""

    name: str
    plural: str
    filters: tuple[str, ...]
    refs: tuple[str, ...] = ()
    bools: tuple[str, ...] = ()
    indexed: tuple[str, ...] = ()
    namespaced: bool = False
    writable: bool = False
    k8s: str = ""


_BINDING_REFS = ("roleTemplateId", "userId", "userPrincipalId", "groupId", "groupPrincipalId", "namespaceId")
_BINDING_INDEX = ("roleTemplateId", "userId", "userPrincipalId", "groupPrincipalId", "name")
RESOURCE_TYPES: tuple[ResourceType, ...] = (
    ResourceType(
        "user",
        "users",
        ("name", "username", "description", "enabled", "me", "mustChangePassword", "uuid", "created"),
        bools=("enabled", "me", "mustChangePassword"),
        k8s="users.management.cattle.io",
    ),
    ResourceType("principal", "principals", (), k8s="principals"),
    ResourceType(
        "token",
        "tokens",
        (
            "name",
            "userId",
            "authProvider",
            "ttl",
            "expiresAt",
            "expired",
            "enabled",
            "isDerived",
            "current",
            "description",
            "clusterId",
            "uuid",
            "created",
        ),
        refs=("userId", "clusterId"),
        bools=("expired", "enabled", "isDerived", "current"),
        k8s="tokens.management.cattle.io",
    ),
    ResourceType(
        "cluster",
        "clusters",
        ("name", "state", "driver", "provider", "internal", "description", "transitioning", "uuid", "created"),
        bools=("internal",),
        k8s="clusters.management.cattle.io",
    ),
    ResourceType(
        "project",
        "projects",
        ("name", "clusterId", "description", "state", "namespaceId", "backingNamespace", "uuid", "created"),
        refs=("clusterId", "namespaceId"),
        indexed=("clusterId",),
        namespaced=True,
        k8s="projects.management.cattle.io",
    ),
    ResourceType(
        "roleTemplate",
        "roleTemplates",
        (
            "name",
            "description",
            "context",
            "builtin",
            "hidden",
            "locked",
            "external",
            "administrative",
            "clusterCreatorDefault",
            "projectCreatorDefault",
            "uuid",
            "created",
        ),
        bools=(
            "builtin",
            "hidden",
            "locked",
            "external",
            "administrative",
            "clusterCreatorDefault",
            "projectCreatorDefault",
        ),
        k8s="roletemplates.management.cattle.io",
    ),
    ResourceType(
        "globalRole",
        "globalRoles",
        ("name", "description", "newUserDefault", "builtin", "uuid", "created"),
        bools=("newUserDefault", "builtin"),
        k8s="globalroles.management.cattle.io",
    ),
    ResourceType(
        "globalRoleBinding",
        "globalRoleBindings",
        ("name", "globalRoleId", "userId", "groupPrincipalId", "userPrincipalId", "uuid", "created"),
        refs=("globalRoleId", "userId", "groupPrincipalId", "userPrincipalId"),
        indexed=("globalRoleId", "userId", "groupPrincipalId", "userPrincipalId", "name"),
        writable=True,
        k8s="globalrolebindings.management.cattle.io",
    ),
    ResourceType(
        "clusterRoleTemplateBinding",
        "clusterRoleTemplateBindings",
        ("name", "clusterId", *_BINDING_REFS, "creatorId", "uuid", "created"),
        refs=("clusterId", *_BINDING_REFS),
        indexed=("clusterId", *_BINDING_INDEX),
        namespaced=True,
        writable=True,
        k8s="clusterroletemplatebindings.management.cattle.io",
    ),
    ResourceType(
        "projectRoleTemplateBinding",
        "projectRoleTemplateBindings",
        ("name", "projectId", *_BINDING_REFS, "serviceAccount", "creatorId", "uuid", "created"),
        refs=("projectId", *_BINDING_REFS),
        indexed=("projectId", *_BINDING_INDEX),
        namespaced=True,
        writable=True,
        k8s="projectroletemplatebindings.management.cattle.io",
    ),
    ResourceType(
        "setting", "settings", ("name", "value", "default", "customized", "source"), k8s="settings.management.cattle.io"
    ),
)
TYPES: dict[str, ResourceType] = {t.name: t for t in RESOURCE_TYPES}
BY_PATH: dict[str, ResourceType] = {}
for _t in RESOURCE_TYPES:
    BY_PATH[_t.name.lower()] = _t
    BY_PATH[_t.plural.lower()] = _t
CRTB = "clusterRoleTemplateBinding"
PRTB = "projectRoleTemplateBinding"
GRB = "globalRoleBinding"
BINDING_KINDS = {"crtb": CRTB, "prtb": PRTB, "grb": GRB}


def rfc3339(ts: float) -> str:
    """A Unix time as Rancher writes `created` and `removed` (RFC 3339, seconds, UTC)."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ts_ms(text: str) -> int:
    """An RFC 3339 time as the milliseconds of the `…TS` fields."""
    return int(datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp() * 1000)


def filter_text(value: Any) -> str:
    """A field value as filters and indexes compare it (booleans as `true`/`false`, None as empty)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def public(obj: Obj) -> Obj:
    """The object without the emulator's private `_` fields (the key secret, hidden flags)."""
    return {k: v for k, v in obj.items() if not k.startswith("_")}
