"""Access reviews: campaigns over Rancher's standing bindings, reviewers' decisions in Slack, and the crash-safe
apply and undo that shrink standing privilege into time-boxed access.

`ReviewServices` bundles the use cases; each lives in its own module and shares the directory (lookups) with the
others.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bot.core.policy import Policy
from bot.core.ports import Clock, RancherApi
from bot.core.principals import PrincipalMapping
from bot.core.review_storage import ReviewStore, StandingSamples
from bot.core.storage import JobMarks, LinkStore, Transactions
from bot.services.audit import AuditLog
from bot.services.outbox import Outbox
from bot.services.reviews.campaigns import Campaigns, StartReport
from bot.services.reviews.changes import ApplyReport, Changes
from bot.services.reviews.decisions import BulkOutcome, DecideOutcome, Decisions
from bot.services.reviews.directory import Estate, ReviewDirectory, ReviewSettings
from bot.services.reviews.job import ReviewJob, ReviewJobResult, ScheduledReview
from bot.services.reviews.measures import StandingGauge, review_measures

__all__ = [
    "ApplyReport",
    "BulkOutcome",
    "Campaigns",
    "Changes",
    "DecideOutcome",
    "Decisions",
    "Estate",
    "ReviewDirectory",
    "ReviewJob",
    "ReviewJobResult",
    "ReviewServices",
    "ReviewSettings",
    "ScheduledReview",
    "StandingGauge",
    "StartReport",
    "review_measures",
]


@dataclass(frozen=True)
class ReviewServices:
    """Every review use case, built once by wiring."""

    directory: ReviewDirectory
    campaigns: Campaigns
    decisions: Decisions
    changes: Changes
    job: ReviewJob
    gauge: StandingGauge

    @classmethod
    def create(
        cls,
        *,
        tx: Transactions,
        reviews: ReviewStore,
        samples: StandingSamples,
        links: LinkStore,
        marks: JobMarks,
        rancher: RancherApi,
        audit: AuditLog,
        outbox: Outbox,
        clock: Clock,
        policy: Policy,
        mapping: PrincipalMapping,
        governed_roles: Callable[[], set[str]],
        admins: frozenset[str] = frozenset(),
        settings: ReviewSettings | None = None,
        scheduled: tuple[ScheduledReview, ...] = (),
    ) -> ReviewServices:
        """Build the use cases over their ports, sharing one directory."""
        settings = settings or ReviewSettings()
        directory = ReviewDirectory(
            store=reviews,
            links=links,
            rancher=rancher,
            clock=clock,
            policy=policy,
            mapping=mapping,
            admins=admins,
            settings=settings,
        )
        campaigns = Campaigns(directory=directory, tx=tx, audit=audit, outbox=outbox, governed_roles=governed_roles)
        changes = Changes(directory=directory, tx=tx, audit=audit, outbox=outbox)
        job = ReviewJob(
            directory=directory,
            campaigns=campaigns,
            changes=changes,
            outbox=outbox,
            marks=marks,
            tx=tx,
            scheduled=scheduled,
        )
        return cls(
            directory=directory,
            campaigns=campaigns,
            decisions=Decisions(directory=directory, tx=tx, audit=audit, links=links),
            changes=changes,
            job=job,
            gauge=StandingGauge(samples=samples, governed_roles=governed_roles, grant_label=settings.grant_label),
        )
