"""The daily audit anchor: the chain's head (id and hash) posted to the security channel, outside the database.

Anyone who can write the database can also rewrite the head it keeps beside the rows; a head posted in Slack
cannot be taken back that way. `accessbot audit verify --anchor ID:HASH` checks a database against such a post.
"""

from __future__ import annotations

from datetime import UTC, datetime

from bot.core import audit_actions as A
from bot.core.notices import AuditAnchor
from bot.core.storage import JobMarks, Transactions
from bot.services.audit import AuditLog
from bot.services.outbox import Outbox


class DailyAnchor:
    """Posts the audit head once per UTC day (the post_anchor job)."""

    def __init__(self, *, tx: Transactions, marks: JobMarks, audit: AuditLog, outbox: Outbox) -> None:
        self._tx = tx
        self._marks = marks
        self._audit = audit
        self._outbox = outbox

    async def post(self, now: int) -> int | None:
        """Queue today's anchor unless it was posted already; return the anchored event id."""
        day = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d")
        if not self._outbox.channel("security") or self._marks.get(f"anchor:{day}") is not None:
            return None
        with self._tx.atomic():
            head = self._audit.head()
            if head.last_id == 0 or not self._marks.claim(f"anchor:{day}", str(head.last_id), now):
                return None
            self._outbox.post("security", f"anchor:{day}", AuditAnchor(head.last_id, head.last_hash, day))
            self._audit.record(
                A.AUDIT_ANCHORED,
                actor="system",
                target=day,
                details={"head_id": head.last_id, "head_hash": head.last_hash},
            )
        return head.last_id
