"""Checks every request that claims to come from Slack: signature, age, and replays; refusals are tallied.

Slack signs `v0:{X-Slack-Request-Timestamp}:{raw body}` with HMAC-SHA256 and the app's signing secret and sends
`v0=<hex>` in `X-Slack-Signature`; a request older than five minutes must be refused
(https://api.slack.com/authentication/verifying-requests-from-slack). Accepted signatures are remembered in the
store until their own timestamp plus that window, so a replay is refused by every process, also after a restart.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from bot.core import audit_actions
from bot.core.errors import is_number
from bot.core.ports import Clock
from bot.core.storage import ReplayCache
from bot.services.refusals import RefusalTally

MAX_AGE_SECONDS = 300
MAX_SIGNATURE_CHARS = 80  # "v0=" and 64 hex digits
MAX_TIMESTAMP_CHARS = 12


@dataclass(frozen=True)
class Verdict:
    """Whether a request may be handled, and if not, why (safe to log and audit)."""

    ok: bool
    reason: str = ""


class RequestGuard:
    """HMAC-SHA256 signature check as Slack specifies, a 5-minute window, and a replay cache in the store."""

    def __init__(
        self,
        signing_secret: str,
        *,
        replays: ReplayCache,
        tally: RefusalTally,
        clock: Clock,
        window: int = MAX_AGE_SECONDS,
    ) -> None:
        self._secret = signing_secret.encode("utf-8")
        self._replays = replays
        self._tally = tally
        self._clock = clock
        self._window = window

    def __repr__(self) -> str:
        return "RequestGuard(signing_secret=[redacted])"

    def check(self, headers: Mapping[str, str], body: bytes, *, remote: str = "") -> Verdict:
        """Verify one request; refusals are counted (one audit row per reason and minute)."""
        verdict = self._verify(headers, body)
        if not verdict.ok:
            self._tally.refused(
                audit_actions.SLACK_REQUEST_REJECTED,
                verdict.reason,
                remote or "unknown",
                target="/slack/events",
                details={"retry_num": headers.get("x-slack-retry-num", "")},
            )
        return verdict

    def _verify(self, headers: Mapping[str, str], body: bytes) -> Verdict:
        if not self._secret:  # Socket Mode only: no HTTP request can be verified, so none is accepted
            return Verdict(False, "no signing secret configured (Socket Mode only)")
        timestamp = headers.get("x-slack-request-timestamp", "")
        signature = headers.get("x-slack-signature", "")
        if not timestamp or not signature:
            return Verdict(False, "missing signature headers")
        if not is_number(timestamp) or len(timestamp) > MAX_TIMESTAMP_CHARS:
            return Verdict(False, "timestamp header is not a number")
        if len(signature) > MAX_SIGNATURE_CHARS:
            return Verdict(False, "signature does not match")
        now = self._clock.now()
        sent_at = int(timestamp)
        if abs(now - sent_at) > self._window:
            return Verdict(False, "timestamp outside the 5-minute window")
        expected = "v0=" + hmac.new(self._secret, b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
            return Verdict(False, "signature does not match")
        if not self._replays.remember(signature, sent_at + self._window, now):
            return Verdict(False, "replayed request (same signature seen before)")
        return Verdict(True)
