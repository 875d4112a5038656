"""The `/_admin/*` test controls over HTTP, guarded by the `X-Admin-Token` header.

Disable and enable accounts, change groups, cause account events (personalities.EVENTS), rotate keys, tamper with
the next ID token, inject failures, read state.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from accessbot_emulators.idp.accounts import str_list

if TYPE_CHECKING:
    from accessbot_emulators.idp.provider import DevIdP

_Handler = Callable[[Request], Awaitable[Response]]


class AdminApi:
    """The HTTP face of the provider's control methods (for the demo and tools in other processes)."""

    def __init__(self, idp: DevIdP) -> None:
        """Control `idp`."""
        self._idp = idp

    def routes(self) -> list[Route]:
        """Every `/_admin/*` route."""
        return [
            Route("/_admin/disable", self._admin(self._admin_disable), methods=["POST"]),
            Route("/_admin/enable", self._admin(self._admin_enable), methods=["POST"]),
            Route("/_admin/groups", self._admin(self._admin_groups), methods=["POST"]),
            Route("/_admin/event", self._admin(self._admin_event), methods=["POST"]),
            Route("/_admin/rotate-keys", self._admin(self._admin_rotate), methods=["POST"]),
            Route("/_admin/next-id-token", self._admin(self._admin_next_id_token), methods=["POST"]),
            Route("/_admin/fail-next", self._admin(self._admin_fail_next), methods=["POST"]),
            Route("/_admin/state", self._admin(self._admin_state), methods=["GET"]),
        ]

    def _admin(self, handler: Callable[[Any], Mapping[str, Any]]) -> _Handler:
        async def wrapped(request: Request) -> Response:
            given = request.headers.get("x-admin-token", "")
            if not hmac.compare_digest(given.encode(), self._idp.admin_token.encode()):
                return JSONResponse({"error": "forbidden"}, status_code=403)
            body: Any = {}
            if request.method == "POST" and await request.body():
                try:
                    body = await request.json()
                except ValueError:
                    return JSONResponse({"error": "body must be JSON"}, status_code=400)
            if not isinstance(body, dict):
                return JSONResponse({"error": "body must be a JSON object"}, status_code=400)
            try:
                result = handler(body)
            except KeyError as exc:
                return JSONResponse({"error": f"unknown account {exc.args[0]!r}"}, status_code=404)
            except (ValueError, TypeError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            return JSONResponse(dict(result))

        return wrapped

    @staticmethod
    def _username(body: Mapping[str, Any]) -> str:
        username = body.get("username")
        if not isinstance(username, str):
            raise ValueError("username: expected a string")
        return username

    def _admin_disable(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        self._idp.set_disabled(self._username(body), True)
        return {"ok": True}

    def _admin_enable(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        self._idp.set_disabled(self._username(body), False)
        return {"ok": True}

    def _admin_groups(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        self._idp.set_groups(self._username(body), str_list(body.get("groups"), "groups"))
        return {"ok": True}

    def _admin_event(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        event = body.get("event")
        if not isinstance(event, str):
            raise ValueError("event: expected a string")
        self._idp.account_event(self._username(body), event)
        return {"ok": True}

    def _admin_rotate(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        return {"ok": True, "kid": self._idp.rotate_keys()}

    def _admin_next_id_token(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        claims = body.get("claims", {})
        if not isinstance(claims, dict):
            raise ValueError("claims: expected an object")
        offsets: dict[str, int | None] = {}
        for name in ("exp_offset", "iat_offset"):
            value = body.get(name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                raise ValueError(f"{name}: expected an integer")
            offsets[name] = value
        sign = body.get("sign", "rs256")
        if not isinstance(sign, str):
            raise ValueError("sign: expected a string")
        self._idp.set_next_id_token(
            claims=claims, exp_offset=offsets["exp_offset"], iat_offset=offsets["iat_offset"], sign=sign
        )
        return {"ok": True}

    def _admin_fail_next(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        endpoint, status, count = body.get("endpoint"), body.get("status", 503), body.get("count", 1)
        if not isinstance(endpoint, str):
            raise ValueError("endpoint: expected a string")
        if not isinstance(status, int) or not 400 <= status <= 599:
            raise ValueError("status: expected an HTTP error status")
        if not isinstance(count, int) or count < 1:
            raise ValueError("count: expected a positive integer")
        self._idp.fail_next(endpoint, status, count)
        return {"ok": True}

    def _admin_state(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        return self._idp.state()
