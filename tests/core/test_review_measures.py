"""The digest's review measures: the standing trend and the grants that replaced converted access."""

from __future__ import annotations

from bot.core.model import Grant, GrantState, RoleBinding, Scope, Target
from bot.core.review_measures import ReviewMeasures, StandingTrend, replacements
from bot.core.reviews import Holder, ItemState, ReviewItem

BINDING = RoleBinding("p-pay:prtb-1", Scope.PROJECT, "project-owner", "c-prod", "c-prod:p-pay", user_id="u-1")


def converted(holder: Holder, applied_at: int = 100) -> ReviewItem:
    return ReviewItem(
        1, 1, BINDING, "fp", "prod-eu/payments", "Project Owner", holder, state=ItemState.APPLIED, applied_at=applied_at
    )


def grant(slack: str, at: int, *, role: str = "project-owner", via: tuple[str, ...] = ()) -> Grant:
    return Grant(
        "g-1", slack, "s", Target("c-prod", "c-prod:p-pay"), role, 3600, "r", GrantState.ACTIVE, at, via_groups=via
    )


def test_a_holders_later_grant_for_the_same_access_replaces_it() -> None:
    """alice's converted project-owner, then her time-boxed request for it: one replacement."""
    item = converted(Holder("user", "alice", slack_user="U0ALICE"))
    assert replacements([item], [grant("U0ALICE", 200)], since=0) == 1


def test_grants_before_the_conversion_or_for_other_access_do_not_count() -> None:
    """Earlier grants, another role, another person or before the period are not replacements."""
    item = converted(Holder("user", "alice", slack_user="U0ALICE"), applied_at=150)
    grants = [grant("U0ALICE", 100), grant("U0ALICE", 200, role="project-member"), grant("U0BOB", 200)]
    assert replacements([item], grants, since=0) == 0
    assert replacements([item], [grant("U0ALICE", 200)], since=300) == 0


def test_a_group_members_grant_replaces_the_groups_binding() -> None:
    """A grant through the converted group replaces its binding."""
    item = converted(Holder("group", "sre", ("genericoidc_group://sre",), groups=("sre",)))
    assert replacements([item], [grant("U0BOB", 200, via=("sre",))], since=0) == 1


def test_the_trend_needs_both_ends() -> None:
    """A change is known only when both samples exist."""
    assert StandingTrend(now=40, before=52).change == -12
    assert StandingTrend(now=40).change is None
    assert ReviewMeasures().empty
