"""Refusals: sign-in and token refusals audited one by one, and outsiders' refusals tallied (bounded) per minute.

Anyone on the internet can send a forged Slack request or a bogus OAuth callback. Those are counted per reason in
/metrics at once, and audited as one row per reason and minute, written when the minute is over: the count, when
the first came, and the busiest sources with their counts. Distinct sources kept per reason are capped, and every
value an outsider chose is cut short, so neither the database nor the memory grows with what an attacker sends.
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from bot.core import audit_actions
from bot.core.notices import LoginRefused, RefusalKind
from bot.core.ports import Clock
from bot.core.storage import Transactions
from bot.services.audit import AuditLog
from bot.services.metrics import METRICS
from bot.services.outbox import Outbox

ANONYMOUS_POST_WINDOW = 300
"""Anyone can call the OAuth callback: refusals with nobody known post at most once per this many seconds."""

_KINDS = {
    audit_actions.ID_TOKEN_REJECTED: RefusalKind.ID_TOKEN,
    audit_actions.LOGIN_STATE_MISMATCH: RefusalKind.STATE,
}


def identity_key(kind: str, slack_user: str, now: int) -> str:
    """A fresh outbox key for an identity notice (each event is its own message)."""
    return f"identity:{kind}:{slack_user}:{now}:{secrets.token_hex(4)}"


TALLY_WINDOW = 60
"""Seconds of one tally window."""
MAX_SOURCES = 1000
"""Distinct sources counted apart per reason and window; the rest are counted together as `other`."""
SHOWN_SOURCES = 20
"""Busiest sources named in a tally row."""
MAX_DETAIL = 64
"""Characters kept of any outsider-supplied value stored in a tally row."""


@dataclass
class _Tally:
    """Refusals of one (action, reason) in the current window."""

    first_at: int
    target: str
    details: dict[str, object]
    count: int = 0
    sources: Counter[str] = field(default_factory=Counter)


@dataclass
class RefusalTally:
    """Counts outsiders' refusals; audits one row per (action, reason) and window, when the window is over."""

    audit: AuditLog
    clock: Clock
    kind: str
    window_s: int = TALLY_WINDOW
    max_sources: int = MAX_SOURCES
    _window: int = field(default=-1, init=False)
    _tallies: dict[tuple[str, str], _Tally] = field(default_factory=dict, init=False)

    def refused(
        self, action: str, reason: str, source: str, *, target: str = "", details: Mapping[str, object] | None = None
    ) -> None:
        """Count one refusal (the metric at once; the audit row when its window is over)."""
        METRICS.count_refusal(self.kind, reason)
        now = self.clock.now()
        window = now // self.window_s
        if window != self._window:
            self.flush()
            self._window = window
        key = (action, _cut(reason))
        tally = self._tallies.get(key)
        if tally is None:
            kept = {k: _cut(v) if isinstance(v, str) else v for k, v in (details or {}).items()}
            tally = self._tallies[key] = _Tally(now, target, kept)
        tally.count += 1
        source = _cut(source or "unknown")
        if source not in tally.sources and len(tally.sources) >= self.max_sources:
            source = "other"
        tally.sources[source] += 1

    def flush(self, *, before: int | None = None) -> int:
        """Audit every tally of a finished window (of the current one too when `before` is None); return the rows."""
        if before is not None and self._window >= before // self.window_s:
            return 0
        for (action, reason), tally in self._tallies.items():
            busiest = dict(tally.sources.most_common(SHOWN_SOURCES))
            self.audit.record(
                action,
                actor="unknown",
                target=tally.target,
                outcome="refused",
                reason=reason,
                details={
                    **tally.details,
                    "count": tally.count,
                    "first_at": tally.first_at,
                    "sources": busiest,
                    "other_sources": len(tally.sources) - len(busiest),
                },
            )
        written = len(self._tallies)
        self._tallies.clear()
        return written


def _cut(value: str) -> str:
    return value if len(value) <= MAX_DETAIL else value[: MAX_DETAIL - 1] + "…"


class Refusals:
    """Audits refusals of identity steps and alerts the security channel; outsiders' refusals are tallied."""

    def __init__(
        self, *, tx: Transactions, audit: AuditLog, outbox: Outbox, clock: Clock, tally: RefusalTally | None = None
    ) -> None:
        self._tx = tx
        self._audit = audit
        self._outbox = outbox
        self._clock = clock
        self.tally = tally or RefusalTally(audit, clock, "oauth")

    def record(
        self,
        action: str,
        slack_user: str,
        why: str,
        *,
        notify: bool = False,
        actor: str | None = None,
        extra: Mapping[str, object] | None = None,
        source: str = "",
    ) -> None:
        """Audit one refusal; with `notify`, post it to the security channel too (rate-limited when anonymous).

        A refusal nobody can be named for (a forged or stale callback) is tallied instead of audited one by one.
        """
        now = self._clock.now()
        with self._tx.atomic():
            if slack_user:
                self._audit.record(
                    action,
                    actor=actor or slack_user,
                    target=slack_user,
                    outcome="refused",
                    reason=why,
                    details={"slack_user": slack_user, "why": why, **(extra or {})},
                )
            else:
                self.tally.refused(action, why, source or "unknown", details={"why": why})
            if not notify:
                return
            notice = LoginRefused(_KINDS.get(action, RefusalKind.LINK), slack_user, why)
            if slack_user:
                key = identity_key("refused", slack_user, now)
            else:
                key = f"identity:refused:anonymous:{action}:{now // ANONYMOUS_POST_WINDOW}"
            self._outbox.post("security", key, notice)
