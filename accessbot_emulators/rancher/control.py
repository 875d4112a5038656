"""The `/_emulator/*` control endpoints: counters, reset, settings, failure injection, state, direct object changes."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from accessbot_emulators.rancher.errors import ApiError, json_body
from accessbot_emulators.rancher.schema import public

if TYPE_CHECKING:
    from accessbot_emulators.rancher.emulator import RancherEmulator


class ControlApi:
    """The HTTP face of the emulator's Python control API (for the demo and tools in other processes)."""

    def __init__(self, emulator: RancherEmulator) -> None:
        """Control `emulator`."""
        self._emulator = emulator

    def routes(self) -> list[Route]:
        """Every `/_emulator/*` route."""
        return [
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

    async def _ctl_requests(self, request: Request) -> Response:
        return JSONResponse(self._emulator.request_counts())

    async def _ctl_reset_counters(self, request: Request) -> Response:
        self._emulator.reset_counters()
        return JSONResponse(self._emulator.request_counts())

    async def _ctl_reset(self, request: Request) -> Response:
        self._emulator.reset()
        return JSONResponse({"ok": True})

    async def _ctl_settings(self, request: Request) -> Response:
        if request.method == "POST":
            try:
                self._emulator.configure(**json_body(await request.body()))
            except (ValueError, ApiError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(asdict(self._emulator.settings))

    async def _ctl_fail(self, request: Request) -> Response:
        data = json_body(await request.body())
        self._emulator.fail_next(
            str(data.get("path", "/v3")), int(data.get("status", 503)), int(data.get("count", 1)), data.get("method")
        )
        return JSONResponse({"ok": True})

    async def _ctl_state(self, request: Request) -> Response:
        return JSONResponse(self._emulator.snapshot())

    async def _ctl_add_binding(self, request: Request) -> Response:
        data = json_body(await request.body())
        kind = str(data.pop("kind", "crtb"))
        return JSONResponse(public(self._emulator.add_binding(kind, **data)), status_code=201)

    async def _ctl_remove_binding(self, request: Request) -> Response:
        found = self._emulator.remove_binding(unquote(request.path_params["binding_id"]))
        return JSONResponse({"removed": found}, status_code=200 if found else 404)

    async def _ctl_add(self, request: Request) -> Response:
        data = json_body(await request.body())
        kind = request.path_params["kind"]
        if kind == "clusters":
            obj = self._emulator.add_cluster(str(data.pop("id")), str(data.pop("name")), **data)
        elif kind == "projects":
            obj = self._emulator.add_project(str(data.pop("id")), str(data.pop("name")), **data)
        elif kind == "users":
            obj = self._emulator.add_user(**data)
        elif kind == "tokens":
            obj = self._emulator.add_token(**data)
        elif kind == "principals":
            obj = self._emulator.add_principal(**data)
        else:
            return JSONResponse({"error": f"unknown kind {kind}"}, status_code=404)
        return JSONResponse(public(obj), status_code=201)
