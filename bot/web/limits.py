"""The request body cap: no route reads more than `server.max_body` bytes, whatever a client announces or streams.

A body announced larger (`Content-Length`) is answered 413 before a byte of it is read; a chunked or lying body is
read up to the cap and answered 413 the moment it goes over, never buffered past it. The app behind only ever sees
a complete body within the cap, replayed as one message.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from bot.services.metrics import METRICS

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyLimit:
    """ASGI middleware enforcing the body cap on every HTTP route."""

    def __init__(self, app: ASGIApp, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass non-HTTP scopes through; read an HTTP body up to the cap, then call the app or answer 413."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        announced = _content_length(scope)
        if announced is not None and announced > self.max_body:
            await _too_large(scope, send, self.max_body)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                await _too_large(scope, send, self.max_body)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: only a disconnect can come

        await self.app(scope, replay, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else None
    return None


ROUTES = frozenset({"/slack/events", "/oauth/start", "/oauth/callback", "/oauth/confirm", "/healthz", "/metrics"})


async def _too_large(scope: Scope, send: Send, max_body: int) -> None:
    path = str(scope.get("path", ""))
    METRICS.count_request(path if path in ROUTES else "other", 413)
    body = json.dumps({"error": "request body too large", "max_body": max_body}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
