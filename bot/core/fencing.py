"""Fencing tokens: the lease a job's writes are checked against, carried in the context of the running job.

The scheduler runs each job body inside `fenced(Fence(lease, owner, token))`; the token grows every time the lease
changes hands. Every write transaction the store opens while a fence is set first checks that the lease row still
has this owner and token (adapters.store.sql.check_fence), so a leader that was paused past its lease, and
resumed after a standby took over, cannot change anything: its writes raise `FencedOut`. Requests served over HTTP
run without a fence. A context variable carries it because asyncio tasks (the sweep's concurrent revocations)
inherit the context of the job that started them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class Fence:
    """A lease as held by one owner, with the token it was granted."""

    lease: str
    owner: str
    token: int


_CURRENT: ContextVar[Fence | None] = ContextVar("accessbot_fence", default=None)


def current() -> Fence | None:
    """The fence the running code writes under, if any."""
    return _CURRENT.get()


@contextmanager
def fenced(fence: Fence) -> Iterator[Fence]:
    """Run the block (and every task it starts) with its writes fenced by `fence`."""
    reset = _CURRENT.set(fence)
    try:
        yield fence
    finally:
        _CURRENT.reset(reset)
