"""What the weekly digest says about access reviews: the standing-binding trend, each campaign's outcome, and the
time-boxed grants that replaced access a review converted."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bot.core.model import Grant
from bot.core.reviews import Outcome, ReviewItem


@dataclass(frozen=True)
class StandingTrend:
    """Standing bindings of governed roles at the end of the period and at its start (None: not measured)."""

    now: int | None = None
    before: int | None = None

    @property
    def change(self) -> int | None:
        """The change over the period, when both ends were measured."""
        return None if self.now is None or self.before is None else self.now - self.before


@dataclass(frozen=True)
class CampaignOutcome:
    """One campaign open during the period and where it stands."""

    name: str
    status: str
    outcome: Outcome


@dataclass(frozen=True)
class ReviewMeasures:
    """The digest's reviews section."""

    standing: StandingTrend = StandingTrend()
    campaigns: tuple[CampaignOutcome, ...] = ()
    replacement_grants: int = 0

    @property
    def empty(self) -> bool:
        """True when there is nothing to say (never measured, no campaign, no replacement)."""
        return self.standing.now is None and not self.campaigns and not self.replacement_grants


def _replaces(item: ReviewItem, grant: Grant) -> bool:
    """A grant for the converted binding's role and target, asked for by its holder (a member of its group)."""
    b = item.binding
    if grant.role_id != b.role_id or grant.target.cluster_id != (b.cluster_id or ""):
        return False
    if (grant.target.project_id or None) != (b.project_id or None):
        return False
    if item.holder.is_group:
        return bool(set(grant.via_groups) & set(item.holder.groups or (item.holder.name,)))
    return bool(item.holder.slack_user) and grant.slack_user == item.holder.slack_user


def replacements(converted: Iterable[ReviewItem], grants: Iterable[Grant], *, since: int) -> int:
    """Grants requested since `since` (and after the conversion) that replace converted standing access."""
    items = [i for i in converted if i.applied_at is not None]
    count = 0
    for grant in grants:
        if grant.requested_at < since:
            continue
        if any(grant.requested_at >= (i.applied_at or 0) and _replaces(i, grant) for i in items):
            count += 1
    return count
