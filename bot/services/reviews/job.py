"""The review job (every `schedule.review_interval`, on the leader, fenced like every job): it finishes applies and
undos a crash interrupted, starts scheduled reviews, closes campaigns at their deadline (and applies them with
`review.auto_apply`, trying again every RETRY_APPLY_S what Rancher refused), reminds reviewers before the deadline,
and keeps each campaign's channel message current.

Every step is idempotent: reminders and scheduled starts are claimed once in the job marks, progress edits are keyed
by what they show (the outbox stores each key once), and closing is a compare-and-set.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.core.errors import UpstreamError, UserError
from bot.core.review_commands import ReviewStart
from bot.core.review_notices import ReviewerAsked, ReviewerItems, ReviewProgress
from bot.core.reviews import CHANGES, Campaign, CampaignStatus, ItemFilter, ItemState, Subjects, Verdict
from bot.core.storage import JobMarks, Transactions
from bot.services.outbox import Outbox
from bot.services.reviews.campaigns import SYSTEM, Campaigns, progress_ref
from bot.services.reviews.changes import Changes
from bot.services.reviews.directory import ReviewDirectory

log = logging.getLogger(__name__)
RETRY_APPLY_S = 600
"""With review.auto_apply, how long a change Rancher refused waits before the job applies it again."""
PROGRESS_WINDOW = 30 * 86400
"""How long after closing a campaign's channel message is still kept current (applies and undos come later)."""


@dataclass(frozen=True)
class ScheduledReview:
    """A review started every `every_s` seconds (`schedule.reviews[]`), named `<name>-<YYYY-MM-DD>`."""

    name: str
    every_s: int
    roles: tuple[str, ...] = ()
    targets: tuple[str, ...] = ("*",)
    subjects: Subjects = Subjects.BOTH
    due_s: int | None = None
    on_timeout: Verdict | None = None

    def start(self, now: int) -> ReviewStart:
        """The start request of the run due at `now`."""
        day = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d")
        due = timedelta(seconds=self.due_s) if self.due_s is not None else None
        return ReviewStart(f"{self.name}-{day}", self.roles, self.targets, self.subjects, due, self.on_timeout)


@dataclass(frozen=True)
class ReviewJobResult:
    """What one run did."""

    finished: int = 0
    started: tuple[str, ...] = ()
    closed: tuple[str, ...] = ()
    reminded: int = 0


class ReviewJob:
    """The body of the `reviews` job."""

    def __init__(
        self,
        *,
        directory: ReviewDirectory,
        campaigns: Campaigns,
        changes: Changes,
        outbox: Outbox,
        marks: JobMarks,
        tx: Transactions,
        scheduled: tuple[ScheduledReview, ...] = (),
    ) -> None:
        self._dir = directory
        self._campaigns = campaigns
        self._changes = changes
        self._outbox = outbox
        self._marks = marks
        self._tx = tx
        self.scheduled = scheduled

    async def run(self, now: int) -> ReviewJobResult:
        """One pass (see the module docstring)."""
        finished = await self._changes.finish(now)
        started = await self._start_scheduled(now)
        closed = await self._close_due(now)
        if self._dir.settings.auto_apply:
            await self._apply_again(now)
        reminded = self._remind(now)
        self._progress(now)
        return ReviewJobResult(finished, started, closed, reminded)

    async def _start_scheduled(self, now: int) -> tuple[str, ...]:
        started: list[str] = []
        recent = self._dir.store.campaigns(limit=1000)
        for template in self.scheduled:
            last = next((c for c in recent if c.template == template.name), None)
            if last is not None and now < last.created_at + template.every_s:
                continue
            start = template.start(now)
            if not self._marks.claim(f"review:scheduled:{start.name}", str(now), now):
                continue  # tried today already (a failure is not retried every minute)
            try:
                report = await self._campaigns.start(start, actor="schedule", template=template.name)
            except (UserError, UpstreamError) as err:
                log.warning("scheduled review %s did not start: %s", start.name, err)
                continue
            started.append(report.campaign.name)
        return tuple(started)

    async def _close_due(self, now: int) -> tuple[str, ...]:
        closed: list[str] = []
        for campaign in self._dir.store.campaigns((CampaignStatus.OPEN,), limit=1000):
            if campaign.due_at > now:
                continue
            done = await self._campaigns.close_campaign(campaign, actor=SYSTEM)
            closed.append(done.name)
            if self._dir.settings.auto_apply:
                await self._changes.apply_campaign(done, actor=SYSTEM)
        return tuple(closed)

    async def _apply_again(self, now: int) -> None:
        """Apply again the decided changes of recently closed campaigns that waited RETRY_APPLY_S (Rancher refused)."""
        for campaign in self._dir.store.campaigns((CampaignStatus.CLOSED,), limit=200):
            if campaign.closed_at is None or campaign.closed_at < now - PROGRESS_WINDOW:
                continue
            waiting = self._dir.store.items(campaign.id, ItemFilter(states=(ItemState.DECIDED,), verdicts=CHANGES))
            if any(i.updated_at <= now - RETRY_APPLY_S for i in waiting):
                await self._changes.apply_campaign(campaign, actor=SYSTEM)

    def _remind(self, now: int) -> int:
        sent = 0
        for campaign in self._dir.store.campaigns((CampaignStatus.OPEN,), limit=1000):
            due = [
                b
                for b in self._dir.settings.remind_before_s
                if campaign.created_at < campaign.due_at - b <= now < campaign.due_at
            ]
            if not due:
                continue
            before = min(due)  # after downtime only the reminder nearest the deadline goes, not all that fell due
            with self._tx.atomic():
                if self._marks.claim(f"review:{campaign.id}:remind:{before}", str(now), now):
                    sent += self._remind_reviewers(campaign, before, now)
        return sent

    def _remind_reviewers(self, campaign: Campaign, before: int, now: int) -> int:
        sent = 0
        for ident, items in self._dir.reviewers(campaign):
            if not any(i.state is ItemState.PENDING for i in items):
                continue
            key = f"review:{campaign.id}:remind:{before}:{ident.slack_user}"
            view = ReviewerItems(campaign, tuple(items), now)
            if self._outbox.dm(ident.slack_user, key, ReviewerAsked(view, reminder=True)):
                sent += 1
        return sent

    def _progress(self, now: int) -> None:
        for campaign in self._dir.store.campaigns(limit=200):
            if campaign.closed_at is not None and campaign.closed_at < now - PROGRESS_WINDOW:
                continue
            facts = self._dir.facts(campaign)
            o = facts.outcome
            shown = f"{campaign.status.value}:{o.decided}:{o.kept}:{o.converted}:{o.removed}:{o.skipped}:{o.undone}"
            ref = progress_ref(campaign)
            with self._tx.atomic():
                self._outbox.update(ref, f"{ref}:{shown}", ReviewProgress(facts))
