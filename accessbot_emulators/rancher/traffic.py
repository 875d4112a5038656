"""What the emulator saw and what it should fail: request counters and injected failures."""

from __future__ import annotations

import random
from dataclasses import dataclass

from accessbot_emulators.rancher.schema import Obj
from accessbot_emulators.rancher.settings import EmulatorSettings


@dataclass
class FailRule:
    """Fail the next `remaining` requests whose path contains `path` (and of `method`, when given) with `status`."""

    path: str
    status: int
    remaining: int
    method: str | None = None


class Traffic:
    """Request counters since the last reset and the pending failure rules (used under the emulator's lock)."""

    def __init__(self) -> None:
        """No requests counted, no failures pending."""
        self.total = 0
        self.bytes = 0
        self.by_path: dict[str, int] = {}
        self.rules: list[FailRule] = []

    def count(self, method: str, path: str) -> None:
        """Count one request."""
        self.total += 1
        key = f"{method} {path}"
        self.by_path[key] = self.by_path.get(key, 0) + 1

    def counts(self) -> Obj:
        """`{"total": n, "bytes": body bytes sent, "by_path": {"GET /v3/…": n}}`."""
        return {"total": self.total, "bytes": self.bytes, "by_path": dict(self.by_path)}

    def reset_counters(self) -> None:
        """Zero the counters."""
        self.total = 0
        self.bytes = 0
        self.by_path = {}

    def take_failure(self, method: str, path: str, settings: EmulatorSettings, rng: random.Random) -> int | None:
        """The status to fail this request with (a matching rule, then `failure_rate`), or None."""
        lowered = path.lower()
        for rule in self.rules:
            if rule.remaining > 0 and rule.path in lowered and (rule.method is None or rule.method == method):
                rule.remaining -= 1
                if rule.remaining == 0:
                    self.rules.remove(rule)
                return rule.status
        if settings.failure_rate > 0 and rng.random() < settings.failure_rate:
            return settings.failure_status
        return None
