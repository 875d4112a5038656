"""Socket Mode as Slack runs it: apps.connections.open hands out a WebSocket URL; events arrive there as envelopes.

From docs.slack.dev/apis/events-api/using-socket-mode and docs.slack.dev/reference/methods/apps.connections.open:
- apps.connections.open takes an app-level token (`xapp-…`, scope connections:write) and answers
  `{"ok": true, "url": "wss://…/link/?ticket=…"}`; a bot token is `not_allowed_token_type`.
- On connect Slack sends `{"type": "hello", "num_connections": 1, "debug_info": {…}, "connection_info":
  {"app_id": …}}`.
- Each event, interaction or slash command arrives as `{"envelope_id", "type" ("events_api" | "interactive" |
  "slash_commands"), "payload", "accepts_response_payload"}`; the app acknowledges with `{"envelope_id", "payload"?}`
  within three seconds.
The server is aiohttp's (already a dependency of slack_sdk's Socket Mode client), on its own loopback port.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from aiohttp import WSMsgType, web

from accessbot_emulators.serving import bind


class SocketModeServer:
    """WebSocket endpoint for Socket Mode clients; push envelopes to them and read their acknowledgements."""

    def __init__(self, app_id: str) -> None:
        self._app_id = app_id
        self._loop: asyncio.AbstractEventLoop | None = None
        self._base: str | None = None
        self._sockets: list[web.WebSocketResponse] = []
        self._tickets: set[str] = set()
        self._acks: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def new_url(self) -> str:
        """A one-time WebSocket URL (what apps.connections.open answers)."""
        if self._base is None:
            raise RuntimeError("the Socket Mode server is not running")
        ticket = secrets.token_hex(16)
        with self._lock:
            self._tickets.add(ticket)
        return f"{self._base}/link/?ticket={ticket}&app_id={self._app_id}"

    def connections(self) -> int:
        """Open WebSocket connections."""
        with self._lock:
            return len([ws for ws in self._sockets if not ws.closed])

    def push(self, kind: str, payload: Mapping[str, Any], *, accepts_response_payload: bool = False) -> str:
        """Send one envelope to the newest connection; return its envelope_id."""
        envelope_id = secrets.token_hex(8)
        envelope = {
            "envelope_id": envelope_id,
            "type": kind,
            "payload": dict(payload),
            "accepts_response_payload": accepts_response_payload,
        }
        with self._lock:
            live = [ws for ws in self._sockets if not ws.closed]
        if not live or self._loop is None:
            raise RuntimeError("no Socket Mode client is connected")
        future = asyncio.run_coroutine_threadsafe(live[-1].send_str(json.dumps(envelope)), self._loop)
        future.result(timeout=5)
        return envelope_id

    def ack(self, envelope_id: str) -> dict[str, Any] | None:
        """The acknowledgement the client sent for an envelope, if any yet."""
        with self._lock:
            return self._acks.get(envelope_id)

    async def _link(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        with self._lock:
            valid = ticket in self._tickets
            self._tickets.discard(ticket)
        if not valid:
            return web.Response(status=401, text="invalid ticket")
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        with self._lock:
            self._sockets.append(ws)
        hello = {
            "type": "hello",
            "num_connections": self.connections(),
            "debug_info": {"host": "applink-emulator", "build_number": 1, "approximate_connection_time": 18060},
            "connection_info": {"app_id": self._app_id},
        }
        await ws.send_str(json.dumps(hello))
        async for message in ws:
            if message.type is not WSMsgType.TEXT:
                continue
            try:
                body = json.loads(message.data)
            except ValueError:
                continue
            if isinstance(body, dict) and isinstance(body.get("envelope_id"), str):
                with self._lock:
                    self._acks[body["envelope_id"]] = body
        return ws

    @contextmanager
    def running(self) -> Iterator[SocketModeServer]:
        """Serve on 127.0.0.1 (random port) from a background thread for the block's duration."""
        sock, url = bind()
        self._base = url.replace("http://", "ws://")
        ready = threading.Event()
        stop: asyncio.Event | None = None

        def run() -> None:
            nonlocal stop
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            app = web.Application()
            app.router.add_get("/link/", self._link)
            runner = web.AppRunner(app, handle_signals=False)
            loop.run_until_complete(runner.setup())
            loop.run_until_complete(web.SockSite(runner, sock).start())
            stop = asyncio.Event()
            ready.set()
            loop.run_until_complete(stop.wait())
            for ws in list(self._sockets):
                loop.run_until_complete(ws.close())
            loop.run_until_complete(runner.cleanup())
            loop.close()

        thread = threading.Thread(target=run, name="slack-socket-mode", daemon=True)
        thread.start()
        ready.wait(10)
        try:
            yield self
        finally:
            if self._loop is not None and stop is not None:
                self._loop.call_soon_threadsafe(stop.set)
            thread.join(10)
            self._base = None
