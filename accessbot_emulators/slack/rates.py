"""Slack's rate limits as token buckets: 429 with Retry-After once a method (or a channel) is past its rate.

Sources (docs.slack.dev/apis/web-api/rate-limits, and each method's "Rate limits" fact):
- chat.postMessage is "Special": "generally allows posting one message per second per channel, while also
  maintaining a workspace-wide limit"; "Short bursts >1 allowed". One bucket per channel.
- chat.update and conversations.open are Tier 3, "50+ per minute", "sporadic bursts are welcome"; one bucket per
  method for the workspace.
- A limited call answers HTTP 429 with a `Retry-After` header (seconds) and `{"ok": false, "error": "ratelimited"}`.
Off by default (tests that do not study pacing stay fast); `SlackEmulator.enforce_rate_limits()` turns them on.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Bucket:
    """A token bucket: `capacity` calls at once, refilled at `rate` per second."""

    capacity: float
    rate: float
    tokens: float = -1.0
    at: float = 0.0

    def take(self, now: float) -> float:
        """Take one token; return 0 when allowed, else the seconds until one is free."""
        if self.tokens < 0:
            self.tokens, self.at = self.capacity, now
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


@dataclass
class RateLimits:
    """Per-channel and per-method buckets; `check` says how long a call must wait (0: it may go)."""

    per_channel: dict[str, tuple[float, float]] = field(default_factory=dict)  # method -> (burst, per second)
    per_method: dict[str, tuple[float, float]] = field(default_factory=dict)
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[tuple[str, str], Bucket] = field(default_factory=dict)
    limited: int = 0

    def check(self, method: str, channel: str) -> int:
        """0 when the call may go, else the Retry-After (whole seconds, at least 1) to answer with."""
        now = self.clock()
        waits = []
        if method in self.per_channel and channel:
            burst, rate = self.per_channel[method]
            waits.append(self._bucket((method, channel), burst, rate).take(now))
        if method in self.per_method:
            burst, rate = self.per_method[method]
            waits.append(self._bucket((method, ""), burst, rate).take(now))
        wait = max(waits, default=0.0)
        if wait <= 0:
            return 0
        self.limited += 1
        return max(1, math.ceil(wait))

    def _bucket(self, key: tuple[str, str], burst: float, rate: float) -> Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = Bucket(burst, rate)
        return bucket


def slack_limits(*, per_channel_per_second: float = 1.0, burst: float = 1.0) -> RateLimits:
    """The limits Slack documents: chat.postMessage per channel, Tier 3 (50/min) for chat.update and DMs."""
    tier3 = (50.0, 50.0 / 60.0)
    return RateLimits(
        per_channel={"chat.postMessage": (burst, per_channel_per_second)},
        per_method={"chat.update": tier3, "conversations.open": tier3},
    )
