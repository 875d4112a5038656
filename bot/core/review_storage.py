"""Storage ports of access reviews: campaigns and their items, and the daily samples of standing bindings
(bundled with the other ports in core.storage.Storage; adapters.store.reviews implements them)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Protocol

from bot.core.reviews import ANY_ITEM, Campaign, CampaignStatus, ItemChange, ItemFilter, ItemState, ReviewItem, Verdict


class ReviewStore(Protocol):
    """Access review campaigns and their items (states and moves: core.reviews)."""

    def create(self, campaign: Campaign) -> Campaign | None:
        """Store a new campaign (its id assigned); None when one of that name exists already."""
        ...

    def campaign(self, *, campaign_id: int | None = None, name: str | None = None) -> Campaign | None:
        """One campaign by id or by name."""
        ...

    def campaigns(self, statuses: Collection[CampaignStatus] = (), limit: int = 100) -> list[Campaign]:
        """Campaigns in the given statuses (any when empty), newest first."""
        ...

    def campaigns_between(self, since: int, until: int) -> list[Campaign]:
        """Campaigns open at some moment of [since, until), oldest first."""
        ...

    def close(self, campaign_id: int, at: int, by: str) -> bool:
        """Close an open campaign (compare-and-set); True when this call closed it."""
        ...

    def add_items(self, campaign_id: int, items: Sequence[ReviewItem]) -> int:
        """Store a campaign's items in bulk (ids assigned); return how many."""
        ...

    def item(self, item_id: int) -> ReviewItem | None:
        """One item by id."""
        ...

    def items(
        self, campaign_id: int, where: ItemFilter = ANY_ITEM, *, limit: int = 100_000, offset: int = 0
    ) -> list[ReviewItem]:
        """A campaign's items, by target, role, holder and id."""
        ...

    def reviewer_keys(self, campaign_id: int) -> list[str]:
        """The distinct reviewer keys of a campaign's items (core.reviews.reviewer_key)."""
        ...

    def counts(self, campaign_id: int) -> dict[tuple[ItemState, Verdict | None], int]:
        """A campaign's items per (state, verdict)."""
        ...

    def move(self, item_id: int, expected: Collection[ItemState], change: ItemChange, now: int) -> bool:
        """Apply `change` only while the item is in one of `expected` (compare-and-set); True when it won."""
        ...

    def in_flight(self, limit: int = 1000) -> list[ReviewItem]:
        """Items of any campaign left applying or undoing (a crash, or a Rancher call under way)."""
        ...

    def conversions(self, since: int, until: int) -> list[ReviewItem]:
        """Items whose conversion was applied in [since, until)."""
        ...


class StandingSamples(Protocol):
    """How many standing bindings of governed roles Rancher held, measured at most once a day (the last one wins)."""

    def record(self, day: str, at: int, count: int) -> None:
        """Keep the count measured at `at` as the sample of `day` (YYYY-MM-DD, UTC)."""
        ...

    def latest(self) -> tuple[int, int] | None:
        """(at, count) of the newest sample."""
        ...

    def at_or_before(self, ts: int) -> tuple[int, int] | None:
        """(at, count) of the newest sample taken at or before `ts`."""
        ...
