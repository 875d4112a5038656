"""Writing: POST (binding creation with Rancher's checks in Rancher's order, principal search), PUT and DELETE."""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

from accessbot_emulators.rancher.auth import Caller
from accessbot_emulators.rancher.errors import ApiError, json_body, webhook_denial
from accessbot_emulators.rancher.listing import collection
from accessbot_emulators.rancher.naming import provider_of, random_name
from accessbot_emulators.rancher.principals import search
from accessbot_emulators.rancher.rendering import lookup, render
from accessbot_emulators.rancher.schema import (
    CRTB,
    DISPLAY_NAME_ANNOTATION,
    GRB,
    GRB_OWNER_LABEL,
    PRTB,
    Obj,
    ResourceType,
    rfc3339,
)
from accessbot_emulators.rancher.settings import version_tuple
from accessbot_emulators.rancher.store import Store

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def post(
    store: Store, type_spec: ResourceType, action: str | None, body: bytes, *, caller: Caller | None, base: str
) -> tuple[int, Any]:
    """`POST /v3/<type>`: create a binding, or search principals; (status, rendered object or collection bytes)."""
    assert caller is not None
    data = json_body(body)
    if type_spec.name == "principal":
        if action != "search":
            raise ApiError(422, "InvalidAction", f"invalid action: {action}")
        return 200, collection(
            store, type_spec, search(store, data, caller), base, conditions={}, paging=None, caller=caller
        )
    if action:
        raise ApiError(422, "InvalidAction", f"invalid action: {action}")
    if type_spec.name in (CRTB, PRTB):
        obj = create_rtb(store, type_spec, data, caller)
    elif type_spec.name == GRB:
        obj = create_grb(store, data, caller)
    else:
        raise ApiError(405, "MethodNotAllow", "Method POST not supported")
    return 201, render(type_spec, obj, caller, base)


def create_rtb(store: Store, type_spec: ResourceType, data: Obj, caller: Caller) -> Obj:
    """Create a CRTB or PRTB after norman's, the v3 validator's, the store's and the webhook's checks, in that order."""
    is_crtb = type_spec.name == CRTB
    scope_field = "clusterId" if is_crtb else "projectId"
    # 1. norman: required fields and name format
    for required in (scope_field, "roleTemplateId"):
        if not data.get(required):
            raise ApiError(422, "MissingRequired", "", required)
    name = data.get("name")
    if name is not None and (not isinstance(name, str) or not _DNS_LABEL.match(name)):
        raise ApiError(422, "InvalidFormat", "Invalid characters in name", "name")
    # 2. v3 validator: role template
    rt_id = str(data["roleTemplateId"])
    role = store.db["roleTemplate"].get(rt_id)
    if role is None:
        message = f'Error getting role template: roletemplates.management.cattle.io "{rt_id}" not found'
        raise ApiError(500, "ServerError", message)
    if role.get("locked"):
        raise ApiError(422, "InvalidState", f"Role {role['name']} is locked")
    expected = "cluster" if is_crtb else "project"
    if role.get("context") != expected:
        message = f"Cannot reference context [{role.get('context', '')}] from [{expected}] context"
        raise ApiError(422, "InvalidBodyContent", message)
    # 3. store: subject and principal resolution through the caller key's provider
    user_side = bool(data.get("userId") or data.get("userPrincipalId"))
    group_side = bool(data.get("groupId") or data.get("groupPrincipalId"))
    if user_side == group_side:
        message = "must specify exactly one of userId/userPrincipalId or groupId/groupPrincipalId"
        raise ApiError(422, "InvalidBodyContent", message)
    annotations = dict(data.get("annotations") or {})
    upid = data.get("userPrincipalId")
    if upid and not str(upid).startswith("local://"):
        upid = str(upid)
        if provider_of(upid) != caller.token["authProvider"]:
            raise ApiError(500, "ServerError", f'user.management.cattle.io "{upid.split("://", 1)[-1]}" not found')
        known = store.db["principal"].get(upid)
        annotations[DISPLAY_NAME_ANNOTATION] = (known or {}).get("name") or upid.split("://", 1)[-1]
    # 4. webhook: scope exists, escalation, duplicates
    scope = str(data[scope_field])
    if is_crtb and scope not in store.db["cluster"]:
        raise webhook_denial(400, "BadRequest", type_spec, f'clusterName: Invalid value: "{scope}": cluster not found')
    if not is_crtb:
        if not re.match(r"^[^:]+:[^:]+$", scope):
            message = f'projectName: Invalid value: "{scope}": must be <clusterId>:<projectName>'
            raise webhook_denial(400, "BadRequest", type_spec, message)
        if scope not in store.db["project"]:
            message = f'projectName: Invalid value: "{scope}": project not found'
            raise webhook_denial(400, "BadRequest", type_spec, message)
    caller_id = caller.user["id"]
    if not store.is_admin(caller_id):
        owner = {"cluster-owner"} if is_crtb else {"project-owner"}
        held = store.holds(caller_id, type_spec.name, scope_field, scope, {rt_id} | owner)
        if not is_crtb and not held:
            held = store.holds(caller_id, CRTB, "clusterId", scope.split(":", 1)[0], {"cluster-owner"})
        if not held:
            message = f'user "{caller_id}" is attempting to grant "{rt_id}" without holding it (escalation)'
            raise webhook_denial(403, "Forbidden", type_spec, message)
    major_minor = version_tuple(store.settings.server_version)
    rejects = major_minor >= ((2, 14) if is_crtb else (2, 15))
    subject_field = next(f for f in ("userId", "userPrincipalId", "groupId", "groupPrincipalId") if data.get(f))
    if rejects:
        for bid in store.idx[type_spec.name][scope_field].get(scope, set()):
            other = store.db[type_spec.name][bid]
            if (
                not other.get("removed")
                and other.get("roleTemplateId") == rt_id
                and other.get(subject_field) == data.get(subject_field)
                and other["name"] != name
            ):
                kind = "crtb" if is_crtb else "prtb"
                raise webhook_denial(409, "Conflict", type_spec, f"duplicate {kind} not allowed")
    prefix = "crtb" if is_crtb else "prtb"
    if not name:
        if major_minor >= (2, 15):
            digest = hashlib.sha256(f"{data.get(subject_field)}/{rt_id}/{scope}".encode()).digest()
            name = f"{prefix}-" + base64.b32encode(digest).decode().lower()[:10]
        else:
            name = f"{prefix}-{random_name(store.rng)}"
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
    store.clock = max(store.clock, store.now())
    values["created"] = rfc3339(store.now())
    probe = {scope_field: scope, "name": name, "projectId": scope}
    if store.binding_id(type_spec.name, probe) in store.db[type_spec.name]:
        raise ApiError(409, "AlreadyExists", f'{type_spec.k8s} "{name}" already exists')
    obj = store.new_binding(type_spec.name, values, creator=caller_id)
    store.pending_fill.append((store.now() + store.settings.fill_delay, type_spec.name, obj["id"]))
    return obj


def create_grb(store: Store, data: Obj, caller: Caller) -> Obj:
    """Create a global role binding (admins only) and the cluster bindings its role inherits."""
    if not data.get("globalRoleId"):
        raise ApiError(422, "MissingRequired", "", "globalRoleId")
    if bool(data.get("userId") or data.get("userPrincipalId")) == bool(data.get("groupPrincipalId")):
        raise ApiError(422, "InvalidBodyContent", "must specify exactly one of userId or groupPrincipalId")
    if str(data["globalRoleId"]) not in store.db["globalRole"]:
        raise ApiError(404, "NotFound", f'globalroles.management.cattle.io "{data["globalRoleId"]}" not found')
    if not store.is_admin(caller.user["id"]):
        raise ApiError(403, "Forbidden", "admission webhook denied the request: escalation")
    name = data.get("name") or f"grb-{random_name(store.rng)}"
    if name in store.db[GRB]:
        raise ApiError(409, "AlreadyExists", f'globalrolebindings.management.cattle.io "{name}" already exists')
    obj = store.new_binding(GRB, {**data, "name": name, "created": rfc3339(store.now())}, creator=caller.user["id"])
    store.fill(GRB, obj["id"])
    store.inherit_cluster_roles(obj)
    return obj


def update(store: Store, type_spec: ResourceType, obj_id: str, body: bytes, *, caller: Caller | None, base: str) -> Obj:
    """`PUT`: replace labels and annotations (`cattle.io/` ones kept); every other field is `noupdate`."""
    obj = dict(lookup(store, type_spec, obj_id, caller))
    data = json_body(body)
    for key in ("labels", "annotations"):
        if key in data and isinstance(data[key], dict):
            kept = {k: v for k, v in obj.get(key, {}).items() if k.startswith("cattle.io/")}
            given = {k: str(v) for k, v in data[key].items() if not k.startswith("cattle.io/")}
            obj[key] = {**kept, **given}
    # clusterId, projectId, roleTemplateId, userId, userPrincipalId, groupId, groupPrincipalId: noupdate, dropped
    store.put(type_spec.name, obj)
    return render(type_spec, obj, caller, base)


def delete(
    store: Store, type_spec: ResourceType, obj_id: str, caller: Caller | None, base: str
) -> tuple[int, Obj | None]:
    """`DELETE`: 204 at once without finalizers, else 200 with `removed` set and a purge after `finalizer_delay`."""
    obj = lookup(store, type_spec, obj_id, caller)
    delay = store.settings.finalizer_delay
    if type_spec.name == GRB:
        for crtb_id in list(store.db[CRTB]):
            if store.db[CRTB][crtb_id].get("labels", {}).get(GRB_OWNER_LABEL) == obj["name"]:
                store.drop(CRTB, crtb_id)
    if delay is None:
        store.drop(type_spec.name, obj_id)
        return 204, None
    if not obj.get("removed"):
        obj = dict(obj, removed=rfc3339(store.now()))
        store.put(type_spec.name, obj)
        store.pending_purge.append((store.now() + delay, type_spec.name, obj_id))
    return 200, render(type_spec, obj, caller, base)
