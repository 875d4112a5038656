"""The `/v3` API over HTTP: path parsing, latency and injected failures, authentication, and dispatch per method."""

from __future__ import annotations

import asyncio
import threading
from typing import Any
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from accessbot_emulators.rancher.auth import Caller, Unauthenticated, authenticate
from accessbot_emulators.rancher.bindings import delete, post, update
from accessbot_emulators.rancher.errors import EXPIRES, STATUS_CODES, ApiError, error_response
from accessbot_emulators.rancher.listing import list_collection
from accessbot_emulators.rancher.rendering import lookup, render
from accessbot_emulators.rancher.schema import BY_PATH, RESOURCE_TYPES, Obj
from accessbot_emulators.rancher.store import Store
from accessbot_emulators.rancher.traffic import Traffic


class V3Api:
    """Serves `/v3` from the store, counting requests and applying injected failures."""

    def __init__(self, store: Store, traffic: Traffic, lock: threading.RLock) -> None:
        """Serve `store`; `lock` is the emulator's, held around every touch of the store and the counters."""
        self._store = store
        self._traffic = traffic
        self._lock = lock

    def routes(self) -> list[Route]:
        """`/v3` and everything below it."""
        methods = ["GET", "POST", "PUT", "DELETE"]
        return [
            Route("/v3", self.handle, methods=methods),
            Route("/v3/{rest:path}", self.handle, methods=methods),
        ]

    async def handle(self, request: Request) -> Response:
        """Serve one `/v3` request: count it, wait `latency`, maybe fail it, settle the controller, dispatch."""
        raw = request.scope.get("raw_path") or request.url.path.encode()
        path = raw.decode("latin-1").split("?", 1)[0]
        segs = [unquote(s) for s in path.split("/")[2:]]
        while segs and segs[-1] == "":
            segs.pop()
        method = request.method.upper()
        with self._lock:
            self._traffic.count(method, path)
            latency = self._store.settings.latency
            injected = self._traffic.take_failure(method, path, self._store.settings, self._store.rng)
        if latency > 0:
            await asyncio.sleep(latency)
        if injected is not None:
            headers = {"Retry-After": "0"} if injected == 429 else None
            err = ApiError(injected, STATUS_CODES.get(injected, "ServerError"), "injected failure")
            failed = error_response(err)
            failed.headers.update(headers or {})
            return failed
        body_bytes = await request.body()
        base = (self._store.settings.advertised_url or str(request.base_url)).rstrip("/")
        try:
            with self._lock:
                self._store.settle()
                status, payload = self._dispatch(request, method, segs, body_bytes, base)
        except ApiError as err:
            response: Response = error_response(err)
        else:
            if status == 204 or payload is None:
                response = Response(status_code=status)
            elif isinstance(payload, bytes):
                response = Response(payload, status_code=status, media_type="application/json")
            else:
                response = JSONResponse(payload, status_code=status)
        response.headers["X-Api-Schemas"] = f"{base}/v3/schemas"
        response.headers["Expires"] = EXPIRES
        with self._lock:
            self._traffic.bytes += len(response.body)
        return response

    def _dispatch(self, request: Request, method: str, segs: list[str], body: bytes, base: str) -> tuple[int, Any]:
        type_spec = BY_PATH.get(segs[0].lower()) if segs else None
        public = type_spec is not None and type_spec.name == "setting" and len(segs) == 2 and segs[1] == "cacerts"
        caller: Caller | None = None
        if not public:
            try:
                caller = authenticate(self._store, request)
            except Unauthenticated:
                return 401, {"type": "error", "status": "401", "message": "must authenticate"}
        if not segs:
            if method != "GET":
                raise ApiError(405, "MethodNotAllow", "Method not allowed")
            return 200, api_root(base)
        if type_spec is None:
            raise ApiError(404, "NotFound", f"failed to find schema {segs[0]}")
        if len(segs) > 2:
            raise ApiError(404, "NotFound", "not found")
        params = request.query_params
        if len(segs) == 1:
            if method == "GET":
                return 200, list_collection(self._store, type_spec, params.multi_items(), caller, base)
            if method == "POST":
                return post(self._store, type_spec, params.get("action"), body, caller=caller, base=base)
            raise ApiError(405, "MethodNotAllow", f"Method {method} not supported")
        obj_id = segs[1]
        if method == "GET":
            return 200, render(self._store, type_spec, lookup(self._store, type_spec, obj_id, caller), caller, base)
        if not type_spec.writable:
            raise ApiError(405, "MethodNotAllow", f"Method {method} not supported")
        if method == "PUT":
            return 200, update(self._store, type_spec, obj_id, body, caller=caller, base=base)
        if method == "DELETE":
            return delete(self._store, type_spec, obj_id, caller, base)
        raise ApiError(405, "MethodNotAllow", f"Method {method} not supported")


def api_root(base: str) -> Obj:
    """`GET /v3`: the API root with a link per collection."""
    links = {"self": f"{base}/v3", "root": f"{base}/v3"}
    for t in RESOURCE_TYPES:
        links[t.plural] = f"{base}/v3/{t.plural.lower()}"
    return {
        "id": "v3",
        "type": "apiRoot",
        "baseType": "apiRoot",
        "apiVersion": {"group": "management.cattle.io", "version": "v3", "path": "/v3"},
        "links": links,
        "actions": {},
    }
