"""Access reviews as values: campaigns, their items (one standing Rancher binding each), the item state machine,
what a campaign covers, a binding's fingerprint and what an undo may recreate.

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

import fnmatch
import hashlib
import json
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from bot.core.errors import InvalidTransition
from bot.core.model import Cluster, Project, RoleBinding, Scope

GRB_OWNER_LABEL = "authz.management.cattle.io/grb-owner"
"""CRTBs a global role's `inheritedClusterRoles` made (globalroles/globalrolebinding_handler.go@v2.14.0)."""
RESTRICTED_ADMIN_SOURCE = ("field.cattle.io/source", "restrictedAdminsClusterOwner")
"""Restricted-admin's cluster-owner CRTBs (restrictedadminrbac/cluster.go@v2.10.0)."""


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


# --- what a campaign covers ---------------------------------------------------------------------------------


def rancher_managed(key: str) -> bool:
    """True for a label or annotation Rancher itself writes: every one lives under a `*cattle.io` domain.

    Among them `lifecycle.cattle.io/create.<controller>: "true"`, which tells Rancher's controllers that their create
    handler already ran (norman lifecycle/object.go `isInitialized`): copied onto a recreated binding, Rancher would
    never build its downstream RBAC. Others: `cattle.io/creator`, `field.cattle.io/creatorId`,
    `auth.cattle.io/principal-display-name`, `authz.management.cattle.io/*`.
    """
    domain = key.split("/", 1)[0] if "/" in key else ""
    return domain == "cattle.io" or domain.endswith(".cattle.io")


def managed_by_rancher(binding: RoleBinding) -> bool:
    """True for bindings Rancher's controllers own and would recreate: a global role's inherited cluster roles
    (`crtb-grb-*`, label grb-owner) and restricted-admin's cluster-owner bindings. They are reviewed through the
    global role binding, not here."""
    labels = binding.labels
    return GRB_OWNER_LABEL in labels or labels.get(RESTRICTED_ADMIN_SOURCE[0]) == RESTRICTED_ADMIN_SOURCE[1]


def made_by_bot(binding: RoleBinding, grant_label: str) -> bool:
    """True for a binding the bot created for a grant (its label or annotation carries the grant id)."""
    return grant_label in binding.labels or grant_label in binding.annotations


def _glob(pattern: str, *values: str | None) -> bool:
    return any(v is not None and fnmatch.fnmatchcase(v, pattern) for v in values)


def target_matches(selectors: Iterable[str], cluster: Cluster | None, project: Project | None) -> bool:
    """Whether a cluster (with `project` None) or a project of it is covered by any selector (see CampaignScope)."""
    if cluster is None:
        return False
    for selector in selectors:
        c_part, slash, p_part = selector.partition("/")
        if not _glob(c_part, cluster.name, cluster.id):
            continue
        if not slash:
            return True
        if project is not None and _glob(p_part, project.name, project.id, project.id.split(":", 1)[-1]):
            return True
    return False


def standing(binding: RoleBinding, grant_label: str) -> bool:
    """A live cluster or project binding that neither the bot nor Rancher's controllers made."""
    return (
        binding.scope is not Scope.GLOBAL
        and not binding.terminating
        and not made_by_bot(binding, grant_label)
        and not managed_by_rancher(binding)
    )


def role_matches(selectors: Iterable[str], role_id: str) -> bool:
    """Whether a role template id is named by any selector (ids, shell globs allowed)."""
    return any(fnmatch.fnmatchcase(role_id, s) for s in selectors)


def subject_matches(subjects: Subjects, binding: RoleBinding) -> bool:
    """Whether the binding's subject kind is one the campaign reviews."""
    is_group = bool(binding.group_principal_id)
    return subjects is Subjects.BOTH or (subjects is Subjects.GROUPS) == is_group


@dataclass(frozen=True)
class Selection:
    """The standing bindings a campaign covers, and how many matching ones Rancher manages (left out)."""

    bindings: tuple[RoleBinding, ...] = ()
    excluded: int = 0


def select(
    bindings: Iterable[RoleBinding],
    scope: CampaignScope,
    clusters: Mapping[str, Cluster],
    projects: Mapping[str, Project],
    grant_label: str,
) -> Selection:
    """Every standing binding of the scope's roles, targets and subjects (bot-made and terminating ones left out;
    Rancher-managed ones counted as `excluded`), in a stable order (by id)."""
    chosen: list[RoleBinding] = []
    excluded = 0
    for binding in bindings:
        if binding.scope is Scope.GLOBAL or binding.terminating or made_by_bot(binding, grant_label):
            continue
        if not role_matches(scope.roles, binding.role_id) or not subject_matches(scope.subjects, binding):
            continue
        project = projects.get(binding.project_id) if binding.project_id else None
        if not target_matches(scope.targets, clusters.get(binding.cluster_id or ""), project):
            continue
        if managed_by_rancher(binding):
            excluded += 1
            continue
        chosen.append(binding)
    return Selection(tuple(sorted(chosen, key=lambda b: (b.scope.value, b.id))), excluded)


# --- fingerprints and restoring -----------------------------------------------------------------------------


def _owned(values: Mapping[str, str]) -> dict[str, str]:
    return {k: str(v) for k, v in sorted(values.items()) if not rancher_managed(k)}


def fingerprint(binding: RoleBinding) -> str:
    """A digest of what makes a binding this binding: identity (uid, id, name), role, target, subject, and the
    labels and annotations people set (Rancher's own are left out: its controllers add them over time).

    The user subject fields are left out when the binding has a uid: v3 marks them `noupdate` and Rancher's
    controller fills the missing one in after a create (userId ↔ userPrincipalId), so only a new object (a new uid)
    can change them. A group principal can never be filled in, so it always counts.
    """
    data: dict[str, object] = {
        "uid": binding.uid,
        "id": binding.id,
        "name": binding.name,
        "scope": binding.scope.value,
        "role": binding.role_id,
        "cluster": binding.cluster_id or "",
        "project": binding.project_id or "",
        "group": binding.group_principal_id or "",
        "labels": _owned(binding.labels),
        "annotations": _owned(binding.annotations),
    }
    if not binding.uid:
        data["user"] = [binding.user_id or "", binding.user_principal_id or ""]
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def what_changed(before: RoleBinding, now: RoleBinding) -> str:
    """A short account of how a binding differs from the one read earlier (empty when the fingerprints agree)."""
    if fingerprint(before) == fingerprint(now):
        return ""
    if before.uid and now.uid and before.uid != now.uid:
        return "it was deleted and created again (a new object with the same name)"
    parts = []
    if before.role_id != now.role_id:
        parts.append(f"role {before.role_id} → {now.role_id}")
    if (before.group_principal_id or "") != (now.group_principal_id or ""):
        parts.append("subject changed")
    if _owned(before.labels) != _owned(now.labels):
        parts.append("labels changed")
    if _owned(before.annotations) != _owned(now.annotations):
        parts.append("annotations changed")
    return ", ".join(parts) or "it changed"


def restorable(binding: RoleBinding, grant_label: str, restored_by: str) -> tuple[dict[str, str], dict[str, str]]:
    """(labels, annotations) for recreating a deleted binding: the ones people set, never Rancher's own (see
    `rancher_managed`) nor the grant label (the reconciler would delete it as an orphan), plus a note of the undo."""
    labels = {k: v for k, v in _owned(binding.labels).items() if k != grant_label}
    annotations = {k: v for k, v in _owned(binding.annotations).items() if k != grant_label}
    annotations[RESTORED_ANNOTATION] = restored_by
    return labels, annotations


RESTORED_ANNOTATION = "accessbot.io/restored-by-review"
"""Set on a binding an undo recreated: the review item it was restored from."""


def binding_json(binding: RoleBinding) -> str:
    """The binding as stored for undo and audit (every field of the normalised value)."""
    return json.dumps(
        {
            "id": binding.id,
            "uid": binding.uid,
            "name": binding.name,
            "scope": binding.scope.value,
            "role_id": binding.role_id,
            "cluster_id": binding.cluster_id,
            "project_id": binding.project_id,
            "user_id": binding.user_id,
            "user_principal_id": binding.user_principal_id,
            "group_principal_id": binding.group_principal_id,
            "labels": dict(binding.labels),
            "annotations": dict(binding.annotations),
        },
        sort_keys=True,
        separators=(",", ":"),
    )


def binding_from_json(text: str) -> RoleBinding:
    """The binding stored by `binding_json`."""
    data = json.loads(text)

    def opt(key: str) -> str | None:
        value = data.get(key)
        return str(value) if value else None

    return RoleBinding(
        id=str(data["id"]),
        uid=str(data.get("uid") or ""),
        name=str(data.get("name") or ""),
        scope=Scope(data["scope"]),
        role_id=str(data["role_id"]),
        cluster_id=opt("cluster_id"),
        project_id=opt("project_id"),
        user_id=opt("user_id"),
        user_principal_id=opt("user_principal_id"),
        group_principal_id=opt("group_principal_id"),
        labels={str(k): str(v) for k, v in (data.get("labels") or {}).items()},
        annotations={str(k): str(v) for k, v in (data.get("annotations") or {}).items()},
    )


# --- the plan -----------------------------------------------------------------------------------------------


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
