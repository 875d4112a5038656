"""What Rancher's controllers do after an object is stored: subjects filled in, users ensured, roles propagated.

Each function cites the controller it plays. They run at once for a fixture (a settled estate) and, for objects
created over the API, when `Store.settle` finds them due (`fill_delay` after the create), as Rancher's are
asynchronous.
"""

from __future__ import annotations

import base64
import hashlib
from typing import TYPE_CHECKING

from accessbot_emulators.rancher.naming import random_name
from accessbot_emulators.rancher.profiles import INHERITED_CLUSTER_ROLES, RESTRICTED_ADMIN_CRTBS
from accessbot_emulators.rancher.schema import (
    CRTB,
    DISPLAY_NAME_ANNOTATION,
    GRB,
    GRB_OWNER_LABEL,
    MANAGED_BY_LABEL,
    Obj,
)

if TYPE_CHECKING:
    from accessbot_emulators.rancher.store import Store

RESTRICTED_ADMIN = "restricted-admin"
RESTRICTED_ADMIN_SOURCE = ("field.cattle.io/source", "restrictedAdminsClusterOwner")
"""Label on restricted-admin CRTBs (rancher pkg/controllers/management/restrictedadminrbac/register.go@v2.10.0)."""


def hashed_principal_label(principal: str) -> str:
    """The label key Rancher puts on a user it creates for a principal: base32hex, no padding, UPPER case, 63 chars.

    rancher pkg/auth/providers/common/usermanager.go@v2.14.0 checkLabels:
    `base32.HexEncoding.WithPadding(base32.NoPadding).EncodeToString([]byte(principalName))`, cut to 63.
    """
    return base64.b32hexencode(principal.encode()).decode().rstrip("=")[:63]


def ensure_user(store: Store, principal: str, display: str) -> Obj:
    """Find the user holding `principal`, or create `u-` + 10 base32 chars of its sha256 with only that principal.

    rancher pkg/auth/providers/common/usermanager.go@v2.14.0 EnsureUser (checkCache, checkLabels, then create with
    `PrincipalIDs: []string{principalName}`). `local://<id>` is appended later by the user lifecycle
    (pkg/controllers/management/auth/user.go@v2.14.0 `userLifecycle.Create`), scheduled here `fill_delay` on.
    """
    found = store.user_by_principal(principal)
    if found is not None:
        return found
    if principal.startswith("local://"):
        return store.user({"id": principal.removeprefix("local://"), "name": display})
    digest = hashlib.sha256(principal.encode()).digest()
    uid = "u-" + base64.b32encode(digest).decode().rstrip("=")[:10].lower()
    user = store.user({"id": uid, "name": display, "principalIds": [principal]}, settled=False)
    user["labels"][hashed_principal_label(principal)] = "hashed-principal-name"
    store.pending_users.append((store.now() + store.settings.fill_delay, uid))
    return user


def add_local_principal(store: Store, user_id: str) -> None:
    """The user lifecycle's create handler: append `local://<id>` when the user has no local principal yet."""
    user = store.db["user"].get(user_id)
    if user is not None and not any(p.startswith("local://") for p in user["principalIds"]):
        store.put("user", dict(user, principalIds=[*user["principalIds"], f"local://{user_id}"]))


def fill(store: Store, type_name: str, obj_id: str) -> None:
    """The binding controllers' reconcileSubject: ensure the user of a principal and fill userId / userPrincipalId.

    rancher pkg/controllers/management/auth/crtb_handler.go@v2.14.0 (EnsureUser for a principal-only binding; for a
    userId-only one the user's principal that ends with the user id, i.e. `local://<id>`); prtb_handler.go likewise.
    """
    obj = store.db[type_name].get(obj_id)
    if obj is None:
        return
    upid, uid = obj.get("userPrincipalId"), obj.get("userId")
    if upid and not uid:
        display = obj.get("annotations", {}).get(DISPLAY_NAME_ANNOTATION) or upid.split("://", 1)[-1]
        user = ensure_user(store, upid, display)
        store.put(type_name, dict(obj, userId=user["id"]))
    elif uid and not upid and type_name != GRB:
        holder = store.db["user"].get(uid)
        if holder is not None:
            principal = next((p for p in holder["principalIds"] if p.endswith(uid)), None)
            if principal is not None:
                store.put(type_name, dict(obj, userPrincipalId=principal))
            else:  # the user lifecycle has not added local:// yet: Rancher requeues until it has
                store.pending_fill.append((store.now() + store.settings.fill_delay, type_name, obj_id))


def inherit_cluster_roles(store: Store, grb: Obj) -> None:
    """A GRB's `inheritedClusterRoles` as `crtb-grb-*` CRTBs in every non-local cluster (2.8+).

    rancher pkg/controllers/management/auth/globalroles/globalrolebinding_handler.go@v2.14.0:264-289 (GenerateName
    `crtb-grb-`, labels authz.management.cattle.io/grb-owner and `app.kubernetes.io/managed-by: rancher`
    (pkg/controllers/options.go:20-21, the same since v2.8.0), the local cluster skipped).
    """
    if not store.settings.profile.has(INHERITED_CLUSTER_ROLES):
        return
    role = store.db["globalRole"].get(str(grb.get("globalRoleId")))
    if role is None:
        return
    for rt_id in role.get("inheritedClusterRoles") or []:
        for cluster in list(store.db["cluster"].values()):
            if cluster["id"] == "local":
                continue
            values = {
                "name": f"crtb-grb-{random_name(store.rng)}",
                "clusterId": cluster["id"],
                "roleTemplateId": rt_id,
                "userId": grb.get("userId"),
                "userPrincipalId": grb.get("userPrincipalId"),
                "groupPrincipalId": grb.get("groupPrincipalId"),
                "labels": {GRB_OWNER_LABEL: grb["name"], MANAGED_BY_LABEL: "rancher"},
            }
            obj = store.new_binding(CRTB, values, creator=None)
            fill(store, CRTB, obj["id"])


def grb_target_key(grb: Obj) -> str:
    """rancher pkg/rbac/common.go@v2.10.0 GetGRBTargetKey: the user id, else `u-` + sha256 of the group principal."""
    if grb.get("userId"):
        return str(grb["userId"])
    digest = hashlib.sha256(str(grb.get("groupPrincipalId") or "").encode()).digest()
    return "u-" + base64.b32encode(digest).decode().rstrip("=")[:10].lower()


def restricted_admin_crtbs(store: Store, grb: Obj) -> None:
    """A restricted-admin GRB's cluster-owner CRTB in every non-local cluster (2.8-2.10).

    rancher pkg/controllers/management/restrictedadminrbac/cluster.go@v2.10.0 clusterOwnerSync: name
    `SafeConcatName(GetGRBTargetKey(grb), "restricted-admin", "cluster-owner")`, label
    `field.cattle.io/source: restrictedAdminsClusterOwner`, userName else groupPrincipalName.
    """
    if grb.get("globalRoleId") != RESTRICTED_ADMIN or not store.settings.profile.has(RESTRICTED_ADMIN_CRTBS):
        return
    name = f"{grb_target_key(grb)}-restricted-admin-cluster-owner"[:63]
    for cluster in list(store.db["cluster"].values()):
        if cluster["id"] == "local" or f"{cluster['id']}:{name}" in store.db[CRTB]:
            continue
        subject = {"userId": grb["userId"]} if grb.get("userId") else {"groupPrincipalId": grb.get("groupPrincipalId")}
        values = {
            "name": name,
            "clusterId": cluster["id"],
            "roleTemplateId": "cluster-owner",
            **subject,
            "labels": {RESTRICTED_ADMIN_SOURCE[0]: RESTRICTED_ADMIN_SOURCE[1]},
        }
        obj = store.new_binding(CRTB, values, creator=None)
        fill(store, CRTB, obj["id"])


def after_grb(store: Store, grb: Obj) -> None:
    """Everything the controllers do for a new GRB: its subject, inherited cluster roles, restricted-admin CRTBs."""
    fill(store, GRB, grb["id"])
    inherit_cluster_roles(store, grb)
    restricted_admin_crtbs(store, grb)


def is_admin_role(role: Obj | None) -> bool:
    """rancher pkg/rbac/common.go@v2.14.0 IsAdminGlobalRole: builtin `admin`, or `*`/`*`/`*` + nonResourceURLs `*`."""
    if role is None:
        return False
    if role.get("builtin") and role.get("id") == "admin":
        return True
    resource = non_resource = False
    for rule in role.get("rules") or []:
        verbs = rule.get("verbs") or []
        if "*" in (rule.get("resources") or []) and "*" in (rule.get("apiGroups") or []) and "*" in verbs:
            resource = True
        elif "*" in (rule.get("nonResourceURLs") or []) and "*" in verbs:
            non_resource = True
    return resource and non_resource


def is_admin(store: Store, user_id: str, groups: list[str] | tuple[str, ...] = ()) -> bool:
    """Whether the user, or one of `groups`, holds a global role Rancher treats as admin."""
    grb_ids = set(store.idx[GRB]["userId"].get(user_id, set()))
    for group in groups:
        grb_ids |= store.idx[GRB]["groupPrincipalId"].get(group, set())
    return any(is_admin_role(store.db["globalRole"].get(str(store.db[GRB][g].get("globalRoleId")))) for g in grb_ids)


def role_closure(store: Store, role_id: str) -> set[str]:
    """A role template and every template it inherits through `roleTemplateIds`, transitively."""
    seen: set[str] = set()
    todo = [role_id]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        todo.extend((store.db["roleTemplate"].get(current) or {}).get("roleTemplateIds") or [])
    return seen
