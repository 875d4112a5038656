"""Access reviews as values: campaigns, their items (one standing Rancher binding each) and the item state machine.
What a campaign covers is `review_scope`; a binding's fingerprint and stored form, `review_bindings`; the plan,
`review_plan`.

States of an item, and the events that move it (terminal: SKIPPED and UNDONE; a kept item stays DECIDED)::

    pending --decide--> decided --decide--> decided           a reviewer may change their mind until it is applied
    decided --begin_apply--> applying --applied--> applied    remove or convert: the binding is deleted
    applying --skip--> skipped                                the binding changed in Rancher since the read, or is gone
    applying --abort--> decided                               Rancher failed transiently: tried again later
    applied --begin_undo--> undoing --undone--> undone        the stored binding is recreated
    undoing --undo_failed--> applied

`begin_apply` and `begin_undo` are recorded (and audited) before Rancher is touched, so a crash leaves the item in
APPLYING or UNDOING, which the review job finishes (`IN_FLIGHT`). Each move is a compare-and-set on the state.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from bot.core.errors import InvalidTransition
from bot.core.model import RoleBinding


class Subjects(StrEnum):
    """Which bindings a campaign reviews by subject."""

    USERS = "users"
    GROUPS = "groups"
    BOTH = "both"


class Verdict(StrEnum):
    """What a reviewer decided for one binding."""

    KEEP = "keep"  # stays until the next review
    CONVERT = "convert"  # the standing binding goes; the holder requests time-boxed access instead
    REMOVE = "remove"  # the standing binding goes


CHANGES: frozenset[Verdict] = frozenset({Verdict.CONVERT, Verdict.REMOVE})
"""Verdicts that delete the binding when the plan is applied."""


class CampaignStatus(StrEnum):
    """Whether reviewers may still decide."""

    OPEN = "open"
    CLOSED = "closed"


class ItemState(StrEnum):
    """Where one reviewed binding stands (moves: see the module docstring)."""

    PENDING = "pending"
    DECIDED = "decided"
    APPLYING = "applying"
    APPLIED = "applied"
    SKIPPED = "skipped"
    UNDOING = "undoing"
    UNDONE = "undone"


class ItemEvent(StrEnum):
    """Something that moves an item."""

    DECIDE = "decide"
    BEGIN_APPLY = "begin_apply"
    APPLIED = "applied"
    SKIP = "skip"
    ABORT = "abort"
    BEGIN_UNDO = "begin_undo"
    UNDONE = "undone"
    UNDO_FAILED = "undo_failed"


_S, _E = ItemState, ItemEvent
MOVES: dict[tuple[ItemState, ItemEvent], ItemState] = {
    (_S.PENDING, _E.DECIDE): _S.DECIDED,
    (_S.DECIDED, _E.DECIDE): _S.DECIDED,
    (_S.DECIDED, _E.BEGIN_APPLY): _S.APPLYING,
    (_S.APPLYING, _E.APPLIED): _S.APPLIED,
    (_S.APPLYING, _E.SKIP): _S.SKIPPED,
    (_S.APPLYING, _E.ABORT): _S.DECIDED,
    (_S.APPLIED, _E.BEGIN_UNDO): _S.UNDOING,
    (_S.UNDOING, _E.UNDONE): _S.UNDONE,
    (_S.UNDOING, _E.UNDO_FAILED): _S.APPLIED,
}
"""Every legal (state, event) → next state."""

IN_FLIGHT: frozenset[ItemState] = frozenset({_S.APPLYING, _S.UNDOING})
"""States in which a Rancher call is (or was, before a crash) under way: the review job finishes them."""
DECIDABLE: frozenset[ItemState] = frozenset({_S.PENDING, _S.DECIDED})
"""States in which a reviewer may still (re)decide."""


def move(state: ItemState, event: ItemEvent) -> ItemState:
    """The state after `event`, or raise InvalidTransition."""
    nxt = MOVES.get((state, event))
    if nxt is None:
        raise InvalidTransition(state.value, event.value)
    return nxt


def sources(event: ItemEvent) -> tuple[ItemState, ...]:
    """The states from which `event` is legal (the `expected` of a compare-and-set)."""
    return tuple(state for (state, e) in MOVES if e is event)


# --- values -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CampaignScope:
    """What a campaign reviews: role template ids and target selectors (globs), and which subjects.

    A target selector without `/` names clusters (by name or id): their cluster bindings and the bindings of
    their projects. `CLUSTER/PROJECT` names projects (each side a glob): only those projects' bindings.
    """

    roles: tuple[str, ...]
    targets: tuple[str, ...] = ("*",)
    subjects: Subjects = Subjects.BOTH


@dataclass(frozen=True)
class Campaign:
    """One access review: what it covers, who started it, until when, and what happens to undecided items."""

    id: int
    name: str
    scope: CampaignScope
    created_by: str
    created_at: int
    due_at: int
    on_timeout: Verdict = Verdict.KEEP
    status: CampaignStatus = CampaignStatus.OPEN
    template: str = ""  # the scheduled review (schedule.reviews[].name) that started it, if any
    closed_at: int | None = None
    closed_by: str = ""
    excluded: int = 0  # matching bindings left out: managed by Rancher (a global role's or restricted-admin's)


@dataclass(frozen=True)
class Holder:
    """Who a binding gives access to: a user (principal ids, the linked person if known) or a group."""

    kind: str  # "user" | "group"
    name: str  # how people read it: the linked person's name or email, the Rancher user's name, the group name
    principals: tuple[str, ...] = ()  # the user's principal ids (and local://<id>), or the group principal id
    user_id: str = ""
    person: str = ""  # person_key of the linked identity ("" when nobody linked holds it)
    slack_user: str = ""
    groups: tuple[str, ...] = ()  # a group's names as the policy matches them (its id and display name)

    @property
    def is_group(self) -> bool:
        """True for a group binding."""
        return self.kind == "group"


@dataclass(frozen=True)
class Decision:
    """A reviewer's verdict on one item, by identity (`person` is the IdP identity, `by` the Slack account)."""

    verdict: Verdict
    reason: str
    by: str
    person: str
    at: int
    self_attested: bool = False
    timed_out: bool = False


@dataclass(frozen=True)
class ReviewItem:
    """One standing binding under review, as read when the campaign started, and what became of it."""

    id: int
    campaign_id: int
    binding: RoleBinding
    fingerprint: str
    target_name: str
    role_name: str
    holder: Holder
    reviewer_groups: tuple[str, ...] = ()  # empty: nobody but the admins reviews it
    rules: tuple[str, ...] = ()  # the policy rules that govern this role on this target
    state: ItemState = ItemState.PENDING
    decision: Decision | None = None
    note: str = ""  # why it was skipped, or what the last failure was
    applied_at: int | None = None
    applied_by: str = ""
    deleted: RoleBinding | None = None  # the binding as it was just before the bot deleted it (undo recreates it)
    restored_id: str = ""
    updated_at: int = 0

    @property
    def verdict(self) -> Verdict | None:
        """The decision's verdict, if decided."""
        return self.decision.verdict if self.decision is not None else None


@dataclass(frozen=True)
class ItemChange:
    """Columns of an item to set in a compare-and-set move; None leaves a column as it is."""

    state: ItemState | None = None
    decision: Decision | None = None
    note: str | None = None
    applied_at: int | None = None
    applied_by: str | None = None
    deleted: RoleBinding | None = None
    restored_id: str | None = None


@dataclass(frozen=True)
class Outcome:
    """How many items of a campaign ended each way (kept, converted, removed, undecided, skipped, undone)."""

    total: int = 0
    kept: int = 0
    converted: int = 0
    removed: int = 0
    undecided: int = 0
    skipped: int = 0
    undone: int = 0
    to_apply: int = 0  # decided convert/remove not applied yet (or being applied)

    @property
    def decided(self) -> int:
        """Items with a verdict."""
        return self.total - self.undecided


def outcome(counts: Mapping[tuple[ItemState, Verdict | None], int]) -> Outcome:
    """Tally item counts by (state, verdict) into a campaign's outcome."""
    totals: dict[str, int] = dict.fromkeys(("kept", "converted", "removed", "undecided", "skipped", "undone", "to"), 0)
    total = 0
    for (state, verdict), n in counts.items():
        total += n
        if state is ItemState.PENDING:
            totals["undecided"] += n
        elif state is ItemState.SKIPPED:
            totals["skipped"] += n
        elif state in (ItemState.UNDONE, ItemState.UNDOING):
            totals["undone"] += n
        elif verdict is Verdict.KEEP:
            totals["kept"] += n
        elif state is ItemState.APPLIED:
            totals["converted" if verdict is Verdict.CONVERT else "removed"] += n
        else:
            totals["to"] += n
    return Outcome(
        total=total,
        kept=totals["kept"],
        converted=totals["converted"],
        removed=totals["removed"],
        undecided=totals["undecided"],
        skipped=totals["skipped"],
        undone=totals["undone"],
        to_apply=totals["to"],
    )


def outcome_of(items: Iterable[ReviewItem]) -> Outcome:
    """The outcome of a list of items."""
    counts: dict[tuple[ItemState, Verdict | None], int] = {}
    for item in items:
        counts[(item.state, item.verdict)] = counts.get((item.state, item.verdict), 0) + 1
    return outcome(counts)


@dataclass(frozen=True)
class ItemFilter:
    """Which items of a campaign to read (empty collections mean any)."""

    states: Collection[ItemState] = field(default_factory=tuple)
    reviewer_keys: Collection[str] = field(default_factory=tuple)
    verdicts: Collection[Verdict] = field(default_factory=tuple)


def reviewer_key(groups: Iterable[str]) -> str:
    """The stored form of an item's reviewer groups: sorted, JSON (items sharing reviewers share the key)."""
    return json.dumps(sorted(set(groups)), separators=(",", ":"))


def reviewer_groups_of(key: str) -> tuple[str, ...]:
    """The reviewer groups of a stored key."""
    value = json.loads(key or "[]")
    return tuple(str(v) for v in value) if isinstance(value, list) else ()


ANY_ITEM = ItemFilter()
"""Every item of a campaign."""
