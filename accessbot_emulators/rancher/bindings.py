"""Writing: POST (binding creation with Rancher's checks in Rancher's order, principal search), PUT and DELETE.

The order of a binding create (reference §4, each step with its source):
1. norman: required fields, DNS-1123 name (norman parse/builder/builder.go);
2. the v3 validator: role template exists (500 "Error getting role template"), not locked, right context
   (rancher pkg/api/norman/customization/roletemplatebinding/validator.go);
3. the store: exactly one subject; a non-`local://` user principal resolved through the key's provider
   (customization/authn/rtb_store.go; a failure is a raw error, so 500); 2.12+ looks the project up (500 when
   unknown, store/scoped/store.go), before 2.12 a missing project namespace is Kubernetes' 404;
4. the webhook: cluster exists (400), escalation (422 Invalid, webhook pkg/auth/escalation.go), duplicates (409
   Conflict on 2.14+ CRTBs and 2.15+ PRTBs).
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

from accessbot_emulators.rancher import controllers
from accessbot_emulators.rancher.auth import Caller
from accessbot_emulators.rancher.errors import ApiError, json_body, webhook_denial
from accessbot_emulators.rancher.listing import collection
from accessbot_emulators.rancher.naming import random_name
from accessbot_emulators.rancher.principals import PrincipalNotResolved, get_principal, search
from accessbot_emulators.rancher.profiles import (
    DETERMINISTIC_BINDING_NAMES,
    DUPLICATE_CRTB_REFUSED,
    DUPLICATE_PRTB_REFUSED,
    GRB_USER_PRINCIPAL,
    UNKNOWN_PROJECT_500,
)
from accessbot_emulators.rancher.rendering import lookup, render
from accessbot_emulators.rancher.schema import (
    CRTB,
    DISPLAY_NAME_ANNOTATION,
    GRB,
    GRB_OWNER_LABEL,
    PRTB,
    TYPES,
    Obj,
    ResourceType,
    rfc3339,
)
from accessbot_emulators.rancher.store import Store

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
OWNER_ROLES = {CRTB: "cluster-owner", PRTB: "project-owner"}


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
    return 201, render(store, type_spec, obj, caller, base)


def _check_role(store: Store, rt_id: str, expected: str) -> None:
    """Step 2, the v3 validator: the role template exists, is not locked, and fits the binding's context."""
    role = store.db["roleTemplate"].get(rt_id)
    if role is None:
        message = f'Error getting role template: roletemplates.management.cattle.io "{rt_id}" not found'
        raise ApiError(500, "ServerError", message)
    if role.get("locked"):
        raise ApiError(422, "InvalidState", f"Role {role['name']} is locked")
    if role.get("context") != expected:
        message = f"Cannot reference context [{role.get('context', '')}] from [{expected}] context"
        raise ApiError(422, "InvalidBodyContent", message)


def _resolve_subject(store: Store, data: Obj, caller: Caller) -> dict[str, str]:
    """Step 3, the store: exactly one subject; a user principal resolved through the key's provider (its display)."""
    user_side = bool(data.get("userId") or data.get("userPrincipalId"))
    group_side = bool(data.get("groupId") or data.get("groupPrincipalId"))
    if user_side == group_side:
        message = "must specify exactly one of userId/userPrincipalId or groupId/groupPrincipalId"
        raise ApiError(422, "InvalidBodyContent", message)
    annotations = {str(k): str(v) for k, v in (data.get("annotations") or {}).items()}
    upid = data.get("userPrincipalId")
    if upid and not str(upid).startswith("local://"):
        try:
            principal = get_principal(store, str(upid), caller)
        except PrincipalNotResolved as err:  # a raw error from the providers: norman answers 500
            raise ApiError(500, "ServerError", err.message) from err
        if principal.get("name"):
            annotations[DISPLAY_NAME_ANNOTATION] = str(principal["name"])
    return annotations


def _check_scope(store: Store, type_spec: ResourceType, scope: str) -> None:
    """Steps 3-4: the project (store on 2.12+, the namespace before) and the cluster (webhook)."""
    if type_spec.name == CRTB:
        if scope not in store.db["cluster"]:
            message = f'clusterName: Invalid value: "{scope}": cluster not found'
            raise webhook_denial(400, "BadRequest", type_spec, message)
        return
    project_name = scope.partition(":")[2]
    if project_name and scope not in store.db["project"]:
        if store.settings.profile.has(UNKNOWN_PROJECT_500):
            raise ApiError(500, "ServerError", f'projects.management.cattle.io "{project_name}" not found')
        raise ApiError(404, "NotFound", f'namespaces "{project_name}" not found')
    if not re.match(r"^[^:]+:[^:]+$", scope):
        message = f'projectName: Invalid value: "{scope}": must be <clusterId>:<projectName>'
        raise webhook_denial(400, "BadRequest", type_spec, message)


def _check_escalation(store: Store, type_spec: ResourceType, scope: str, rt_id: str, caller: Caller) -> None:
    """Step 4, the webhook's escalation check: the caller must already hold what it grants (422 Invalid).

    The webhook compares RBAC rules (webhook pkg/auth/escalation.go ConfirmNoEscalation); the emulator compares
    role names: an admin-like global role (user or group GRB), the owner role of the scope (cluster-owner also
    for the cluster's projects), or a role whose `roleTemplateIds` closure includes the one granted.
    """
    user_id = caller.user["id"]
    groups = tuple(caller.token.get("groupPrincipals") or ())
    if controllers.is_admin(store, user_id, groups):
        return
    scope_field = "clusterId" if type_spec.name == CRTB else "projectId"
    wanted = {rt_id}
    candidates = [(type_spec.name, scope_field, scope)]
    if type_spec.name == PRTB:
        candidates.append((CRTB, "clusterId", scope.split(":", 1)[0]))
    for type_name, field, value in candidates:
        ids = set(store.idx[type_name]["userId"].get(user_id, set()))
        for group in groups:
            ids |= store.idx[type_name]["groupPrincipalId"].get(group, set())
        for bid in ids:
            obj = store.db[type_name][bid]
            if obj.get(field) != value or obj.get("removed"):
                continue
            held = str(obj.get("roleTemplateId"))
            if held in (OWNER_ROLES[type_name], "cluster-owner") or wanted <= controllers.role_closure(store, held):
                return
    message = (
        f'user "{user_id}" (groups={list(groups)}) is attempting to grant RBAC permissions not currently held '
        f"(role template {rt_id})"
    )
    raise webhook_denial(422, "Invalid", type_spec, message)


def _check_duplicate(store: Store, type_spec: ResourceType, scope: str, data: Obj, name: str | None) -> None:
    """Step 4, the webhook's duplicate check (CRTBs from 2.14, PRTBs from 2.15): 409 Conflict."""
    is_crtb = type_spec.name == CRTB
    behaviour = DUPLICATE_CRTB_REFUSED if is_crtb else DUPLICATE_PRTB_REFUSED
    if not store.settings.profile.has(behaviour):
        return
    scope_field = "clusterId" if is_crtb else "projectId"
    for bid in store.idx[type_spec.name][scope_field].get(scope, set()):
        other = store.db[type_spec.name][bid]
        if other.get("removed") or other["name"] == name or other.get("roleTemplateId") != data["roleTemplateId"]:
            continue  # bindings being deleted and the object itself are not duplicates (validator.go)
        for field in ("userId", "userPrincipalId", "groupId", "groupPrincipalId"):
            if data.get(field) and other.get(field) == data.get(field):
                kind = "crtb" if is_crtb else "prtb"
                raise webhook_denial(409, "Conflict", type_spec, f"duplicate {kind} not allowed")


def create_rtb(store: Store, type_spec: ResourceType, data: Obj, caller: Caller) -> Obj:
    """Create a CRTB or PRTB after norman's, the v3 validator's, the store's and the webhook's checks, in that order."""
    is_crtb = type_spec.name == CRTB
    scope_field = "clusterId" if is_crtb else "projectId"
    for required in (scope_field, "roleTemplateId"):
        if not data.get(required):
            raise ApiError(422, "MissingRequired", "", required)
    name = data.get("name")
    if name is not None and (not isinstance(name, str) or not _DNS_LABEL.match(name)):
        raise ApiError(422, "InvalidFormat", "Invalid characters in name", "name")
    rt_id = str(data["roleTemplateId"])
    _check_role(store, rt_id, "cluster" if is_crtb else "project")
    annotations = _resolve_subject(store, data, caller)
    scope = str(data[scope_field])
    _check_scope(store, type_spec, scope)
    _check_escalation(store, type_spec, scope, rt_id, caller)
    _check_duplicate(store, type_spec, scope, data, name)
    prefix = "crtb" if is_crtb else "prtb"
    subject_field = next(f for f in ("userPrincipalId", "userId", "groupPrincipalId", "groupId") if data.get(f))
    if not name:
        if store.settings.profile.has(DETERMINISTIC_BINDING_NAMES):
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
    obj = store.new_binding(type_spec.name, values, creator=caller.user["id"])
    store.pending_fill.append((store.now() + store.settings.fill_delay, type_spec.name, obj["id"]))
    return obj


def create_grb(store: Store, data: Obj, caller: Caller) -> Obj:
    """Create a global role binding (admins only) and what the controllers derive from it."""
    if not data.get("globalRoleId"):
        raise ApiError(422, "MissingRequired", "", "globalRoleId")
    if not store.settings.profile.has(GRB_USER_PRINCIPAL):
        data = {k: v for k, v in data.items() if k != "userPrincipalId"}  # an unknown field before 2.11
    if bool(data.get("userId") or data.get("userPrincipalId")) == bool(data.get("groupPrincipalId")):
        raise ApiError(422, "InvalidBodyContent", "must specify exactly one of userId or groupPrincipalId")
    if str(data["globalRoleId"]) not in store.db["globalRole"]:
        raise ApiError(404, "NotFound", f'globalroles.management.cattle.io "{data["globalRoleId"]}" not found')
    if not controllers.is_admin(store, caller.user["id"], tuple(caller.token.get("groupPrincipals") or ())):
        raise webhook_denial(422, "Invalid", TYPES[GRB], "attempting to grant RBAC permissions not currently held")
    name = data.get("name") or f"grb-{random_name(store.rng)}"
    if name in store.db[GRB]:
        raise ApiError(409, "AlreadyExists", f'globalrolebindings.management.cattle.io "{name}" already exists')
    obj = store.new_binding(GRB, {**data, "name": name, "created": rfc3339(store.now())}, creator=caller.user["id"])
    controllers.after_grb(store, obj)
    return store.db[GRB][obj["id"]]


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
    return render(store, type_spec, obj, caller, base)


def delete(
    store: Store, type_spec: ResourceType, obj_id: str, caller: Caller | None, base: str
) -> tuple[int, Obj | None]:
    """`DELETE`: 200 with `removed` set while finalizers run (`finalizer_delay` > 0), else 204.

    norman store/proxy/proxy_store.go deletes, reads the object again and returns nothing when it is already gone
    (api/handler/delete.go: 204); finalizers that ran within that moment look like `finalizer_delay` 0 or None.
    """
    obj = lookup(store, type_spec, obj_id, caller)
    delay = store.settings.finalizer_delay
    if type_spec.name == GRB:
        for crtb_id in list(store.db[CRTB]):
            if store.db[CRTB][crtb_id].get("labels", {}).get(GRB_OWNER_LABEL) == obj["name"]:
                store.drop(CRTB, crtb_id)
    if delay is None or (delay <= 0 and not obj.get("removed")):
        store.drop(type_spec.name, obj_id)
        return 204, None
    if not obj.get("removed"):
        obj = dict(obj, removed=rfc3339(store.now()))
        store.put(type_spec.name, obj)
        store.pending_purge.append((store.now() + delay, type_spec.name, obj_id))
    return 200, render(store, type_spec, obj, caller, base)
