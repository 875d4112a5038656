"""Refused sign-ins and tokens: one audit event each, and a security-channel post when it smells of an attack."""

from __future__ import annotations

import secrets
from collections.abc import Mapping

from bot.core import audit_actions
from bot.core.notices import LoginRefused, RefusalKind
from bot.core.ports import Clock
from bot.core.storage import Transactions
from bot.services.audit import AuditLog
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


class Refusals:
    """Audits refusals of identity steps and alerts the security channel."""

    def __init__(self, *, tx: Transactions, audit: AuditLog, outbox: Outbox, clock: Clock) -> None:
        self._tx = tx
        self._audit = audit
        self._outbox = outbox
        self._clock = clock

    def record(
        self,
        action: str,
        slack_user: str,
        why: str,
        *,
        notify: bool = False,
        actor: str | None = None,
        extra: Mapping[str, object] | None = None,
    ) -> None:
        """Audit one refusal; with `notify`, post it to the security channel too (rate-limited when anonymous)."""
        now = self._clock.now()
        with self._tx.atomic():
            self._audit.record(
                action,
                actor=actor or slack_user or "anonymous",
                target=slack_user,
                outcome="refused",
                reason=why,
                details={"slack_user": slack_user, "why": why, **(extra or {})},
            )
            if not notify:
                return
            notice = LoginRefused(_KINDS.get(action, RefusalKind.LINK), slack_user, why)
            if slack_user:
                key = identity_key("refused", slack_user, now)
            else:
                key = f"identity:refused:anonymous:{action}:{now // ANONYMOUS_POST_WINDOW}"
            self._outbox.post("security", key, notice)
