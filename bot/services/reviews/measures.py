"""What reviews achieve, measured: the standing bindings of governed roles (a daily sample, the /metrics gauge and
the digest's weekly trend) and each campaign's outcome with the time-boxed grants that replaced converted access."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from bot.core.model import RoleBinding
from bot.core.review_measures import CampaignOutcome, ReviewMeasures, StandingTrend, replacements
from bot.core.review_scope import standing
from bot.core.review_storage import ReviewStore, StandingSamples
from bot.core.reviews import outcome
from bot.core.storage import GrantStore


class StandingGauge:
    """Counts the standing bindings of governed roles in a full binding list and keeps one sample a day."""

    def __init__(self, *, samples: StandingSamples, governed_roles: Callable[[], set[str]], grant_label: str) -> None:
        self._samples = samples
        self._governed = governed_roles
        self._label = grant_label

    def count(self, bindings: Iterable[RoleBinding]) -> int:
        """Standing (neither the bot's nor Rancher's own) cluster and project bindings of roles the policy governs."""
        governed = self._governed()
        return sum(1 for b in bindings if b.role_id in governed and standing(b, self._label))

    def record(self, bindings: Iterable[RoleBinding], now: int) -> int:
        """Count and keep today's sample (the reconciler calls this with the bindings it listed); return the count."""
        count = self.count(bindings)
        self._samples.record(datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d"), now, count)
        return count

    def latest(self) -> int | None:
        """The newest count, if one was measured."""
        found = self._samples.latest()
        return found[1] if found is not None else None


def review_measures(
    reviews: ReviewStore, samples: StandingSamples, grants: GrantStore, start: int, end: int
) -> ReviewMeasures:
    """The digest's reviews section for [start, end): the trend, each campaign open in it, replacement grants."""
    now_sample, before_sample = samples.at_or_before(end), samples.at_or_before(start)
    trend = StandingTrend(
        now=now_sample[1] if now_sample is not None else None,
        before=before_sample[1] if before_sample is not None else None,
    )
    campaigns = tuple(
        CampaignOutcome(c.name, c.status.value, outcome(reviews.counts(c.id)))
        for c in reviews.campaigns_between(start, end)
    )
    converted = reviews.conversions(0, end)
    grants_now = grants.between(start, end) if converted else []
    return ReviewMeasures(trend, campaigns, replacements(converted, grants_now, since=start))
