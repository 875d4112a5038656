"""The emulator's objects: storage by type with field indexes, seeding from a fixture, and the controllers' queue.

What Rancher's controllers do (controllers.py) runs when `settle` finds it due: subjects filled in and users
completed after `fill_delay`, objects whose finalizers ran purged after `finalizer_delay`. The fixture is seeded
as the version played (`settings.server_version`) would hold it.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from typing import Any

from accessbot_emulators.rancher import controllers
from accessbot_emulators.rancher.naming import provider_of, random_name, user_id_for_principal
from accessbot_emulators.rancher.profiles import BACKING_NAMESPACE, RESTRICTED_ADMIN_ROLE
from accessbot_emulators.rancher.schema import CRTB, GRB, PRTB, RESOURCE_TYPES, Obj, filter_text, rfc3339
from accessbot_emulators.rancher.settings import EmulatorSettings


class Store:
    """Objects by type and id, indexes on the indexed fields, pending controller work, the seeded generators.

    Not thread-safe on its own: the emulator holds its lock around every use.
    """

    def __init__(self, settings: EmulatorSettings) -> None:
        """An empty store; `settings` is shared with the emulator (changes apply at once)."""
        self.settings = settings
        self.db: dict[str, dict[str, Obj]] = {}
        self.idx: dict[str, dict[str, dict[str, set[str]]]] = {}
        self.pending_fill: list[tuple[float, str, str]] = []
        self.pending_purge: list[tuple[float, str, str]] = []
        self.pending_users: list[tuple[float, str]] = []
        self.render_cache: dict[tuple[str, str], tuple[str, Obj, bytes]] = {}
        self.rng = random.Random(self.settings.seed)
        self.clock = 1_741_083_072.0

    def clear(self) -> None:
        """Forget every object and pending change; restart the random generator from the seed."""
        self.db = {t.name: {} for t in RESOURCE_TYPES}
        self.idx = {t.name: {f: {} for f in t.indexed} for t in RESOURCE_TYPES}
        self.pending_fill.clear()
        self.pending_purge.clear()
        self.pending_users.clear()
        self.render_cache.clear()
        self.rng = random.Random(self.settings.seed)

    def seed(self, fx: Mapping[str, Any]) -> None:
        """Store every object of a fixture, bindings last, each filled in by the controller at once."""
        for item in fx.get("settings", []):
            self.put("setting", self.common(dict(item)))
        for sid, value in (("server-version", self.settings.server_version), ("cacerts", "")):
            if sid not in self.db["setting"]:
                self.put("setting", self.common({"id": sid, "value": value, "default": ""}))
        for item in fx.get("clusters", []):
            self.put("cluster", self.common({"state": "active", **item}))
        for item in fx.get("projects", []):
            self.put("project", self.project(dict(item)))
        for item in fx.get("roleTemplates", []):
            self.put("roleTemplate", self.common({"builtin": False, "hidden": False, "locked": False, **item}))
        restricted_admin = self.settings.profile.has(RESTRICTED_ADMIN_ROLE)
        for item in fx.get("globalRoles", []):
            if item.get("id") == controllers.RESTRICTED_ADMIN and not restricted_admin:
                continue  # gone in 2.11 (profiles.RESTRICTED_ADMIN_ROLE)
            self.put("globalRole", self.common({"builtin": False, "newUserDefault": False, **item}))
        for item in fx.get("principals", []):
            self.principal(dict(item))
        for item in fx.get("users", []):
            self.user(dict(item))
        for item in fx.get("tokens", []):
            self.token(dict(item))
        for key, type_name in (
            ("globalRoleBindings", GRB),
            ("clusterRoleTemplateBindings", CRTB),
            ("projectRoleTemplateBindings", PRTB),
        ):
            for item in fx.get(key, []):
                if type_name == GRB and str(item.get("globalRoleId")) not in self.db["globalRole"]:
                    continue  # a binding of a role this version does not have
                obj = self.new_binding(type_name, dict(item), creator=item.get("creatorId"))
                if type_name == GRB:
                    controllers.after_grb(self, obj)
                else:
                    controllers.fill(self, type_name, obj["id"])
        self.settle(force=True)

    def now(self) -> float:
        """The wall-clock time (the demo moves it with time-machine)."""
        return time.time()

    def _uuid(self) -> str:
        raw = self.rng.getrandbits(128)
        text = f"{raw:032x}"
        return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"

    def common(self, obj: Obj) -> Obj:
        """Fill the metadata every object has: name, labels, annotations, uuid, created."""
        obj.setdefault("name", obj.get("id", ""))
        obj.setdefault("labels", {})
        obj.setdefault("annotations", {})
        obj.setdefault("uuid", self._uuid())
        if "created" not in obj:
            self.clock += 1
            obj["created"] = rfc3339(self.clock)
        return obj

    def project(self, item: Obj) -> Obj:
        """A project `c-…:p-…` with its backing namespace (`style` new → `c-…-p-…`, old → `p-…`)."""
        pid = str(item["id"])
        if ":" not in pid:
            raise ValueError(f"project id {pid} must be <clusterId>:<projectName>")
        cluster_id, pname = pid.split(":", 1)
        style = item.pop("style", "new")
        if not self.settings.profile.has(BACKING_NAMESPACE):
            style = "old"  # before 2.12 every project's namespace is its name
        item.setdefault("clusterId", cluster_id)
        item.setdefault("backingNamespace", f"{cluster_id}-{pname}" if style == "new" else pname)
        item.setdefault("state", "active")
        item["namespaceId"] = None
        return self.common(item)

    def principal(self, item: Obj) -> Obj:
        """Store a principal the providers can resolve, its provider and type guessed from the id."""
        pid = str(item["id"])
        item.setdefault("provider", provider_of(pid))
        item.setdefault(
            "principalType", "group" if "_group://" in pid or "_team://" in pid or "_org://" in pid else "user"
        )
        item.setdefault("name", pid.split("://", 1)[-1])
        item.setdefault("loginName", item["name"] if item["principalType"] == "user" else "")
        self.db["principal"][pid] = item
        return item

    def user(self, item: Obj, *, settled: bool = True) -> Obj:
        """Store a user; `principal` gives an IdP user whose id is derived as Rancher derives it.

        A settled user (a fixture's) already carries `local://<id>`; the controllers add it later (controllers.py).
        """
        principal = item.pop("principal", None)
        if principal and "id" not in item:
            item["id"] = user_id_for_principal(principal)
        uid = str(item["id"])
        pids = list(item.get("principalIds") or ([principal] if principal else []))
        if settled and f"local://{uid}" not in pids:
            pids.append(f"local://{uid}")
        item["principalIds"] = pids
        item.setdefault("enabled", True)
        item.setdefault("mustChangePassword", False)
        self.common(item)
        if principal:
            item["labels"].setdefault(controllers.hashed_principal_label(principal), "hashed-principal-name")
        for pid in pids:
            if pid not in self.db["principal"] and not pid.startswith("system://"):
                self.principal({"id": pid, "name": item.get("name") or uid, "principalType": "user"})
        return self.put("user", item)

    def token(self, item: Obj) -> Obj:
        """Store an API key (`name`, `secret`, `userId`, `authProvider`, optional `groupPrincipals`)."""
        name = str(item.pop("name", None) or item.get("id") or f"token-{random_name(self.rng)}")
        secret = str(item.pop("secret", None) or random_name(self.rng, 54))
        user = self.db["user"].get(str(item.get("userId")))
        provider = str(item.get("authProvider", "local"))
        user_principal = ""
        if user is not None:
            user_principal = next(
                (p for p in user["principalIds"] if provider_of(p) == provider), f"local://{user['id']}"
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
        return self.put("token", self.common(obj))

    def binding_id(self, type_name: str, obj: Obj) -> str:
        """A binding's id: GRB `name`, CRTB `clusterId:name`, PRTB `backingNamespace:name`."""
        if type_name == GRB:
            return str(obj["name"])
        if type_name == CRTB:
            return f"{obj['clusterId']}:{obj['name']}"
        project = self.db["project"].get(str(obj["projectId"]))
        namespace = str(project["backingNamespace"]) if project else str(obj["projectId"]).split(":", 1)[-1]
        return f"{namespace}:{obj['name']}"

    def new_binding(self, type_name: str, values: Obj, *, creator: Any) -> Obj:
        """Store a binding as norman would after its checks (generated name, creator label, null references)."""
        prefix = {GRB: "grb", CRTB: "crtb", PRTB: "prtb"}[type_name]
        if not values.get("name"):
            values["name"] = f"{prefix}-{random_name(self.rng)}"
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
        obj["id"] = values.get("id") or self.binding_id(type_name, obj)
        if type_name == CRTB:
            obj["status"] = {"summary": "Completed"}
        return self.put(type_name, self.common(obj))

    # --- store primitives --------------------------------------------------------------------------------

    def put(self, type_name: str, obj: Obj) -> Obj:
        """Store or replace an object and index it."""
        store = self.db[type_name]
        old = store.get(obj["id"])
        if old is not None:
            self._unindex(type_name, old)
        store[obj["id"]] = obj
        for fname, index in self.idx[type_name].items():
            index.setdefault(filter_text(obj.get(fname)), set()).add(obj["id"])
        return obj

    def _unindex(self, type_name: str, obj: Obj) -> None:
        for fname, index in self.idx[type_name].items():
            bucket = index.get(filter_text(obj.get(fname)))
            if bucket is not None:
                bucket.discard(obj["id"])

    def drop(self, type_name: str, obj_id: str) -> None:
        """Remove an object and its index entries (no-op when unknown)."""
        obj = self.db[type_name].pop(obj_id, None)
        if obj is not None:
            self._unindex(type_name, obj)

    def settle(self, *, force: bool = False) -> None:
        """Run the controller work that is due (all of it when `force`): users completed, subjects filled, purges."""
        now = float("inf") if force else self.now()
        for _ in range(8):  # a fill may wait for a user's local principal: a few rounds settle it
            due_users = [p for p in self.pending_users if p[0] <= now]
            due_fill = [p for p in self.pending_fill if p[0] <= now]
            if not due_users and not due_fill:
                break
            self.pending_users = [p for p in self.pending_users if p[0] > now]
            self.pending_fill = [p for p in self.pending_fill if p[0] > now]
            for _, user_id in due_users:
                controllers.add_local_principal(self, user_id)
            for _, type_name, obj_id in due_fill:
                controllers.fill(self, type_name, obj_id)
            if not force:
                break
        if self.pending_purge:
            due = [p for p in self.pending_purge if p[0] <= now]
            self.pending_purge = [p for p in self.pending_purge if p[0] > now]
            for _, type_name, obj_id in due:
                self.drop(type_name, obj_id)

    def user_by_principal(self, principal_id: str) -> Obj | None:
        """The user holding `principal_id`, or None."""
        for user in self.db["user"].values():
            if principal_id in user["principalIds"]:
                return user
        return None
