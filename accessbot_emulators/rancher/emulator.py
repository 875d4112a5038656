"""The Rancher emulator: its state, the ASGI app, the Python control API, and serving it on loopback."""

from __future__ import annotations

import copy
import threading
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import fields
from typing import Any

from starlette.applications import Starlette

from accessbot_emulators.rancher import controllers
from accessbot_emulators.rancher.control import ControlApi
from accessbot_emulators.rancher.estate import DEMO_FIXTURE, load_fixture
from accessbot_emulators.rancher.profiles import profile_for
from accessbot_emulators.rancher.schema import BINDING_KINDS, CRTB, GRB, PRTB, Obj, public
from accessbot_emulators.rancher.settings import EmulatorSettings
from accessbot_emulators.rancher.store import Store
from accessbot_emulators.rancher.traffic import FailRule, Traffic
from accessbot_emulators.rancher.v3 import V3Api
from accessbot_emulators.serving import serve_in_loop, serve_in_thread


class RancherEmulator:
    """The emulated Rancher server: state, the ASGI app and the Python-side control API."""

    def __init__(self, fixture: Mapping[str, Any] | None = None, settings: EmulatorSettings | None = None) -> None:
        """Seed from `fixture` (default: the demo estate); its `server_version` applies unless `settings` are given."""
        self._fixture: Obj = copy.deepcopy(dict(fixture if fixture is not None else load_fixture(DEMO_FIXTURE)))
        self.settings = settings or EmulatorSettings()
        if "server_version" in self._fixture and settings is None:
            self.settings.server_version = str(self._fixture["server_version"])
        self.url = ""
        self._lock = threading.RLock()
        self._traffic = Traffic()
        self._store = Store(self.settings)
        self.reset()
        self.app = Starlette(
            routes=[*V3Api(self._store, self._traffic, self._lock).routes(), *ControlApi(self).routes()]
        )

    # --- state -------------------------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget every change and reload the fixture; counters and failure rules are cleared too."""
        with self._lock:
            self._store.clear()
            self._traffic.rules.clear()
            self.reset_counters()
            self._store.seed(self._fixture)

    def reset_counters(self) -> None:
        """Zero the request counters."""
        with self._lock:
            self._traffic.reset_counters()

    def request_counts(self) -> Obj:
        """`{"total": n, "bytes": body bytes sent, "by_path": {"GET /v3/…": n}}` since the last reset."""
        with self._lock:
            return self._traffic.counts()

    def configure(self, **changes: Any) -> EmulatorSettings:
        """Change settings (latency, failure_rate, page_size, server_version, …); a new version re-seeds the estate."""
        known = {f.name for f in fields(EmulatorSettings)}
        with self._lock:
            for key, value in changes.items():
                if key not in known:
                    raise ValueError(f"unknown emulator setting {key}")
                if key == "server_version":
                    profile_for(str(value))  # ValueError outside the versions played
            reseed = "server_version" in changes and changes["server_version"] != self.settings.server_version
            for key, value in changes.items():
                setattr(self.settings, key, tuple(value) if key == "ignored_filters" else value)  # JSON gives lists
            if reseed:
                self.reset()  # the estate as a server of that version holds it (profiles.py)
            return self.settings

    def fail_next(self, path: str, status: int, count: int = 1, method: str | None = None) -> None:
        """Fail the next `count` requests whose path contains `path` (case-insensitive) with `status`."""
        with self._lock:
            self._traffic.rules.append(FailRule(path.lower(), status, count, method.upper() if method else None))

    def objects(self, type_name: str) -> list[Obj]:
        """Stored objects of one type (copies), settled first."""
        with self._lock:
            self._store.settle()
            return [copy.deepcopy(o) for o in self._store.db[type_name].values()]

    def get(self, type_name: str, obj_id: str) -> Obj | None:
        """One stored object (a copy) or None."""
        with self._lock:
            self._store.settle()
            obj = self._store.db[type_name].get(obj_id)
            return copy.deepcopy(obj) if obj is not None else None

    def snapshot(self) -> Obj:
        """Every stored object by type (what `/_emulator/state` returns)."""
        with self._lock:
            self._store.settle()
            return {t: [public(o) for o in objs.values()] for t, objs in self._store.db.items()}

    def add_binding(self, kind: str, **values: Any) -> Obj:
        """Store a binding directly (kind `crtb`, `prtb` or `grb`), skipping checks; subject fill-in is immediate."""
        type_name = BINDING_KINDS.get(kind.lower(), kind)
        with self._lock:
            obj = self._store.new_binding(type_name, dict(values), creator=values.get("creatorId"))
            if type_name == GRB:
                controllers.after_grb(self._store, obj)
            else:
                controllers.fill(self._store, type_name, obj["id"])
            self._store.settle(force=True)
            return copy.deepcopy(self._store.db[type_name][obj["id"]])

    def remove_binding(self, binding_id: str) -> bool:
        """Remove a binding of any kind at once (no finalizers); False when unknown."""
        with self._lock:
            for type_name in (CRTB, PRTB, GRB):
                if binding_id in self._store.db[type_name]:
                    self._store.drop(type_name, binding_id)
                    return True
            return False

    def add_cluster(self, cluster_id: str, name: str, **extra: Any) -> Obj:
        """Add a cluster."""
        with self._lock:
            return copy.deepcopy(
                self._store.put("cluster", self._store.common({"id": cluster_id, "name": name, **extra}))
            )

    def add_project(self, project_id: str, name: str, *, style: str = "new", **extra: Any) -> Obj:
        """Add a project `c-…:p-…`; `style` new → backing namespace `c-…-p-…`, old → `p-…`."""
        with self._lock:
            return copy.deepcopy(
                self._store.put(
                    "project", self._store.project({"id": project_id, "name": name, "style": style, **extra})
                )
            )

    def remove_object(self, type_name: str, obj_id: str) -> bool:
        """Delete any object at once (a project or role template someone deleted in Rancher); False when unknown."""
        with self._lock:
            found = obj_id in self._store.db[type_name]
            self._store.drop(type_name, obj_id)
            return found

    def add_user(self, **values: Any) -> Obj:
        """Add a user (`id` or `principal` for an IdP user whose id is derived)."""
        with self._lock:
            return copy.deepcopy(self._store.user(values))

    def add_token(self, **values: Any) -> Obj:
        """Add an API key (`name`, `secret`, `userId`, `authProvider`, optional `groupPrincipals`)."""
        with self._lock:
            return copy.deepcopy(self._store.token(values))

    def add_principal(self, **values: Any) -> Obj:
        """Add a principal the providers can resolve (`id`, `name`, `principalType`)."""
        with self._lock:
            return copy.deepcopy(self._store.principal(values))

    def token_for(self, user_id: str) -> str:
        """The `name:secret` bearer of the first key of a user (tests and the demo use it)."""
        with self._lock:
            for tok in self._store.db["token"].values():
                if tok["userId"] == user_id:
                    return f"{tok['name']}:{tok['_secret']}"
        raise KeyError(user_id)


# Idle connections stay open 30 s, longer than httpx's 5 s keep-alive expiry, so the client closes them first.
KEEP_ALIVE = 30


@contextmanager
def run_emulator(
    fixture: Mapping[str, Any] | None = None, settings: EmulatorSettings | None = None, *, port: int = 0
) -> Iterator[RancherEmulator]:
    """Serve an emulator on 127.0.0.1 in a background thread; yields it with `.url` set (no `/v3`)."""
    emulator = RancherEmulator(fixture, settings)
    with serve_in_thread(
        emulator.app, port=port, lifespan="off", name="rancher-emulator", timeout_keep_alive=KEEP_ALIVE
    ) as url:
        emulator.url = url
        yield emulator


@asynccontextmanager
async def serve_emulator(
    fixture: Mapping[str, Any] | None = None, settings: EmulatorSettings | None = None, *, port: int = 0
) -> AsyncIterator[RancherEmulator]:
    """Serve an emulator on 127.0.0.1 inside the running event loop; yields it with `.url` set."""
    emulator = RancherEmulator(fixture, settings)
    async with serve_in_loop(
        emulator.app, port=port, lifespan="off", name="rancher-emulator", timeout_keep_alive=KEEP_ALIVE
    ) as url:
        emulator.url = url
        yield emulator
