"""The Slack emulator's mutable state: recorded calls and conversations, injected failures, id and ts counters."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from accessbot_emulators.slack.rates import RateLimits
from accessbot_emulators.slack.records import Call, Ephemeral, ResponsePost


@dataclass
class Failure:
    """An injected failure: the answer to give and how many more calls get it."""

    status: int
    error: str
    retry_after: int | None
    remaining: int


@dataclass
class State:
    """Everything `reset()` forgets (the member directory lives apart and survives it)."""

    calls: list[Call] = field(default_factory=list)
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)  # ts -> record
    ephemerals: list[Ephemeral] = field(default_factory=list)
    responses: list[ResponsePost] = field(default_factory=list)
    views: dict[str, dict[str, Any]] = field(default_factory=dict)  # view id -> record
    home_view_ids: dict[str, str] = field(default_factory=dict)  # user -> view id
    files: dict[str, dict[str, Any]] = field(default_factory=dict)  # file id -> record
    opened: set[str] = field(default_factory=set)
    failures: dict[str, list[Failure]] = field(default_factory=dict)
    bindings: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # response key -> (channel, ts)
    down: bool = False
    rates: RateLimits | None = None  # Slack's rate limits, when a test turns them on
    truncated: int = 0  # messages whose text Slack would have cut at 40,000 characters
    exchanged: set[str] = field(default_factory=set)  # trigger ids views.open already used
    last_ts_us: int = 0
    counter: int = 0

    def take_failure(self, method: str) -> Failure | None:
        """Return the failure to apply to this call (503 while down), consuming an injected one."""
        if self.down:
            return Failure(status=503, error="service_unavailable", retry_after=None, remaining=0)
        queue = self.failures.get(method)
        if not queue:
            return None
        failure = queue[0]
        failure.remaining -= 1
        if failure.remaining <= 0:
            queue.pop(0)
        return failure

    def next_ts(self) -> str:
        """A message timestamp, strictly increasing even within one microsecond."""
        now_us = int(time.time() * 1_000_000)
        us = max(now_us, self.last_ts_us + 1)
        self.last_ts_us = us
        return f"{us // 1_000_000}.{us % 1_000_000:06d}"

    def next_id(self, prefix: str) -> str:
        """A new object id such as `V0EMU000001`."""
        self.counter += 1
        return f"{prefix}0EMU{self.counter:06d}"
