"""Checks every request that claims to come from Slack: signature, age, and replays; refusals are audited."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass

from bot.core import audit_actions
from bot.core.ports import Clock
from bot.services.audit import AuditLog

MAX_AGE_SECONDS = 300


@dataclass(frozen=True)
class Verdict:
    """Whether a request may be handled, and if not, why (safe to log and audit)."""

    ok: bool
    reason: str = ""


class RequestGuard:
    """HMAC-SHA256 signature check as Slack specifies, a 5-minute window, and a replay cache."""

    def __init__(self, signing_secret: str, audit: AuditLog, clock: Clock, *, replay_window: int = MAX_AGE_SECONDS):
        self._secret = signing_secret.encode("utf-8")
        self._audit = audit
        self._clock = clock
        self._seen: OrderedDict[str, int] = OrderedDict()
        self._window = replay_window

    def __repr__(self) -> str:
        return "RequestGuard(signing_secret=[redacted])"

    def check(self, headers: Mapping[str, str], body: bytes, *, remote: str = "") -> Verdict:
        """Verify one request; audit and refuse forged, stale, malformed or replayed ones."""
        verdict = self._verify(headers, body)
        if not verdict.ok:
            self._audit.record(
                audit_actions.SLACK_REQUEST_REJECTED,
                actor="unknown",
                target="/slack/events",
                outcome="refused",
                reason=verdict.reason,
                details={"remote": remote, "retry_num": headers.get("x-slack-retry-num", "")},
            )
        return verdict

    def _verify(self, headers: Mapping[str, str], body: bytes) -> Verdict:
        if not self._secret:  # Socket Mode only: no HTTP request can be verified, so none is accepted
            return Verdict(False, "no signing secret configured (Socket Mode only)")
        timestamp = headers.get("x-slack-request-timestamp", "")
        signature = headers.get("x-slack-signature", "")
        if not timestamp or not signature:
            return Verdict(False, "missing signature headers")
        if not timestamp.isdigit() or len(timestamp) > 12:
            return Verdict(False, "timestamp header is not a number")
        now = self._clock.now()
        if abs(now - int(timestamp)) > MAX_AGE_SECONDS:
            return Verdict(False, "timestamp outside the 5-minute window")
        expected = "v0=" + hmac.new(self._secret, b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            return Verdict(False, "signature does not match")
        if self._replayed(signature, now):
            return Verdict(False, "replayed request (same signature seen before)")
        return Verdict(True)

    def _replayed(self, signature: str, now: int) -> bool:
        while self._seen:
            oldest_sig, seen_at = next(iter(self._seen.items()))
            if now - seen_at <= self._window and len(self._seen) < 100_000:
                break
            self._seen.pop(oldest_sig)
        if signature in self._seen:
            return True
        self._seen[signature] = now
        return False


def monotonic_ms() -> float:
    """Milliseconds from a monotonic clock (for latency metrics)."""
    return time.monotonic() * 1000
