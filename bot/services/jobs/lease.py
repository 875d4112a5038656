"""The single-runner lease: one row taken by compare-and-set, renewed, taken over once it expires, with a fencing
token that the jobs' writes are checked against (core.fencing)."""

from __future__ import annotations

import os
import socket
import time
import uuid
from dataclasses import dataclass, field

from bot.core.fencing import Fence
from bot.core.ports import Clock
from bot.core.storage import LeaseStore

LEASE_NAME = "jobs"


def default_owner_id() -> str:
    """A lease owner id unique to this process: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class LeaderLease:
    """Whether this process runs the scheduled jobs."""

    store: LeaseStore
    owner_id: str
    ttl: int
    clock: Clock | None = None
    name: str = LEASE_NAME
    _held_until: int = field(default=0, init=False, repr=False)
    _token: int | None = field(default=None, init=False, repr=False)

    def _now(self, now: int | None) -> int:
        if now is not None:
            return now
        return self.clock.now() if self.clock is not None else int(time.time())

    def try_acquire(self, now: int | None = None) -> bool:
        """Take the lease if it is free or expired, or renew it if held; True when this process holds it."""
        at = self._now(now)
        token = self.store.take(self.name, self.owner_id, at, self.ttl)
        if token is not None:
            self._held_until, self._token = at + self.ttl, token
            return True
        self._held_until, self._token = 0, None
        return False

    def renew(self, now: int | None = None) -> bool:
        """Extend the lease by `ttl`; False (and standby) when another process took it over."""
        return self.try_acquire(now)

    def release(self) -> None:
        """Give the lease up so a standby process can take over at once."""
        self.store.release(self.name, self.owner_id)
        self._held_until, self._token = 0, None

    def step_down(self) -> None:
        """Forget the lease locally (its writes were fenced out: another process holds it now)."""
        self._held_until, self._token = 0, None

    def fence(self) -> Fence:
        """The fence this process's job writes are checked against (the token of the last successful take)."""
        return Fence(self.name, self.owner_id, self._token if self._token is not None else -1)

    def is_leader(self, now: int | None = None) -> bool:
        """True while the last successful take or renewal has not run out."""
        return self._now(now) < self._held_until

    def holder(self, now: int | None = None) -> str | None:
        """Which owner holds the lease now, if anyone."""
        return self.store.holder(self.name, self._now(now))
