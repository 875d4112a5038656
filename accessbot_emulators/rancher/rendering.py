"""How stored objects look over HTTP: who may see them, caller-dependent fields, links, `…TS` times, lookups by id."""

from __future__ import annotations

import copy
import json
from contextlib import suppress
from urllib.parse import quote

from accessbot_emulators.rancher.auth import Caller
from accessbot_emulators.rancher.errors import ApiError
from accessbot_emulators.rancher.principals import resolve_principal
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
        return resolve_principal(store, obj_id, caller)
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
        return {**obj, "current": caller is not None and obj["id"] == caller.token["id"]}
    return obj


def render_bytes(store: Store, type_spec: ResourceType, obj: Obj, caller: Caller | None, base: str) -> bytes:
    """The JSON of one rendered object, cached until the object changes (callers' views excepted)."""
    cacheable = type_spec.name not in ("user", "token", "principal")
    key = (type_spec.name, str(obj["id"]))
    if cacheable:
        hit = store.render_cache.get(key)
        if hit is not None and hit[0] == base and hit[1] is obj:
            return hit[2]
    out = json.dumps(render(type_spec, obj, caller, base), separators=(",", ":")).encode()
    if cacheable:
        store.render_cache[key] = (base, obj, out)
    return out


def render(type_spec: ResourceType, obj: Obj, caller: Caller | None, base: str) -> Obj:
    """The object as the API returns it: references always present, empty fields dropped, links, `…TS` times."""
    view = caller_view(type_spec, obj, caller)
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
                out[f"{key}TS"] = ts_ms(str(out[key]))
    self_url = f"{base}/v3/{type_spec.plural.lower()}/{quote(str(obj['id']), safe='')}"
    links = {"self": self_url}
    if type_spec.writable:
        links["update"] = self_url
        links["remove"] = self_url
    out["links"] = links
    out["actions"] = {}
    return out
