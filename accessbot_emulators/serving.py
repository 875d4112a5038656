"""The one loopback runner: bind a socket first, serve an ASGI app with uvicorn in a thread or in the running loop.

Every emulator, the demo and the tests serve through here. The socket is bound before uvicorn starts, so the URL
(and a random free port) is known up front. Embedded servers (`serve_in_thread`, `serve_in_loop`) never touch the
process's signal handlers: they live inside another program, a test session or the demo. The foreground variants
(`serve_forever`, `serve_until_stopped`) keep uvicorn's handling, so Ctrl-C stops them cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any, Literal

import uvicorn

Lifespan = Literal["auto", "on", "off"]
START_TIMEOUT = 20.0
STOP_TIMEOUT = 15.0


def bind(host: str = "127.0.0.1", port: int = 0) -> tuple[socket.socket, str]:
    """Bind a listening socket first (port 0 = any free port) so the URL is known before serving."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP so asyncio turns on TCP_NODELAY for accepted connections (else Nagle adds ~40 ms)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted sockets inherit this; without it, Nagle plus delayed ACK adds ~40 ms to every response.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock, url_of(sock)


def url_of(sock: socket.socket) -> str:
    """The base URL (`http://host:port`, no trailing slash) of a bound socket; a wildcard address shows as loopback."""
    host, port = sock.getsockname()[:2]
    shown = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


class _EmbeddedServer(uvicorn.Server):
    """A uvicorn server that never touches the process's signal handlers."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Install no signal handlers: the server lives inside another program."""
        yield


def _config(
    app: Any, lifespan: Lifespan, timeout_keep_alive: int, timeout_graceful_shutdown: int | None
) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan=lifespan,
        ws="none",
        http="h11",
        loop="asyncio",
        timeout_keep_alive=timeout_keep_alive,
        timeout_graceful_shutdown=timeout_graceful_shutdown,
    )


@contextlib.contextmanager
def serve_in_thread(
    app: Any,
    *,
    sock: socket.socket | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    lifespan: Lifespan = "on",
    name: str = "asgi-server",
    timeout_keep_alive: int = 5,
    timeout_graceful_shutdown: int | None = None,
) -> Iterator[str]:
    """Run `app` on a background thread with its own event loop; yield the base URL; stop cleanly.

    Give `sock` (from `bind`) to serve on an address chosen earlier; the socket is closed on exit either way.
    """
    if sock is None:
        sock, base_url = bind(host, port)
    else:
        base_url = url_of(sock)
    server = _EmbeddedServer(_config(app, lifespan, timeout_keep_alive, timeout_graceful_shutdown))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=name, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start (see the log above)")
            time.sleep(0.005)
        yield base_url
    finally:
        server.should_exit = True
        thread.join(timeout=STOP_TIMEOUT)
        sock.close()


@contextlib.asynccontextmanager
async def serve_in_loop(
    app: Any,
    *,
    sock: socket.socket | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    lifespan: Lifespan = "on",
    name: str = "asgi-server",
    timeout_keep_alive: int = 5,
    timeout_graceful_shutdown: int | None = None,
) -> AsyncIterator[str]:
    """Run `app` as a task in the current event loop; yield the base URL; stop cleanly."""
    if sock is None:
        sock, base_url = bind(host, port)
    else:
        base_url = url_of(sock)
    server = _EmbeddedServer(_config(app, lifespan, timeout_keep_alive, timeout_graceful_shutdown))
    task = asyncio.create_task(server.serve(sockets=[sock]), name=name)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not server.started:
            if task.done():
                task.result()  # raises what stopped the server, if anything did
            if task.done() or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start")
            await asyncio.sleep(0.005)
        yield base_url
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=STOP_TIMEOUT)
        sock.close()


async def serve_until_stopped(
    app: Any, sock: socket.socket, *, lifespan: Lifespan = "off", timeout_keep_alive: int = 5
) -> None:
    """Serve `app` on `sock` in the running loop until Ctrl-C, SIGTERM or cancellation; close the socket after."""
    try:
        await uvicorn.Server(_config(app, lifespan, timeout_keep_alive, None)).serve(sockets=[sock])
    finally:
        sock.close()


def serve_forever(app: Any, sock: socket.socket, *, lifespan: Lifespan = "off", timeout_keep_alive: int = 5) -> None:
    """Serve `app` on `sock` in the foreground until Ctrl-C or SIGTERM (for the command-line tools)."""
    asyncio.run(serve_until_stopped(app, sock, lifespan=lifespan, timeout_keep_alive=timeout_keep_alive))
