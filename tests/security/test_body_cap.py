"""The body cap (`server.max_body`, default 64 KiB) on a running bot: 413 before buffering (issue 10, item 2).

A 256 MiB unsigned POST used to be read whole before its 401 (88 MB → 613 MB). Here 100 MiB arrive announced
(`Content-Length`), chunked, and lying about their length, on raw sockets so the client holds one 64 KiB buffer;
`tracemalloc` sees every allocation of this process, the bot's threads included.
"""

from __future__ import annotations

import contextlib
import socket
import tracemalloc
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from bot.core import audit_actions
from tests.conftest import RunningBot

HUNDRED_MIB = 100 * 1024 * 1024
CHUNK = b"x" * (64 * 1024)
PEAK_BUDGET = 8 * 1024 * 1024
"""Allocations of the whole process while 100 MiB arrive (bot, server and client): flat, far below the body."""


@contextlib.contextmanager
def connection(url: str) -> Iterator[socket.socket]:
    """A raw TCP connection to the bot."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=10)
    try:
        yield sock
    finally:
        sock.close()


def send_body(sock: socket.socket, *, chunked: bool, total: int = HUNDRED_MIB) -> int:
    """Stream `total` bytes (as chunks when `chunked`) until the server stops reading; return the bytes sent."""
    sent = 0
    frame = f"{len(CHUNK):x}\r\n".encode() + CHUNK + b"\r\n" if chunked else CHUNK
    try:
        while sent < total:
            sock.sendall(frame)
            sent += len(CHUNK)
        if chunked:
            sock.sendall(b"0\r\n\r\n")
    except OSError:  # the server answered 413 and closed: exactly what should happen
        pass
    return sent


def read_response(sock: socket.socket) -> tuple[int, bytes]:
    """The status code and the raw response the server sent (up to 64 KiB)."""
    data = b""
    with contextlib.suppress(OSError):
        while len(data) < 65536:
            piece = sock.recv(4096)
            if not piece:
                break
            data += piece
            if b"\r\n\r\n" in data and data.endswith(b"}"):  # the 413 has a Content-Length and a JSON body
                break
    assert data.startswith(b"HTTP/1.1 "), data[:200]
    return int(data.split(b" ", 2)[1]), data


def head(path: str, url: str, extra: str) -> bytes:
    """Request line and headers of a POST."""
    host = urlsplit(url).netloc
    return f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n{extra}\r\n".encode()


@pytest.mark.parametrize("path", ["/slack/events", "/oauth/callback", "/oauth/confirm", "/healthz", "/nowhere"])
def test_announced_100_mib_body_is_refused_before_reading(bot: RunningBot, path: str) -> None:
    """A Content-Length over the cap gets 413 at once on every route, with the process's memory flat."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        with connection(bot.url) as sock:
            sock.sendall(head(path, bot.url, f"Content-Length: {HUNDRED_MIB}\r\n"))
            sent = send_body(sock, chunked=False)
            status, raw = read_response(sock)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert status == 413
    assert raw.endswith(b'{"error": "request body too large", "max_body": 65536}')
    assert peak < PEAK_BUDGET, f"peak {peak / 2**20:.1f} MiB while {sent / 2**20:.0f} MiB were offered"


@pytest.mark.parametrize("lying", [False, True])
def test_chunked_or_lying_100_mib_body_is_cut_at_the_cap(bot: RunningBot, lying: bool) -> None:
    """A chunked body (or one whose Content-Length lies low) is read only up to the cap, then answered 413."""
    framing = "Content-Length: 100\r\n" if lying else "Transfer-Encoding: chunked\r\n"
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        with connection(bot.url) as sock:
            sock.sendall(head("/slack/events", bot.url, framing))
            sent = send_body(sock, chunked=not lying)
            status, _ = read_response(sock)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    if lying:  # h11 reads exactly the announced 100 bytes: the rest is a malformed next request, never a body
        assert status in {400, 401}
    else:
        assert status == 413
    assert peak < PEAK_BUDGET, f"peak {peak / 2**20:.1f} MiB while {sent / 2**20:.0f} MiB were offered"


def test_refused_bodies_write_nothing_to_the_audit_log(bot: RunningBot) -> None:
    """A 413 happens before the signature check: no audit row, no tally, nothing stored."""
    with connection(bot.url) as sock:
        sock.sendall(head("/slack/events", bot.url, f"Content-Length: {HUNDRED_MIB}\r\n"))
        send_body(sock, chunked=False, total=len(CHUNK))
        assert read_response(sock)[0] == 413
    assert bot.audit(audit_actions.SLACK_REQUEST_REJECTED) == []


def test_configured_cap_lets_smaller_bodies_through(make_bot: object) -> None:
    """`server.max_body: 8KiB`: a 7 KiB signed command is handled, a 9 KiB one gets 413 (the cap is the setting)."""
    with make_bot(overrides={"server": {"max_body": "8KiB"}}) as bot:  # type: ignore[operator]
        handled, key = bot.command("U0STRANGER1", "request " + "a" * (7 * 1024))
        assert handled.status_code == 200
        assert "at most 2000" in bot.reply(key).text
        refused, _ = bot.command("U0STRANGER1", "request " + "a" * (9 * 1024))
        assert refused.status_code == 413
        assert refused.json() == {"error": "request body too large", "max_body": 8192}
