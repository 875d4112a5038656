"""Access review notifications as text-free values (bot.slack.notices renders them; core.notices lists them all)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.core.reviews import Campaign, Outcome, ReviewItem


@dataclass(frozen=True)
class CampaignFacts:
    """A campaign, where it stands, and the bindings left alone because they changed in Rancher (the first few)."""

    campaign: Campaign
    outcome: Outcome
    now: int
    reviewers: int = 0
    unassigned: int = 0
    skipped: tuple[ReviewItem, ...] = ()


@dataclass(frozen=True)
class ReviewerItems:
    """One reviewer's items of a campaign (every one: the renderer shows them a page at a time)."""

    campaign: Campaign
    items: tuple[ReviewItem, ...]
    now: int
    page: int = 0


@dataclass(frozen=True)
class ReviewerAsked:
    """The DM asking a reviewer to decide their items (edited when the campaign closes); `reminder` before the
    deadline."""

    items: ReviewerItems
    reminder: bool = False


@dataclass(frozen=True)
class ReviewProgress:
    """The campaign's message in the reviews channel, posted at start and edited as reviewers decide."""

    facts: CampaignFacts


@dataclass(frozen=True)
class AccessConverted:
    """A DM telling a holder their standing binding was converted: how to request it as time-boxed access now."""

    item: ReviewItem
    campaign: str
    rule: str
    target: str  # as `/access request` takes it: CLUSTER or CLUSTER/PROJECT, by name


ReviewNotice = ReviewerAsked | ReviewProgress | AccessConverted
"""Everything the reviews tell someone."""
