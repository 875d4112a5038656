"""Retry delays: exponential backoff with jitter, for Rancher revocations and Slack deliveries."""

from __future__ import annotations

import random


def backoff(attempt: int, base: float, cap: float, rng: random.Random) -> int:
    """Seconds to wait before try `attempt + 1`: exponential from `base`, capped, with jitter in [½, 1]."""
    raw = min(cap, base * (1 << min(30, max(0, attempt - 1))))
    return max(1, round(raw * (0.5 + rng.random() / 2)))
