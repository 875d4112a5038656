"""Rancher v3 ("norman") API emulator on loopback, field for field per shared/reference/rancher-api.md."""

from __future__ import annotations

import argparse
import asyncio
import base64
import copy
import hashlib
import json
import random
import re
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlencode

import uvicorn
import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.core.principals import derive_user_id

DEMO_FIXTURE = Path(__file__).with_name("rancher_fixtures") / "demo.yaml"
NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
MAX_LIMIT = 10000
GRB_OWNER_LABEL = "authz.management.cattle.io/grb-owner"
DISPLAY_NAME_ANNOTATION = "auth.cattle.io/principal-display-name"
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_MODIFIERS = ("eq", "ne", "in", "notin")
_EXPIRES = "Wed 24 Feb 1982 18:42:00 GMT"
_STATUS_CODES = {
    400: "BadRequest",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllow",
    409: "Conflict",
    422: "InvalidBodyContent",
    429: "TooManyRequests",
    500: "ServerError",
    502: "BadGateway",
    503: "ServiceUnavailable",
    504: "GatewayTimeout",
}

Obj = dict[str, Any]


@dataclass(frozen=True)
class _Type:
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
_TYPES: tuple[_Type, ...] = (
    _Type(
        "user",
        "users",
        ("name", "username", "description", "enabled", "me", "mustChangePassword", "uuid", "created"),
        bools=("enabled", "me", "mustChangePassword"),
        k8s="users.management.cattle.io",
    ),
    _Type("principal", "principals", (), k8s="principals"),
    _Type(
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
    _Type(
        "cluster",
        "clusters",
        ("name", "state", "driver", "provider", "internal", "description", "transitioning", "uuid", "created"),
        bools=("internal",),
        k8s="clusters.management.cattle.io",
    ),
    _Type(
        "project",
        "projects",
        ("name", "clusterId", "description", "state", "namespaceId", "backingNamespace", "uuid", "created"),
        refs=("clusterId", "namespaceId"),
        indexed=("clusterId",),
        namespaced=True,
        k8s="projects.management.cattle.io",
    ),
    _Type(
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
    _Type(
        "globalRole",
        "globalRoles",
        ("name", "description", "newUserDefault", "builtin", "uuid", "created"),
        bools=("newUserDefault", "builtin"),
        k8s="globalroles.management.cattle.io",
    ),
    _Type(
        "globalRoleBinding",
        "globalRoleBindings",
        ("name", "globalRoleId", "userId", "groupPrincipalId", "userPrincipalId", "uuid", "created"),
        refs=("globalRoleId", "userId", "groupPrincipalId", "userPrincipalId"),
        indexed=("globalRoleId", "userId", "groupPrincipalId", "userPrincipalId", "name"),
        writable=True,
        k8s="globalrolebindings.management.cattle.io",
    ),
    _Type(
        "clusterRoleTemplateBinding",
        "clusterRoleTemplateBindings",
        ("name", "clusterId", *_BINDING_REFS, "creatorId", "uuid", "created"),
        refs=("clusterId", *_BINDING_REFS),
        indexed=("clusterId", *_BINDING_INDEX),
        namespaced=True,
        writable=True,
        k8s="clusterroletemplatebindings.management.cattle.io",
    ),
    _Type(
        "projectRoleTemplateBinding",
        "projectRoleTemplateBindings",
        ("name", "projectId", *_BINDING_REFS, "serviceAccount", "creatorId", "uuid", "created"),
        refs=("projectId", *_BINDING_REFS),
        indexed=("projectId", *_BINDING_INDEX),
        namespaced=True,
        writable=True,
        k8s="projectroletemplatebindings.management.cattle.io",
    ),
    _Type(
        "setting", "settings", ("name", "value", "default", "customized", "source"), k8s="settings.management.cattle.io"
    ),
)
TYPES: dict[str, _Type] = {t.name: t for t in _TYPES}
_BY_PATH: dict[str, _Type] = {}
for _t in _TYPES:
    _BY_PATH[_t.name.lower()] = _t
    _BY_PATH[_t.plural.lower()] = _t
CRTB = "clusterRoleTemplateBinding"
PRTB = "projectRoleTemplateBinding"
GRB = "globalRoleBinding"
_BINDING_KINDS = {"crtb": CRTB, "prtb": PRTB, "grb": GRB}


@dataclass
class EmulatorSettings:
    """Knobs of the emulator; every field can be changed at run time through `/_emulator/settings`."""

    page_size: int = 1000
    latency: float = 0.0
    failure_rate: float = 0.0
    failure_status: int = 503
    server_version: str = "v2.14.4"
    fill_delay: float = 0.0
    finalizer_delay: float | None = 0.0
    seed: int = 0
    ignored_filters: tuple[str, ...] = ()  # filter fields to treat as unknown, e.g. GRB userPrincipalId before 2.11
    advertised_url: str | None = None  # Rancher's `server-url` when it differs from how clients reach it (a proxy)


@dataclass
class _FailRule:
    path: str
    status: int
    remaining: int
    method: str | None = None


class _ApiError(Exception):
    """A norman error answer (status, code, message, fieldName)."""

    def __init__(self, status: int, code: str, message: str = "", field_name: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field_name = field_name


@dataclass(frozen=True)
class _Caller:
    user: Obj
    token: Obj


def version_tuple(version: str) -> tuple[int, int]:
    """`v2.14.4` → (2, 14); unparsable → (2, 14)."""
    match = re.match(r"v?(\d+)\.(\d+)", version)
    return (int(match.group(1)), int(match.group(2))) if match else (2, 14)


def random_name(rng: random.Random, length: int = 5) -> str:
    """Kubernetes generateName suffix: `length` chars from Rancher's alphabet."""
    return "".join(rng.choice(NAME_ALPHABET) for _ in range(length))


def _encode(number: int, length: int = 5) -> str:
    out = ""
    for _ in range(length):
        number, rest = divmod(number, len(NAME_ALPHABET))
        out = NAME_ALPHABET[rest] + out
    return out


def _rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ts_ms(text: str) -> int:
    return int(datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp() * 1000)


def _as_filter_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _provider_of(principal_id: str) -> str:
    scheme = principal_id.split("://", 1)[0]
    return scheme.rsplit("_", 1)[0] if "_" in scheme else scheme


def _error_response(err: _ApiError) -> JSONResponse:
    body: Obj = {"type": "error", "baseType": "error", "status": err.status, "code": err.code, "message": err.message}
    if err.field_name:
        body["fieldName"] = err.field_name
    return JSONResponse(body, status_code=err.status, headers={"Expires": _EXPIRES})


def load_fixture(path: str | Path) -> Obj:
    """Read a YAML estate fixture (see rancher_fixtures/demo.yaml for the shape)."""
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a fixture is a mapping of resource lists")
    return data


class RancherEmulator:
    """The emulated Rancher server: state, the ASGI app and the Python-side control API."""

    def __init__(self, fixture: Mapping[str, Any] | None = None, settings: EmulatorSettings | None = None) -> None:
        self._fixture: Obj = copy.deepcopy(dict(fixture if fixture is not None else load_fixture(DEMO_FIXTURE)))
        self.settings = settings or EmulatorSettings()
        if "server_version" in self._fixture and settings is None:
            self.settings.server_version = str(self._fixture["server_version"])
        self.url = ""
        self._lock = threading.RLock()
        self._fail_rules: list[_FailRule] = []
        self.request_total = 0
        self.response_bytes = 0
        self.request_paths: dict[str, int] = {}
        self._db: dict[str, dict[str, Obj]] = {}
        self._idx: dict[str, dict[str, dict[str, set[str]]]] = {}
        self._pending_fill: list[tuple[float, str, str]] = []
        self._pending_purge: list[tuple[float, str, str]] = []
        self._render_cache: dict[tuple[str, str], tuple[str, Obj, bytes]] = {}
        self._rng = random.Random(self.settings.seed)
        self._clock = 1_741_083_072.0
        self.reset()
        self.app = Starlette(routes=self._routes())

    # --- state -------------------------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget every change and reload the fixture; counters and failure rules are cleared too."""
        with self._lock:
            self._db = {t.name: {} for t in _TYPES}
            self._idx = {t.name: {f: {} for f in t.indexed} for t in _TYPES}
            self._pending_fill.clear()
            self._pending_purge.clear()
            self._render_cache.clear()
            self._fail_rules.clear()
            self._rng = random.Random(self.settings.seed)
            self.reset_counters()
            self._seed(self._fixture)

    def reset_counters(self) -> None:
        """Zero the request counters."""
        with self._lock:
            self.request_total = 0
            self.response_bytes = 0
            self.request_paths = {}

    def request_counts(self) -> Obj:
        """`{"total": n, "bytes": body bytes sent, "by_path": {"GET /v3/…": n}}` since the last reset."""
        with self._lock:
            return {"total": self.request_total, "bytes": self.response_bytes, "by_path": dict(self.request_paths)}

    def configure(self, **changes: Any) -> EmulatorSettings:
        """Change settings (latency, failure_rate, failure_status, page_size, server_version, …)."""
        known = {f.name for f in fields(EmulatorSettings)}
        with self._lock:
            for key, value in changes.items():
                if key not in known:
                    raise ValueError(f"unknown emulator setting {key}")
                if key == "ignored_filters":
                    value = tuple(value)  # noqa: PLW2901 - JSON gives a list
                setattr(self.settings, key, value)
            return self.settings

    def fail_next(self, path: str, status: int, count: int = 1, method: str | None = None) -> None:
        """Fail the next `count` requests whose path contains `path` (case-insensitive) with `status`."""
        with self._lock:
            self._fail_rules.append(_FailRule(path.lower(), status, count, method.upper() if method else None))

    def objects(self, type_name: str) -> list[Obj]:
        """Stored objects of one type (copies), settled first."""
        with self._lock:
            self._settle()
            return [copy.deepcopy(o) for o in self._db[type_name].values()]

    def get(self, type_name: str, obj_id: str) -> Obj | None:
        """One stored object (a copy) or None."""
        with self._lock:
            self._settle()
            obj = self._db[type_name].get(obj_id)
            return copy.deepcopy(obj) if obj is not None else None

    def snapshot(self) -> Obj:
        """Every stored object by type (what `/_emulator/state` returns)."""
        with self._lock:
            self._settle()
            return {t: [_public(o) for o in objs.values()] for t, objs in self._db.items()}

    def add_binding(self, kind: str, **values: Any) -> Obj:
        """Store a binding directly (kind `crtb`, `prtb` or `grb`), skipping checks; subject fill-in is immediate."""
        type_name = _BINDING_KINDS.get(kind.lower(), kind)
        with self._lock:
            obj = self._new_binding(type_name, dict(values), creator=values.get("creatorId"))
            self._fill(type_name, obj["id"])
            if type_name == GRB:
                self._inherit_cluster_roles(obj)
            return copy.deepcopy(obj)

    def remove_binding(self, binding_id: str) -> bool:
        """Remove a binding of any kind at once (no finalizers); False when unknown."""
        with self._lock:
            for type_name in (CRTB, PRTB, GRB):
                if binding_id in self._db[type_name]:
                    self._drop(type_name, binding_id)
                    return True
            return False

    def add_cluster(self, cluster_id: str, name: str, **extra: Any) -> Obj:
        """Add a cluster."""
        with self._lock:
            return copy.deepcopy(self._put("cluster", self._common({"id": cluster_id, "name": name, **extra})))

    def add_project(self, project_id: str, name: str, *, style: str = "new", **extra: Any) -> Obj:
        """Add a project `c-…:p-…`; `style` new → backing namespace `c-…-p-…`, old → `p-…`."""
        with self._lock:
            return copy.deepcopy(
                self._put("project", self._project({"id": project_id, "name": name, "style": style, **extra}))
            )

    def add_user(self, **values: Any) -> Obj:
        """Add a user (`id` or `principal` for an IdP user whose id is derived)."""
        with self._lock:
            return copy.deepcopy(self._user(values))

    def add_token(self, **values: Any) -> Obj:
        """Add an API key (`name`, `secret`, `userId`, `authProvider`, optional `groupPrincipals`)."""
        with self._lock:
            return copy.deepcopy(self._token(values))

    def add_principal(self, **values: Any) -> Obj:
        """Add a principal the providers can resolve (`id`, `name`, `principalType`)."""
        with self._lock:
            return copy.deepcopy(self._principal(values))

    def token_for(self, user_id: str) -> str:
        """The `name:secret` bearer of the first key of a user (tests and the demo use it)."""
        with self._lock:
            for tok in self._db["token"].values():
                if tok["userId"] == user_id:
                    return f"{tok['name']}:{tok['_secret']}"
        raise KeyError(user_id)

    # --- seeding -----------------------------------------------------------------------------------------

    def _seed(self, fx: Mapping[str, Any]) -> None:
        for item in fx.get("settings", []):
            self._put("setting", self._common(dict(item)))
        for sid, value in (("server-version", self.settings.server_version), ("cacerts", "")):
            if sid not in self._db["setting"]:
                self._put("setting", self._common({"id": sid, "value": value, "default": ""}))
        for item in fx.get("clusters", []):
            self._put("cluster", self._common({"state": "active", **item}))
        for item in fx.get("projects", []):
            self._put("project", self._project(dict(item)))
        for item in fx.get("roleTemplates", []):
            self._put("roleTemplate", self._common({"builtin": False, "hidden": False, "locked": False, **item}))
        for item in fx.get("globalRoles", []):
            self._put("globalRole", self._common({"builtin": False, "newUserDefault": False, **item}))
        for item in fx.get("principals", []):
            self._principal(dict(item))
        for item in fx.get("users", []):
            self._user(dict(item))
        for item in fx.get("tokens", []):
            self._token(dict(item))
        for key, type_name in (
            ("globalRoleBindings", GRB),
            ("clusterRoleTemplateBindings", CRTB),
            ("projectRoleTemplateBindings", PRTB),
        ):
            for item in fx.get(key, []):
                obj = self._new_binding(type_name, dict(item), creator=item.get("creatorId"))
                self._fill(type_name, obj["id"])
                if type_name == GRB:
                    self._inherit_cluster_roles(obj)

    def _now(self) -> float:
        return time.time()

    def _uuid(self) -> str:
        raw = self._rng.getrandbits(128)
        text = f"{raw:032x}"
        return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"

    def _common(self, obj: Obj) -> Obj:
        obj.setdefault("name", obj.get("id", ""))
        obj.setdefault("labels", {})
        obj.setdefault("annotations", {})
        obj.setdefault("uuid", self._uuid())
        if "created" not in obj:
            self._clock += 1
            obj["created"] = _rfc3339(self._clock)
        return obj

    def _project(self, item: Obj) -> Obj:
        pid = str(item["id"])
        if ":" not in pid:
            raise ValueError(f"project id {pid} must be <clusterId>:<projectName>")
        cluster_id, pname = pid.split(":", 1)
        style = item.pop("style", "new")
        item.setdefault("clusterId", cluster_id)
        item.setdefault("backingNamespace", f"{cluster_id}-{pname}" if style == "new" else pname)
        item.setdefault("state", "active")
        item["namespaceId"] = None
        return self._common(item)

    def _principal(self, item: Obj) -> Obj:
        pid = str(item["id"])
        item.setdefault("provider", _provider_of(pid))
        item.setdefault(
            "principalType", "group" if "_group://" in pid or "_team://" in pid or "_org://" in pid else "user"
        )
        item.setdefault("name", pid.split("://", 1)[-1])
        item.setdefault("loginName", item["name"] if item["principalType"] == "user" else "")
        self._db["principal"][pid] = item
        return item

    def _user(self, item: Obj) -> Obj:
        principal = item.pop("principal", None)
        if principal and "id" not in item:
            item["id"] = derive_user_id(principal)
        uid = str(item["id"])
        pids = list(item.get("principalIds") or ([principal] if principal else []))
        if f"local://{uid}" not in pids:
            pids.append(f"local://{uid}")
        item["principalIds"] = pids
        item.setdefault("enabled", True)
        item.setdefault("mustChangePassword", False)
        self._common(item)
        if principal:
            labelkey = base64.b32hexencode(principal.encode()).decode().rstrip("=").lower()[:63]
            item["labels"].setdefault(labelkey, "hashed-principal-name")
        for pid in pids:
            if pid not in self._db["principal"] and not pid.startswith("system://"):
                self._principal({"id": pid, "name": item.get("name") or uid, "principalType": "user"})
        return self._put("user", item)

    def _token(self, item: Obj) -> Obj:
        name = str(item.pop("name", None) or item.get("id") or f"token-{random_name(self._rng)}")
        secret = str(item.pop("secret", None) or random_name(self._rng, 54))
        user = self._db["user"].get(str(item.get("userId")))
        provider = str(item.get("authProvider", "local"))
        user_principal = ""
        if user is not None:
            user_principal = next(
                (p for p in user["principalIds"] if _provider_of(p) == provider), f"local://{user['id']}"
            )
        obj = {
            "id": name,
            "name": name,
            "_secret": secret,
            "userId": item.get("userId"),
            "authProvider": provider,
            "ttl": int(item.get("ttl", 0)),
            "expiresAt": item.get("expiresAt", ""),
            "expired": bool(item.get("expired", False)),
            "enabled": bool(item.get("enabled", True)),
            "isDerived": bool(item.get("isDerived", True)),
            "description": item.get("description", ""),
            "clusterId": item.get("clusterId"),
            "userPrincipal": item.get("userPrincipal", user_principal),
            "groupPrincipals": list(item.get("groupPrincipals", [])),
        }
        return self._put("token", self._common(obj))

    def _binding_id(self, type_name: str, obj: Obj) -> str:
        if type_name == GRB:
            return str(obj["name"])
        if type_name == CRTB:
            return f"{obj['clusterId']}:{obj['name']}"
        project = self._db["project"].get(str(obj["projectId"]))
        namespace = str(project["backingNamespace"]) if project else str(obj["projectId"]).split(":", 1)[-1]
        return f"{namespace}:{obj['name']}"

    def _new_binding(self, type_name: str, values: Obj, *, creator: Any) -> Obj:
        prefix = {GRB: "grb", CRTB: "crtb", PRTB: "prtb"}[type_name]
        if not values.get("name"):
            values["name"] = f"{prefix}-{random_name(self._rng)}"
        obj: Obj = {"name": values["name"]}
        keys: tuple[str, ...] = ("globalRoleId", "userId", "groupPrincipalId", "userPrincipalId")
        if type_name != GRB:
            scope_key = "clusterId" if type_name == CRTB else "projectId"
            keys = (scope_key, "roleTemplateId", "userId", "userPrincipalId", "groupId", "groupPrincipalId")
        for key in keys:
            obj[key] = values.get(key) or None
        obj["labels"] = dict(values.get("labels") or {})
        obj["annotations"] = dict(values.get("annotations") or {})
        if type_name != GRB:
            obj["namespaceId"] = None
            obj["labels"].setdefault("cattle.io/creator", "norman")
            obj["creatorId"] = creator
        if "created" in values:
            obj["created"] = values["created"]
        obj["id"] = values.get("id") or self._binding_id(type_name, obj)
        if type_name == CRTB:
            obj["status"] = {"summary": "Completed"}
        return self._put(type_name, self._common(obj))

    def _inherit_cluster_roles(self, grb: Obj) -> None:
        role = self._db["globalRole"].get(str(grb.get("globalRoleId")))
        if role is None:
            return
        for rt_id in role.get("inheritedClusterRoles") or []:
            for cluster in list(self._db["cluster"].values()):
                if cluster["id"] == "local":
                    continue
                values = {
                    "name": f"crtb-grb-{random_name(self._rng)}",
                    "clusterId": cluster["id"],
                    "roleTemplateId": rt_id,
                    "userId": grb.get("userId"),
                    "userPrincipalId": grb.get("userPrincipalId"),
                    "groupPrincipalId": grb.get("groupPrincipalId"),
                    "labels": {GRB_OWNER_LABEL: grb["name"]},
                }
                obj = self._new_binding(CRTB, values, creator=None)
                self._fill(CRTB, obj["id"])

    # --- store primitives --------------------------------------------------------------------------------

    def _put(self, type_name: str, obj: Obj) -> Obj:
        store = self._db[type_name]
        old = store.get(obj["id"])
        if old is not None:
            self._unindex(type_name, old)
        store[obj["id"]] = obj
        for fname, index in self._idx[type_name].items():
            index.setdefault(_as_filter_text(obj.get(fname)), set()).add(obj["id"])
        return obj

    def _unindex(self, type_name: str, obj: Obj) -> None:
        for fname, index in self._idx[type_name].items():
            bucket = index.get(_as_filter_text(obj.get(fname)))
            if bucket is not None:
                bucket.discard(obj["id"])

    def _drop(self, type_name: str, obj_id: str) -> None:
        obj = self._db[type_name].pop(obj_id, None)
        if obj is not None:
            self._unindex(type_name, obj)

    def _settle(self) -> None:
        now = self._now()
        if self._pending_fill:
            due = [p for p in self._pending_fill if p[0] <= now]
            self._pending_fill = [p for p in self._pending_fill if p[0] > now]
            for _, type_name, obj_id in due:
                self._fill(type_name, obj_id)
        if self._pending_purge:
            due = [p for p in self._pending_purge if p[0] <= now]
            self._pending_purge = [p for p in self._pending_purge if p[0] > now]
            for _, type_name, obj_id in due:
                self._drop(type_name, obj_id)

    def _user_by_principal(self, principal_id: str) -> Obj | None:
        for user in self._db["user"].values():
            if principal_id in user["principalIds"]:
                return user
        return None

    def _fill(self, type_name: str, obj_id: str) -> None:
        """The binding controller: create/find the user for a principal and fill userId / userPrincipalId."""
        obj = self._db[type_name].get(obj_id)
        if obj is None:
            return
        upid, uid = obj.get("userPrincipalId"), obj.get("userId")
        if upid and not uid:
            user = self._user_by_principal(upid)
            if user is None:
                display = obj.get("annotations", {}).get(DISPLAY_NAME_ANNOTATION) or upid.split("://", 1)[-1]
                if upid.startswith("local://"):
                    user = self._user({"id": upid.removeprefix("local://"), "name": display})
                else:
                    user = self._user({"principal": upid, "name": display})
            obj = dict(obj, userId=user["id"])
            self._put(type_name, obj)
        elif uid and not upid and type_name != GRB:
            user = self._db["user"].get(uid)
            if user is not None:
                principal = next((p for p in user["principalIds"] if p.endswith(uid)), None)
                self._put(type_name, dict(obj, userPrincipalId=principal))

    # --- HTTP --------------------------------------------------------------------------------------------

    def _routes(self) -> list[Route]:
        methods = ["GET", "POST", "PUT", "DELETE"]
        return [
            Route("/v3", self._handle_v3, methods=methods),
            Route("/v3/{rest:path}", self._handle_v3, methods=methods),
            Route("/_emulator/requests", self._ctl_requests, methods=["GET"]),
            Route("/_emulator/requests/reset", self._ctl_reset_counters, methods=["POST"]),
            Route("/_emulator/reset", self._ctl_reset, methods=["POST"]),
            Route("/_emulator/settings", self._ctl_settings, methods=["GET", "POST"]),
            Route("/_emulator/fail", self._ctl_fail, methods=["POST"]),
            Route("/_emulator/state", self._ctl_state, methods=["GET"]),
            Route("/_emulator/bindings", self._ctl_add_binding, methods=["POST"]),
            Route("/_emulator/bindings/{binding_id:path}", self._ctl_remove_binding, methods=["DELETE"]),
            Route("/_emulator/{kind}", self._ctl_add, methods=["POST"]),
        ]

    async def _handle_v3(self, request: Request) -> Response:
        raw = request.scope.get("raw_path") or request.url.path.encode()
        path = raw.decode("latin-1").split("?", 1)[0]
        segs = [unquote(s) for s in path.split("/")[2:]]
        while segs and segs[-1] == "":
            segs.pop()
        method = request.method.upper()
        with self._lock:
            self.request_total += 1
            key = f"{method} {path}"
            self.request_paths[key] = self.request_paths.get(key, 0) + 1
            latency = self.settings.latency
            injected = self._injected_failure(method, path)
        if latency > 0:
            await asyncio.sleep(latency)
        if injected is not None:
            headers = {"Retry-After": "0"} if injected == 429 else None
            err = _ApiError(injected, _STATUS_CODES.get(injected, "ServerError"), "injected failure")
            failed = _error_response(err)
            failed.headers.update(headers or {})
            return failed
        body_bytes = await request.body()
        base = (self.settings.advertised_url or str(request.base_url)).rstrip("/")
        try:
            with self._lock:
                self._settle()
                status, payload = self._dispatch(request, method, segs, body_bytes, base)
        except _ApiError as err:
            response: Response = _error_response(err)
        else:
            if status == 204 or payload is None:
                response = Response(status_code=status)
            elif isinstance(payload, bytes):
                response = Response(payload, status_code=status, media_type="application/json")
            else:
                response = JSONResponse(payload, status_code=status)
        response.headers["X-Api-Schemas"] = f"{base}/v3/schemas"
        response.headers["Expires"] = _EXPIRES
        with self._lock:
            self.response_bytes += len(response.body)
        return response

    def _injected_failure(self, method: str, path: str) -> int | None:
        lowered = path.lower()
        for rule in self._fail_rules:
            if rule.remaining > 0 and rule.path in lowered and (rule.method is None or rule.method == method):
                rule.remaining -= 1
                if rule.remaining == 0:
                    self._fail_rules.remove(rule)
                return rule.status
        if self.settings.failure_rate > 0 and self._rng.random() < self.settings.failure_rate:
            return self.settings.failure_status
        return None

    def _authenticate(self, request: Request) -> _Caller:
        header = request.headers.get("authorization", "")
        credential = ""
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer":
            credential = value.strip()
        elif scheme.lower() == "basic":
            with suppress(ValueError, UnicodeDecodeError):
                credential = base64.urlsafe_b64decode(value.strip() + "==").decode()
        elif "R_SESS" in request.cookies:
            credential = request.cookies["R_SESS"]
        name, _, secret = credential.partition(":")
        token = self._db["token"].get(name)
        if token is None or not secret or token["_secret"] != secret or not token["enabled"] or token["expired"]:
            raise _Unauthenticated
        user = self._db["user"].get(str(token["userId"]))
        if user is None or not user.get("enabled", True):
            raise _Unauthenticated
        return _Caller(user, token)

    def _dispatch(self, request: Request, method: str, segs: list[str], body: bytes, base: str) -> tuple[int, Any]:
        type_spec = _BY_PATH.get(segs[0].lower()) if segs else None
        public = type_spec is not None and type_spec.name == "setting" and len(segs) == 2 and segs[1] == "cacerts"
        caller: _Caller | None = None
        if not public:
            try:
                caller = self._authenticate(request)
            except _Unauthenticated:
                return 401, {"type": "error", "status": "401", "message": "must authenticate"}
        if not segs:
            if method != "GET":
                raise _ApiError(405, "MethodNotAllow", "Method not allowed")
            return 200, self._api_root(base)
        if type_spec is None:
            raise _ApiError(404, "NotFound", f"failed to find schema {segs[0]}")
        if len(segs) > 2:
            raise _ApiError(404, "NotFound", "not found")
        params = request.query_params
        if len(segs) == 1:
            if method == "GET":
                return 200, self._list(type_spec, params.multi_items(), caller, base)
            if method == "POST":
                return self._post(type_spec, params.get("action"), body, caller, base)
            raise _ApiError(405, "MethodNotAllow", f"Method {method} not supported")
        obj_id = segs[1]
        if method == "GET":
            return 200, self._render(type_spec, self._lookup(type_spec, obj_id, caller), caller, base)
        if not type_spec.writable:
            raise _ApiError(405, "MethodNotAllow", f"Method {method} not supported")
        if method == "PUT":
            return 200, self._update(type_spec, obj_id, body, caller, base)
        if method == "DELETE":
            return self._delete(type_spec, obj_id, caller, base)
        raise _ApiError(405, "MethodNotAllow", f"Method {method} not supported")

    # --- reading -----------------------------------------------------------------------------------------

    def _api_root(self, base: str) -> Obj:
        links = {"self": f"{base}/v3", "root": f"{base}/v3"}
        for t in _TYPES:
            links[t.plural] = f"{base}/v3/{t.plural.lower()}"
        return {
            "id": "v3",
            "type": "apiRoot",
            "baseType": "apiRoot",
            "apiVersion": {"group": "management.cattle.io", "version": "v3", "path": "/v3"},
            "links": links,
            "actions": {},
        }

    def _visible(self, type_spec: _Type, obj: Obj, caller: _Caller | None) -> bool:
        if obj.get("_hidden"):
            return False
        name = type_spec.name
        if name == "user":
            return not any(p.startswith("system://") for p in obj["principalIds"])
        if name == "token":
            return caller is not None and obj["userId"] == caller.user["id"]
        if name in (CRTB, PRTB) and obj.get("userId"):
            user = self._db["user"].get(str(obj["userId"]))
            return user is None or not any(p.startswith("system://") for p in user["principalIds"])
        return True

    def _lookup(self, type_spec: _Type, obj_id: str, caller: _Caller | None) -> Obj:
        if type_spec.name == "principal":
            return self._resolve_principal(obj_id, caller)
        if type_spec.namespaced and ":" not in obj_id:
            raise _ApiError(404, "NotFound", "failed to find resource by id")
        obj = self._db[type_spec.name].get(obj_id)
        if obj is None or not self._visible(type_spec, obj, caller):
            short = obj_id.split(":", 1)[-1]
            raise _ApiError(404, "NotFound", f'{type_spec.k8s} "{short}" not found')
        return obj

    def _resolve_principal(self, pid: str, caller: _Caller | None) -> Obj:
        principal = self._db["principal"].get(pid)
        provider = caller.token["authProvider"] if caller else "local"
        if principal is None and provider == "genericoidc" and _provider_of(pid) == "genericoidc":
            kind = "group" if "_group://" in pid else "user"
            principal = {"id": pid, "name": pid.split("://", 1)[-1], "principalType": kind, "provider": "genericoidc"}
        if principal is None or principal["provider"] not in (provider, "local"):
            raise _ApiError(404, "NotFound", f'principals "{pid}" not found')
        return principal

    def _view(self, type_spec: _Type, obj: Obj, caller: _Caller | None) -> Obj:
        if type_spec.name == "user":
            return {**obj, "me": caller is not None and obj["id"] == caller.user["id"]}
        if type_spec.name == "token":
            return {**obj, "current": caller is not None and obj["id"] == caller.token["id"]}
        return obj

    def _parse_filters(
        self, type_spec: _Type, items: Sequence[tuple[str, str]]
    ) -> dict[str, list[tuple[str, list[str]]]]:
        grouped: dict[tuple[str, str], list[str]] = {}
        for key, value in items:
            if key in ("limit", "marker", "sort", "order", "action", "reverse"):
                continue
            fname, modifier = key, "eq"
            if fname not in type_spec.filters and "_" in key:
                fname, modifier = key.rsplit("_", 1)
            if fname in self.settings.ignored_filters or f"{type_spec.name}.{fname}" in self.settings.ignored_filters:
                continue
            if fname not in type_spec.filters or modifier not in _MODIFIERS:
                continue  # unknown keys are silently ignored, as Rancher does
            if fname in type_spec.bools and modifier not in ("eq", "ne"):
                continue
            grouped.setdefault((fname, modifier), []).append(value)
        out: dict[str, list[tuple[str, list[str]]]] = {}
        for (fname, modifier), values in grouped.items():
            chosen = values if modifier in ("in", "notin") else values[:1]
            out.setdefault(fname, []).append((modifier, chosen))
        return out

    def _list(self, type_spec: _Type, query: Sequence[tuple[str, str]], caller: _Caller | None, base: str) -> bytes:
        if type_spec.name == "principal":
            return self._collection(type_spec, self._caller_principals(caller), base, {}, None)
        conditions = self._parse_filters(type_spec, query)
        store = self._db[type_spec.name]
        candidates: set[str] | None = None
        for fname, conds in conditions.items():
            if fname not in self._idx[type_spec.name]:
                continue
            for modifier, values in conds:
                if modifier in ("eq", "in"):
                    found: set[str] = set()
                    for value in values:
                        found |= self._idx[type_spec.name][fname].get(value, set())
                    candidates = found if candidates is None else candidates & found
        pool = store.values() if candidates is None else [store[i] for i in candidates if i in store]
        matched: list[Obj] = []
        for obj in pool:
            if not self._visible(type_spec, obj, caller):
                continue
            view = self._view(type_spec, obj, caller)
            if all(_condition(view.get(f), m, vals) for f, conds in conditions.items() for m, vals in conds):
                matched.append(view)
        qmap: dict[str, str] = {}
        for key, value in query:
            qmap.setdefault(key, value)
        sort_field = qmap.get("sort", "")
        reverse = qmap.get("order", "asc") == "desc"
        if sort_field in type_spec.filters:
            matched.sort(key=lambda o: (_as_filter_text(o.get(sort_field)), o["id"]), reverse=reverse)
        else:
            matched.sort(key=lambda o: str(o["id"]), reverse=reverse)
        return self._collection(type_spec, matched, base, conditions, (query, qmap), caller=caller)

    def _collection(
        self,
        type_spec: _Type,
        matched: list[Obj],
        base: str,
        conditions: Mapping[str, list[tuple[str, list[str]]]],
        paging: tuple[Sequence[tuple[str, str]], dict[str, str]] | None,
        *,
        caller: _Caller | None = None,
    ) -> bytes:
        coll_url = f"{base}/v3/{type_spec.plural.lower()}"
        out: Obj = {"type": "collection", "resourceType": type_spec.name, "links": {"self": coll_url}}
        if type_spec.writable:
            out["createTypes"] = {type_spec.name: coll_url}
        out["actions"] = {"search": f"{coll_url}?action=search"} if type_spec.name == "principal" else {}
        page = matched
        if paging is not None:
            query, qmap = paging
            limit = _limit(qmap.get("limit"), self.settings.page_size)
            total = len(matched)
            start = 0
            marker = qmap.get("marker")
            if marker:
                start = next((i for i, o in enumerate(matched) if o["id"] == marker), 0)
            page = matched[start : start + limit]
            pagination: Obj = {"limit": limit, "total": total}
            if total > limit:
                kept = [(k, v) for k, v in query if k not in ("marker", "limit")] + [("limit", str(limit))]

                def link(index: int) -> str:
                    return f"{coll_url}?{urlencode([*kept, ('marker', str(matched[index]['id']))])}"

                pagination["partial"] = True
                pagination["first"] = link(0)
                if start + limit < total:
                    pagination["next"] = link(start + limit)
                if start > 0:
                    pagination["previous"] = link(max(0, start - limit))
                pagination["last"] = link(((total - 1) // limit) * limit)
            out["pagination"] = pagination
            rest = [(k, v) for k, v in query if k not in ("order",)]
            sort_links = {f: f"{coll_url}?{urlencode([*rest, ('sort', f)])}" for f in type_spec.filters}
            flipped = "asc" if qmap.get("order") == "desc" else "desc"
            out["sort"] = {
                "order": "desc" if qmap.get("order") == "desc" else "asc",
                "reverse": f"{coll_url}?{urlencode([*rest, ('order', flipped)])}",
                "links": sort_links,
            }
            out["filters"] = {
                f: (
                    [{"modifier": m, "value": v if m in ("in", "notin") else v[0]} for m, v in conditions[f]]
                    if f in conditions
                    else None
                )
                for f in type_spec.filters
            }
        envelope = json.dumps(out, separators=(",", ":")).encode()
        data = b",".join(self._render_bytes(type_spec, o, caller, base) for o in page)
        return envelope[:-1] + b',"data":[' + data + b"]}"

    def _render_bytes(self, type_spec: _Type, obj: Obj, caller: _Caller | None, base: str) -> bytes:
        """The JSON of one rendered object, cached until the object changes (callers' views excepted)."""
        cacheable = type_spec.name not in ("user", "token", "principal")
        key = (type_spec.name, str(obj["id"]))
        if cacheable:
            hit = self._render_cache.get(key)
            if hit is not None and hit[0] == base and hit[1] is obj:
                return hit[2]
        out = json.dumps(self._render(type_spec, obj, caller, base), separators=(",", ":")).encode()
        if cacheable:
            self._render_cache[key] = (base, obj, out)
        return out

    def _render(self, type_spec: _Type, obj: Obj, caller: _Caller | None, base: str) -> Obj:
        view = self._view(type_spec, obj, caller)
        out: Obj = {}
        for key, value in view.items():
            if key.startswith("_"):
                continue
            if value is None and key not in type_spec.refs and key != "creatorId":
                continue
            if value == "" and key not in type_spec.refs:
                continue
            out[key] = copy.deepcopy(value)
        for ref in type_spec.refs:
            out.setdefault(ref, None)
        out["type"] = type_spec.name
        out["baseType"] = type_spec.name
        for key in ("created", "removed", "expiresAt"):
            if out.get(key):
                with suppress(ValueError):
                    out[f"{key}TS"] = _ts_ms(str(out[key]))
        self_url = f"{base}/v3/{type_spec.plural.lower()}/{quote(str(obj['id']), safe='')}"
        links = {"self": self_url}
        if type_spec.writable:
            links["update"] = self_url
            links["remove"] = self_url
        out["links"] = links
        out["actions"] = {}
        return out

    def _caller_principals(self, caller: _Caller | None) -> list[Obj]:
        if caller is None:
            return []
        provider = caller.token["authProvider"]
        user_pid = caller.token.get("userPrincipal") or f"local://{caller.user['id']}"
        user_p = self._db["principal"].get(user_pid) or {"id": user_pid, "principalType": "user", "provider": provider}
        out = [{**user_p, "me": True, "memberOf": False}]
        for gid in caller.token.get("groupPrincipals") or []:
            group = self._db["principal"].get(gid) or {
                "id": gid, "name": gid.split("://", 1)[-1], "principalType": "group", "provider": provider,
            }  # fmt: skip
            out.append({**group, "me": False, "memberOf": True})
        return out

    # --- writing -----------------------------------------------------------------------------------------

    def _post(
        self, type_spec: _Type, action: str | None, body: bytes, caller: _Caller | None, base: str
    ) -> tuple[int, Any]:
        assert caller is not None
        data = _json_body(body)
        if type_spec.name == "principal":
            if action != "search":
                raise _ApiError(422, "InvalidAction", f"invalid action: {action}")
            return 200, self._collection(type_spec, self._search(data, caller), base, {}, None, caller=caller)
        if action:
            raise _ApiError(422, "InvalidAction", f"invalid action: {action}")
        if type_spec.name in (CRTB, PRTB):
            obj = self._create_rtb(type_spec, data, caller)
        elif type_spec.name == GRB:
            obj = self._create_grb(data, caller)
        else:
            raise _ApiError(405, "MethodNotAllow", "Method POST not supported")
        return 201, self._render(type_spec, obj, caller, base)

    def _search(self, data: Obj, caller: _Caller) -> list[Obj]:
        text = str(data.get("name", ""))
        kind = data.get("principalType") or None
        provider = caller.token["authProvider"]
        found: list[Obj] = []
        if provider == "genericoidc" and text:
            for ptype in ("user", "group") if kind is None else (kind,):
                found.append(
                    {"id": f"genericoidc_{ptype}://{text}", "name": text, "principalType": ptype, "provider": provider}
                )
        lowered = text.lower()
        for prov in (provider, "local") if provider != "genericoidc" else ("local",):
            for principal in self._db["principal"].values():
                if principal["provider"] != prov or (kind and principal["principalType"] != kind):
                    continue
                hay = f"{principal.get('name', '')} {principal.get('loginName', '')}".lower()
                if lowered in hay:
                    found.append(dict(principal))
        return [{**p, "me": p["id"] == caller.token.get("userPrincipal"), "memberOf": False} for p in found]

    def _is_admin(self, user_id: str) -> bool:
        for grb_id in self._idx[GRB]["userId"].get(user_id, set()):
            if self._db[GRB][grb_id].get("globalRoleId") == "admin":
                return True
        return False

    def _holds(self, user_id: str, type_name: str, scope_field: str, scope: str, roles: set[str]) -> bool:
        for bid in self._idx[type_name]["userId"].get(user_id, set()):
            obj = self._db[type_name][bid]
            if obj.get(scope_field) == scope and obj.get("roleTemplateId") in roles and not obj.get("removed"):
                return True
        return False

    def _create_rtb(self, type_spec: _Type, data: Obj, caller: _Caller) -> Obj:
        is_crtb = type_spec.name == CRTB
        scope_field = "clusterId" if is_crtb else "projectId"
        # 1. norman: required fields and name format
        for required in (scope_field, "roleTemplateId"):
            if not data.get(required):
                raise _ApiError(422, "MissingRequired", "", required)
        name = data.get("name")
        if name is not None and (not isinstance(name, str) or not _DNS_LABEL.match(name)):
            raise _ApiError(422, "InvalidFormat", "Invalid characters in name", "name")
        # 2. v3 validator: role template
        rt_id = str(data["roleTemplateId"])
        role = self._db["roleTemplate"].get(rt_id)
        if role is None:
            message = f'Error getting role template: roletemplates.management.cattle.io "{rt_id}" not found'
            raise _ApiError(500, "ServerError", message)
        if role.get("locked"):
            raise _ApiError(422, "InvalidState", f"Role {role['name']} is locked")
        expected = "cluster" if is_crtb else "project"
        if role.get("context") != expected:
            message = f"Cannot reference context [{role.get('context', '')}] from [{expected}] context"
            raise _ApiError(422, "InvalidBodyContent", message)
        # 3. store: subject and principal resolution through the caller key's provider
        user_side = bool(data.get("userId") or data.get("userPrincipalId"))
        group_side = bool(data.get("groupId") or data.get("groupPrincipalId"))
        if user_side == group_side:
            message = "must specify exactly one of userId/userPrincipalId or groupId/groupPrincipalId"
            raise _ApiError(422, "InvalidBodyContent", message)
        annotations = dict(data.get("annotations") or {})
        upid = data.get("userPrincipalId")
        if upid and not str(upid).startswith("local://"):
            upid = str(upid)
            if _provider_of(upid) != caller.token["authProvider"]:
                raise _ApiError(500, "ServerError", f'user.management.cattle.io "{upid.split("://", 1)[-1]}" not found')
            known = self._db["principal"].get(upid)
            annotations[DISPLAY_NAME_ANNOTATION] = (known or {}).get("name") or upid.split("://", 1)[-1]
        # 4. webhook: scope exists, escalation, duplicates
        scope = str(data[scope_field])
        if is_crtb and scope not in self._db["cluster"]:
            raise _webhook(400, "BadRequest", type_spec, f'clusterName: Invalid value: "{scope}": cluster not found')
        if not is_crtb:
            if not re.match(r"^[^:]+:[^:]+$", scope):
                message = f'projectName: Invalid value: "{scope}": must be <clusterId>:<projectName>'
                raise _webhook(400, "BadRequest", type_spec, message)
            if scope not in self._db["project"]:
                message = f'projectName: Invalid value: "{scope}": project not found'
                raise _webhook(400, "BadRequest", type_spec, message)
        caller_id = caller.user["id"]
        if not self._is_admin(caller_id):
            owner = {"cluster-owner"} if is_crtb else {"project-owner"}
            held = self._holds(caller_id, type_spec.name, scope_field, scope, {rt_id} | owner)
            if not is_crtb and not held:
                held = self._holds(caller_id, CRTB, "clusterId", scope.split(":", 1)[0], {"cluster-owner"})
            if not held:
                message = f'user "{caller_id}" is attempting to grant "{rt_id}" without holding it (escalation)'
                raise _webhook(403, "Forbidden", type_spec, message)
        major_minor = version_tuple(self.settings.server_version)
        rejects = major_minor >= ((2, 14) if is_crtb else (2, 15))
        subject_field = next(f for f in ("userId", "userPrincipalId", "groupId", "groupPrincipalId") if data.get(f))
        if rejects:
            for bid in self._idx[type_spec.name][scope_field].get(scope, set()):
                other = self._db[type_spec.name][bid]
                if (
                    not other.get("removed")
                    and other.get("roleTemplateId") == rt_id
                    and other.get(subject_field) == data.get(subject_field)
                    and other["name"] != name
                ):
                    kind = "crtb" if is_crtb else "prtb"
                    raise _webhook(409, "Conflict", type_spec, f"duplicate {kind} not allowed")
        prefix = "crtb" if is_crtb else "prtb"
        if not name:
            if major_minor >= (2, 15):
                digest = hashlib.sha256(f"{data.get(subject_field)}/{rt_id}/{scope}".encode()).digest()
                name = f"{prefix}-" + base64.b32encode(digest).decode().lower()[:10]
            else:
                name = f"{prefix}-{random_name(self._rng)}"
        values = {
            scope_field: scope,
            "name": name,
            "roleTemplateId": rt_id,
            "userId": data.get("userId"),
            "userPrincipalId": data.get("userPrincipalId"),
            "groupId": data.get("groupId"),
            "groupPrincipalId": data.get("groupPrincipalId"),
            "labels": {k: str(v) for k, v in (data.get("labels") or {}).items()},
            "annotations": annotations,
        }
        self._clock = max(self._clock, self._now())
        values["created"] = _rfc3339(self._now())
        probe = {scope_field: scope, "name": name, "projectId": scope}
        if self._binding_id(type_spec.name, probe) in self._db[type_spec.name]:
            raise _ApiError(409, "AlreadyExists", f'{type_spec.k8s} "{name}" already exists')
        obj = self._new_binding(type_spec.name, values, creator=caller_id)
        self._pending_fill.append((self._now() + self.settings.fill_delay, type_spec.name, obj["id"]))
        return obj

    def _create_grb(self, data: Obj, caller: _Caller) -> Obj:
        if not data.get("globalRoleId"):
            raise _ApiError(422, "MissingRequired", "", "globalRoleId")
        if bool(data.get("userId") or data.get("userPrincipalId")) == bool(data.get("groupPrincipalId")):
            raise _ApiError(422, "InvalidBodyContent", "must specify exactly one of userId or groupPrincipalId")
        if str(data["globalRoleId"]) not in self._db["globalRole"]:
            raise _ApiError(404, "NotFound", f'globalroles.management.cattle.io "{data["globalRoleId"]}" not found')
        if not self._is_admin(caller.user["id"]):
            raise _ApiError(403, "Forbidden", "admission webhook denied the request: escalation")
        name = data.get("name") or f"grb-{random_name(self._rng)}"
        if name in self._db[GRB]:
            raise _ApiError(409, "AlreadyExists", f'globalrolebindings.management.cattle.io "{name}" already exists')
        obj = self._new_binding(
            GRB, {**data, "name": name, "created": _rfc3339(self._now())}, creator=caller.user["id"]
        )
        self._fill(GRB, obj["id"])
        self._inherit_cluster_roles(obj)
        return obj

    def _update(self, type_spec: _Type, obj_id: str, body: bytes, caller: _Caller | None, base: str) -> Obj:
        obj = dict(self._lookup(type_spec, obj_id, caller))
        data = _json_body(body)
        for key in ("labels", "annotations"):
            if key in data and isinstance(data[key], dict):
                kept = {k: v for k, v in obj.get(key, {}).items() if k.startswith("cattle.io/")}
                given = {k: str(v) for k, v in data[key].items() if not k.startswith("cattle.io/")}
                obj[key] = {**kept, **given}
        # clusterId, projectId, roleTemplateId, userId, userPrincipalId, groupId, groupPrincipalId: noupdate, dropped
        self._put(type_spec.name, obj)
        return self._render(type_spec, obj, caller, base)

    def _delete(self, type_spec: _Type, obj_id: str, caller: _Caller | None, base: str) -> tuple[int, Obj | None]:
        obj = self._lookup(type_spec, obj_id, caller)
        delay = self.settings.finalizer_delay
        if type_spec.name == GRB:
            for crtb_id in list(self._db[CRTB]):
                if self._db[CRTB][crtb_id].get("labels", {}).get(GRB_OWNER_LABEL) == obj["name"]:
                    self._drop(CRTB, crtb_id)
        if delay is None:
            self._drop(type_spec.name, obj_id)
            return 204, None
        if not obj.get("removed"):
            obj = dict(obj, removed=_rfc3339(self._now()))
            self._put(type_spec.name, obj)
            self._pending_purge.append((self._now() + delay, type_spec.name, obj_id))
        return 200, self._render(type_spec, obj, caller, base)

    # --- control endpoints -------------------------------------------------------------------------------

    async def _ctl_requests(self, request: Request) -> Response:
        return JSONResponse(self.request_counts())

    async def _ctl_reset_counters(self, request: Request) -> Response:
        self.reset_counters()
        return JSONResponse(self.request_counts())

    async def _ctl_reset(self, request: Request) -> Response:
        self.reset()
        return JSONResponse({"ok": True})

    async def _ctl_settings(self, request: Request) -> Response:
        if request.method == "POST":
            try:
                self.configure(**_json_body(await request.body()))
            except (ValueError, _ApiError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(asdict(self.settings))

    async def _ctl_fail(self, request: Request) -> Response:
        data = _json_body(await request.body())
        self.fail_next(
            str(data.get("path", "/v3")), int(data.get("status", 503)), int(data.get("count", 1)), data.get("method")
        )
        return JSONResponse({"ok": True})

    async def _ctl_state(self, request: Request) -> Response:
        return JSONResponse(self.snapshot())

    async def _ctl_add_binding(self, request: Request) -> Response:
        data = _json_body(await request.body())
        kind = str(data.pop("kind", "crtb"))
        return JSONResponse(_public(self.add_binding(kind, **data)), status_code=201)

    async def _ctl_remove_binding(self, request: Request) -> Response:
        found = self.remove_binding(unquote(request.path_params["binding_id"]))
        return JSONResponse({"removed": found}, status_code=200 if found else 404)

    async def _ctl_add(self, request: Request) -> Response:
        data = _json_body(await request.body())
        kind = request.path_params["kind"]
        if kind == "clusters":
            obj = self.add_cluster(str(data.pop("id")), str(data.pop("name")), **data)
        elif kind == "projects":
            obj = self.add_project(str(data.pop("id")), str(data.pop("name")), **data)
        elif kind == "users":
            obj = self.add_user(**data)
        elif kind == "tokens":
            obj = self.add_token(**data)
        elif kind == "principals":
            obj = self.add_principal(**data)
        else:
            return JSONResponse({"error": f"unknown kind {kind}"}, status_code=404)
        return JSONResponse(_public(obj), status_code=201)


def _webhook(status: int, code: str, type_spec: _Type, detail: str) -> _ApiError:
    hook = f"rancher.cattle.io.{type_spec.plural.lower()}.management.cattle.io"
    return _ApiError(status, code, f'admission webhook "{hook}" denied the request: {detail}')


class _Unauthenticated(Exception):
    """The request carries no valid API key."""


def _public(obj: Obj) -> Obj:
    return {k: v for k, v in obj.items() if not k.startswith("_")}


def _json_body(body: bytes) -> Obj:
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise _ApiError(422, "InvalidBodyContent", "Failed to parse body") from exc
    if not isinstance(data, dict):
        raise _ApiError(422, "InvalidBodyContent", "Failed to parse body")
    return data


def _limit(raw: str | None, default: int) -> int:
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        return default
    if value < 0 or value > MAX_LIMIT:
        return MAX_LIMIT
    return value or default


def _condition(value: Any, modifier: str, values: list[str]) -> bool:
    text = _as_filter_text(value)
    if modifier == "eq":
        return text == values[0]
    if modifier == "ne":
        return text != values[0]
    if modifier == "in":
        return text in values
    return text not in values


# --- synthetic estates -----------------------------------------------------------------------------------


def generate_estate(
    *,
    clusters: int = 10,
    projects: int = 50,
    bindings: int = 500,
    groups: int = 20,
    users: int = 100,
    seed: int = 0,
    provider: str = "genericoidc",
) -> Obj:
    """A deterministic large estate: the demo fixture plus N clusters, M projects, U users, G groups, K bindings."""
    rng = random.Random(seed)
    base = load_fixture(DEMO_FIXTURE)
    fx: Obj = copy.deepcopy(base)
    cluster_ids = []
    for i in range(clusters):
        cid = f"c-m-{_encode(i, 8)}" if i % 3 else f"c-{_encode(i, 5)}"
        cluster_ids.append(cid)
        fx["clusters"].append({"id": cid, "name": f"cluster-{i:04d}", "driver": "rke2" if i % 3 else "imported"})
    project_ids = []
    for j in range(projects):
        cid = cluster_ids[j % clusters]
        pid = f"{cid}:p-{_encode(j, 5)}"
        project_ids.append(pid)
        fx["projects"].append({"id": pid, "name": f"project-{j:05d}", "style": "new" if j % 2 else "old"})
    user_pids = [f"{provider}_user://user-{u:05d}" for u in range(users)]
    for u, pid in enumerate(user_pids):
        fx["users"].append({"principal": pid, "name": f"User {u:05d}"})
    group_pids = [f"{provider}_group://group-{g:04d}" for g in range(groups)]
    for g, gpid in enumerate(group_pids):
        fx["principals"].append({"id": gpid, "name": f"group-{g:04d}", "principalType": "group"})
    cluster_roles = ["cluster-member", "cluster-owner", "projects-view"]
    project_roles = ["project-member", "project-owner", "read-only", "workloads-view"]
    for k in range(bindings):
        subject: Obj
        if rng.random() < 0.5:
            upid = user_pids[rng.randrange(users)]
            subject = {"userId": derive_user_id(upid), "userPrincipalId": upid}
        else:
            subject = {"groupPrincipalId": group_pids[rng.randrange(groups)]}
        if rng.random() < 0.3:
            fx["clusterRoleTemplateBindings"].append(
                {"name": f"crtb-{_encode(k, 6)}", "clusterId": cluster_ids[rng.randrange(clusters)],
                 "roleTemplateId": rng.choice(cluster_roles), **subject}
            )  # fmt: skip
        else:
            fx["projectRoleTemplateBindings"].append(
                {"name": f"prtb-{_encode(k, 6)}", "projectId": project_ids[rng.randrange(projects)],
                 "roleTemplateId": rng.choice(project_roles), **subject}
            )  # fmt: skip
    return fx


# --- running -----------------------------------------------------------------------------------------------


def _bound_socket(host: str, port: int) -> socket.socket:
    # proto=IPPROTO_TCP so asyncio turns on TCP_NODELAY for accepted connections (else Nagle adds ~40 ms)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    return sock


def _server(emulator: RancherEmulator) -> uvicorn.Server:
    config = uvicorn.Config(
        emulator.app, log_level="warning", lifespan="off", access_log=False, ws="none", timeout_keep_alive=30
    )
    return uvicorn.Server(config)


@contextmanager
def run_emulator(
    fixture: Mapping[str, Any] | None = None, settings: EmulatorSettings | None = None, *, port: int = 0
) -> Iterator[RancherEmulator]:
    """Serve an emulator on 127.0.0.1 in a background thread; yields it with `.url` set (no `/v3`)."""
    emulator = RancherEmulator(fixture, settings)
    sock = _bound_socket("127.0.0.1", port)
    server = _server(emulator)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="rancher-emulator")
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.005)
    emulator.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        yield emulator
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@asynccontextmanager
async def serve_emulator(
    fixture: Mapping[str, Any] | None = None, settings: EmulatorSettings | None = None, *, port: int = 0
) -> AsyncIterator[RancherEmulator]:
    """Serve an emulator on 127.0.0.1 inside the running event loop; yields it with `.url` set."""
    emulator = RancherEmulator(fixture, settings)
    sock = _bound_socket("127.0.0.1", port)
    server = _server(emulator)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started and not task.done():  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
        await asyncio.sleep(0.005)
    emulator.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        yield emulator
    finally:
        server.should_exit = True
        await task
        sock.close()


def main(argv: list[str] | None = None) -> int:
    """`accessbot dev-rancher --fixture FILE --port N [--latency S] [--page-size N]`: serve until interrupted."""
    parser = argparse.ArgumentParser(prog="accessbot dev-rancher", description="Serve the Rancher v3 emulator.")
    parser.add_argument("--fixture", type=Path, default=DEMO_FIXTURE, help="YAML estate (default: the demo estate)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every /v3 request")
    parser.add_argument("--page-size", type=int, default=1000, help="default collection limit (Rancher: 1000)")
    parser.add_argument("--server-version", default=None, help="e.g. v2.13.3 (duplicates accepted) or v2.14.4")
    parser.add_argument(
        "--generate",
        metavar="C,P,B,G[,U[,SEED]]",
        default=None,
        help="serve a synthetic estate of C clusters, P projects, B bindings, G groups, U users (demo estate included)",
    )
    args = parser.parse_args(argv)
    try:
        if args.generate:
            sizes = [int(part) for part in args.generate.split(",")]
            sizes += [100, 0][len(sizes) - 4 :] if 4 <= len(sizes) < 6 else []
            clusters, projects, bindings, groups, users, seed = sizes
            fixture = generate_estate(
                clusters=clusters, projects=projects, bindings=bindings, groups=groups, users=users, seed=seed
            )
        else:
            fixture = load_fixture(args.fixture)
    except (OSError, ValueError, TypeError, yaml.YAMLError) as exc:
        print(f"cannot build the estate: {exc}")
        return 2
    settings = EmulatorSettings(latency=args.latency, page_size=args.page_size)
    settings.server_version = args.server_version or str(fixture.get("server_version", settings.server_version))
    emulator = RancherEmulator(fixture, settings)
    sock = _bound_socket(args.host, args.port)
    print(f"Rancher emulator on http://{args.host}:{sock.getsockname()[1]} (API at /v3, control at /_emulator)")
    tokens = ", ".join(t["name"] for t in emulator.objects("token"))
    print(f"API keys from the fixture: {tokens}", flush=True)
    server = _server(emulator)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        print("Rancher emulator stopped")
    finally:
        sock.close()
    return 0
