"""The weekly audit digest: which period is due, building it off the event loop, queueing it once per period."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, replace

from bot.core import audit_actions as A
from bot.core import digest as digest_core
from bot.core.audit_chain import ChainKey
from bot.core.digest_period import DigestPeriod, fire_time, last_complete_week
from bot.core.notices import DigestAttachment, DigestReady
from bot.core.ports import Clock
from bot.core.storage import GrantStore, JobMarks, Storage, Transactions
from bot.services.audit import AuditLog, check_chain
from bot.services.outbox import Outbox
from bot.services.reviews import review_measures

SYSTEM = "system"
ReaderFactory = Callable[[], Storage]
"""Opens a second connection to the same database (for a long read on a worker thread); closed by the caller."""


@dataclass(frozen=True)
class DigestSettings:
    """When the digest is posted: a weekday name, a local HH:MM and a timezone."""

    day: str = "monday"
    time: str = "09:00"
    timezone: str = "UTC"


def build_period_digest(storage: Storage, start: int, end: int, keys: tuple[ChainKey, ...] = ()) -> digest_core.Digest:
    """The digest of [start, end) with the change against the equally long period before it and the chain check.

    Per-action numbers are counted by the database; only the rows the digest needs to read are fetched.
    """
    audit = storage.audit
    check = check_chain(audit, keys)
    length = end - start
    digest = digest_core.build_digest(
        audit.digest_rows(start, end, digest_core.DETAIL_ACTIONS),
        audit.digest_rows(start - length, start, digest_core.DETAIL_ACTIONS),
        start,
        end,
        check.ok,
        check.count,
        counts=audit.action_counts(start, end),
        previous_counts=audit.action_counts(start - length, start),
    )
    reviews = review_measures(storage.reviews, storage.standing, storage.grants, start, end)
    return replace(digest, unmonitored_links=storage.links.count_unmonitored(), reviews=reviews)


async def build_period_digest_off_loop(
    open_reader: ReaderFactory, start: int, end: int, keys: tuple[ChainKey, ...] = ()
) -> digest_core.Digest:
    """Build a period's digest on a worker thread with its own connection, so Slack stays answered meanwhile."""

    def work() -> digest_core.Digest:
        reader = open_reader()
        try:
            return build_period_digest(reader, start, end, keys)
        finally:
            reader.database.close()

    return await asyncio.to_thread(work)


RECORDS_SINCE = "digest:records-since"
"""Job mark: when the deployment began keeping records (no digest is posted for a week before it)."""


class WeeklyDigest:
    """Posts the last complete ISO week's digest and its grants CSV once per period (the post_digest job)."""

    def __init__(
        self,
        *,
        tx: Transactions,
        grants: GrantStore,
        marks: JobMarks,
        audit: AuditLog,
        outbox: Outbox,
        open_reader: ReaderFactory,
        clock: Clock,
        settings: DigestSettings,
    ) -> None:
        self._tx = tx
        self._grants = grants
        self._marks = marks
        self._audit = audit
        self._outbox = outbox
        self._open_reader = open_reader
        self._clock = clock
        self.settings = settings

    def _records_since(self, now: int) -> int:
        """When this deployment began keeping records: its oldest audit event, else its first digest check."""
        known = self._marks.get(RECORDS_SINCE)
        if known is not None and known.isdigit():
            return int(known)
        first = self._audit.first_event_at()
        since = now if first is None else min(first, now)
        self._marks.claim(RECORDS_SINCE, str(since), now)
        return since

    def due(self, now: int) -> DigestPeriod | None:
        """The period whose digest should be posted at `now`, or None before this week's configured time."""
        s = self.settings
        if now < fire_time(now, s.timezone, s.day, s.time):
            return None
        return last_complete_week(now, s.timezone)

    async def post(self, now: int, *, force: bool = False) -> str | None:
        """Queue the last complete ISO week's digest and grants CSV, once per period; return the period key."""
        s = self.settings
        period = last_complete_week(now, s.timezone) if force else self.due(now)
        if period is None or not self._outbox.channel("digest"):
            return None
        state_key = f"digest:{period.key}"
        if self._marks.get(state_key) is not None:
            return None
        if period.end <= self._records_since(now):  # the bot was not running that week: nothing to report
            self._marks.claim(state_key, "skipped: before the first record", now)
            return None
        digest = await build_period_digest_off_loop(self._open_reader, period.start, period.end, self._audit.keys)
        csv_text = digest_core.grants_csv(self._grants.between(period.start, period.end))
        with self._tx.atomic():
            if not self._marks.claim(state_key, str(now), now):
                return None
            head = self._audit.head()
            ready = DigestReady(digest, period.key, s.timezone, head.last_id, head.last_hash)
            self._outbox.post("digest", f"digest:{period.key}", ready)
            self._outbox.file(
                "digest",
                f"digest-csv:{period.key}",
                f"accessbot-grants-{period.key}.csv",
                csv_text,
                DigestAttachment(period.key, period.start, period.end),
            )
            self._audit.record(
                A.DIGEST_POSTED,
                actor=SYSTEM,
                target=period.key,
                details={
                    "period_start": period.start,
                    "period_end": period.end,
                    "events": digest.events,
                    "head_id": head.last_id,
                    "head_hash": head.last_hash,
                },
            )
        return period.key
