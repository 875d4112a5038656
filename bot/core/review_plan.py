"""The plan of an access review: what applying its decided removals and conversions would delete now, and what it
would leave alone (changed in Rancher since the campaign's read, or gone)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from bot.core.model import RoleBinding
from bot.core.review_bindings import what_changed
from bot.core.reviews import CHANGES, ItemState, ReviewItem


class PlanStatus(StrEnum):
    """What applying would do to one decided item, by what Rancher holds now."""

    READY = "ready"  # the binding is as it was read: it will be deleted
    CHANGED = "changed"  # it changed since the campaign's read: it will not be touched
    GONE = "gone"  # someone deleted it already


@dataclass(frozen=True)
class PlanEntry:
    """One decided remove or convert, and what applying it would do now."""

    item: ReviewItem
    status: PlanStatus
    why: str = ""


@dataclass(frozen=True)
class Plan:
    """What `review apply` would delete (and what it would leave alone, with why)."""

    entries: tuple[PlanEntry, ...] = ()
    kept: int = 0
    undecided: int = 0

    @property
    def ready(self) -> tuple[PlanEntry, ...]:
        """Entries that would be deleted."""
        return tuple(e for e in self.entries if e.status is PlanStatus.READY)


def plan_entry(item: ReviewItem, live: RoleBinding | None) -> PlanEntry:
    """What applying a decided remove/convert would do, given the binding as Rancher holds it now (None: gone)."""
    if live is None or live.terminating:
        return PlanEntry(item, PlanStatus.GONE, "the binding is no longer in Rancher")
    changed = what_changed(item.binding, live)
    if changed:
        return PlanEntry(item, PlanStatus.CHANGED, f"changed in Rancher since the campaign's read: {changed}")
    return PlanEntry(item, PlanStatus.READY)


def to_apply(items: Iterable[ReviewItem]) -> list[ReviewItem]:
    """Decided items whose verdict deletes the binding, in id order."""
    return sorted(
        (i for i in items if i.state is ItemState.DECIDED and i.verdict in CHANGES),
        key=lambda i: i.id,
    )
