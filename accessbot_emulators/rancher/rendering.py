"""How stored objects look over HTTP: who may see them, caller-dependent fields, links, `…TS` times, lookups by id."""

from __future__ import annotations

import copy
import json
from contextlib import suppress
from urllib.parse import quote

from accessbot_emulators.rancher.auth import Caller
from accessbot_emulators.rancher.errors import ApiError
from accessbot_emulators.rancher.principals import PrincipalNotResolved, get_principal
from accessbot_emulators.rancher.profiles import absent_fields
from accessbot_emulators.rancher.schema import CRTB, PRTB, Obj, ResourceType, ts_ms
from accessbot_emulators.rancher.store import Store


def visible(store: Store, type_spec: ResourceType, obj: Obj, caller: Caller | None) -> bool:
    """Whether `caller` sees `obj`: not system users or their bindings, only their own keys."""
    if obj.get("_hidden"):
        return False
    name = type_spec.name
    if name == "user":
        return not any(p.startswith("system://") for p in obj["principalIds"])
    if name == "token":
        return caller is not None and obj["userId"] == caller.user["id"]
    if name in (CRTB, PRTB) and obj.get("userId"):
        user = store.db["user"].get(str(obj["userId"]))
        return user is None or not any(p.startswith("system://") for p in user["principalIds"])
    return True


def lookup(store: Store, type_spec: ResourceType, obj_id: str, caller: Caller | None) -> Obj:
    """The object `obj_id` as `caller` may see it, or 404 with the message Rancher gives."""
    if type_spec.name == "principal":
        try:
            return get_principal(store, obj_id, caller)
        except PrincipalNotResolved as err:  # rancher pkg/auth/principals/handler.go: NotFound → 404, else 500
            status, code = (404, "NotFound") if err.not_found else (500, "ServerError")
            raise ApiError(status, code, err.message) from err
    if type_spec.name == "token" and caller is not None and obj_id in store.db["token"]:
        token = store.db["token"][obj_id]
        if token["userId"] != caller.user["id"]:  # rancher pkg/auth/tokens/manager.go getTokenByID
            raise ApiError(404, "NotFound", f"{obj_id} not found")
    if type_spec.namespaced and ":" not in obj_id:
        raise ApiError(404, "NotFound", "failed to find resource by id")
    obj = store.db[type_spec.name].get(obj_id)
    if obj is None or not visible(store, type_spec, obj, caller):
        short = obj_id.split(":", 1)[-1]
        raise ApiError(404, "NotFound", f'{type_spec.k8s} "{short}" not found')
    return obj


def caller_view(type_spec: ResourceType, obj: Obj, caller: Caller | None) -> Obj:
    """The object with the fields that depend on the caller (`me` on users, `current` on keys)."""
    if type_spec.name == "user":
        return {**obj, "me": caller is not None and obj["id"] == caller.user["id"]}
    if type_spec.name == "token":
        # rancher pkg/auth/tokens/manager.go@v2.14.0: `token.Current = currentAuthToken.Name == token.Name &&
        # !currentAuthToken.IsDerived`, so no token is ever current when the caller uses an API key
        mine = caller is not None and obj["id"] == caller.token["id"] and not caller.token["isDerived"]
        return {**obj, "current": mine}
    return obj


def render_bytes(store: Store, type_spec: ResourceType, obj: Obj, caller: Caller | None, base: str) -> bytes:
    """The JSON of one rendered object, cached until the object changes (callers' views excepted)."""
    cacheable = type_spec.name not in ("user", "token", "principal")
    key = (type_spec.name, str(obj["id"]))
    if cacheable:
        hit = store.render_cache.get(key)
        if hit is not None and hit[0] == base and hit[1] is obj:
            return hit[2]
    out = json.dumps(render(store, type_spec, obj, caller, base), separators=(",", ":")).encode()
    if cacheable:
        store.render_cache[key] = (base, obj, out)
    return out


def render(store: Store, type_spec: ResourceType, obj: Obj, caller: Caller | None, base: str) -> Obj:
    """The object as the API returns it: references always present, empty fields dropped, links, `…TS` times.

    Fields the version played does not have (profiles.absent_fields) are left out.
    """
    view = caller_view(type_spec, obj, caller)
    absent = absent_fields(store.settings.profile, type_spec.name)
    out: Obj = {}
    for key, value in view.items():
        if key.startswith("_") or key in absent:
            continue
        if value is None and key not in type_spec.refs and key != "creatorId":
            continue
        if value == "" and key not in type_spec.refs:
            continue
        out[key] = copy.deepcopy(value)
    for ref in type_spec.refs:
        if ref not in absent:
            out.setdefault(ref, None)
    out["type"] = type_spec.name
    out["baseType"] = type_spec.name
    for key in ("created", "removed", "expiresAt"):
        if out.get(key):
            with suppress(ValueError):
                out[f"{key}TS"] = ts_ms(str(out[key]))
    self_url = f"{base}/v3/{type_spec.plural.lower()}/{quote(str(obj['id']), safe='')}"
    links = {"self": self_url}
    if type_spec.writable:
        links["update"] = self_url
        links["remove"] = self_url
    out["links"] = links
    out["actions"] = {}
    return out
