"""Access review values: the item state machine, what a campaign covers, fingerprints, restoring, the plan, outcomes."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.core.errors import InvalidTransition
from bot.core.model import Cluster, Project, RoleBinding, Scope
from bot.core.review_bindings import (
    RESTORED_ANNOTATION,
    binding_from_json,
    binding_json,
    fingerprint,
    restorable,
    what_changed,
)
from bot.core.review_plan import PlanStatus, plan_entry, to_apply
from bot.core.review_scope import GRB_OWNER_LABEL, rancher_managed, select, target_matches
from bot.core.reviews import (
    CampaignScope,
    Decision,
    Holder,
    ItemEvent,
    ItemState,
    ReviewItem,
    Subjects,
    Verdict,
    move,
    outcome,
    reviewer_groups_of,
    reviewer_key,
    sources,
)

S, E = ItemState, ItemEvent
LABEL = "accessbot.io/grant"
PROD = Cluster("c-prod", "prod-eu")
DEV = Cluster("c-dev", "dev-eu")
PAY = Project("c-prod:p-pay", "payments", "c-prod")
WEB = Project("c-dev:p-web", "web", "c-dev")
CLUSTERS = {c.id: c for c in (PROD, DEV)}
PROJECTS = {p.id: p for p in (PAY, WEB)}


def crtb(name: str = "crtb-1", **fields: object) -> RoleBinding:
    values: dict[str, object] = {
        "id": f"c-prod:{name}",
        "name": name,
        "uid": "uid-1",
        "scope": Scope.CLUSTER,
        "role_id": "cluster-owner",
        "cluster_id": "c-prod",
        "user_id": "u-alice",
        "user_principal_id": "genericoidc_user://alice",
    }
    values.update(fields)
    return RoleBinding(**values)  # type: ignore[arg-type]


def prtb(name: str = "prtb-1", project: Project = PAY, **fields: object) -> RoleBinding:
    values: dict[str, object] = {
        "id": f"{project.id.split(':')[1]}:{name}",
        "name": name,
        "uid": "uid-2",
        "scope": Scope.PROJECT,
        "role_id": "project-owner",
        "cluster_id": project.cluster_id,
        "project_id": project.id,
        "group_principal_id": "genericoidc_group://sre",
    }
    values.update(fields)
    return RoleBinding(**values)  # type: ignore[arg-type]


def item(binding: RoleBinding | None = None, **fields: object) -> ReviewItem:
    b = binding or crtb()
    values: dict[str, object] = {
        "id": 1,
        "campaign_id": 1,
        "binding": b,
        "fingerprint": fingerprint(b),
        "target_name": "prod-eu",
        "role_name": "Cluster Owner",
        "holder": Holder("user", "alice@example.com", ("genericoidc_user://alice",), "u-alice"),
    }
    values.update(fields)
    return ReviewItem(**values)  # type: ignore[arg-type]


# --- the state machine ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "event", "after"),
    [
        (S.PENDING, E.DECIDE, S.DECIDED),
        (S.DECIDED, E.DECIDE, S.DECIDED),
        (S.DECIDED, E.BEGIN_APPLY, S.APPLYING),
        (S.APPLYING, E.APPLIED, S.APPLIED),
        (S.APPLYING, E.SKIP, S.SKIPPED),
        (S.APPLYING, E.ABORT, S.DECIDED),
        (S.APPLIED, E.BEGIN_UNDO, S.UNDOING),
        (S.UNDOING, E.UNDONE, S.UNDONE),
        (S.UNDOING, E.UNDO_FAILED, S.APPLIED),
    ],
)
def test_each_legal_move_reaches_its_state(state: ItemState, event: ItemEvent, after: ItemState) -> None:
    """Every move of the diagram goes where the diagram says."""
    assert move(state, event) is after


@pytest.mark.parametrize(
    ("state", "event"),
    [
        (S.PENDING, E.BEGIN_APPLY),
        (S.APPLIED, E.DECIDE),
        (S.APPLYING, E.DECIDE),
        (S.SKIPPED, E.BEGIN_APPLY),
        (S.UNDONE, E.BEGIN_UNDO),
        (S.PENDING, E.BEGIN_UNDO),
        (S.DECIDED, E.APPLIED),
    ],
)
def test_an_illegal_move_is_refused(state: ItemState, event: ItemEvent) -> None:
    """A move the diagram does not have raises InvalidTransition."""
    with pytest.raises(InvalidTransition):
        move(state, event)


def test_sources_are_the_compare_and_set_preconditions() -> None:
    """A decision may land on a pending or decided item, never on one being applied."""
    assert set(sources(E.DECIDE)) == {S.PENDING, S.DECIDED}
    assert sources(E.BEGIN_APPLY) == (S.DECIDED,)


# --- what a campaign covers -----------------------------------------------------------------------------


def test_a_cluster_selector_covers_the_cluster_and_its_projects() -> None:
    """`prod-*` covers the prod cluster's bindings and those of its projects, not another cluster's."""
    assert target_matches(["prod-*"], PROD, None)
    assert target_matches(["prod-*"], PROD, PAY)
    assert not target_matches(["prod-*"], DEV, WEB)


def test_a_project_selector_covers_only_projects() -> None:
    """`prod-eu/pay*` covers that project, never the cluster itself; ids work as well as names."""
    assert target_matches(["prod-eu/pay*"], PROD, PAY)
    assert target_matches(["c-prod/p-pay"], PROD, PAY)
    assert not target_matches(["prod-eu/pay*"], PROD, None)


def test_select_keeps_standing_bindings_of_the_scope_only() -> None:
    """Bot-made, terminating, global and out-of-scope bindings are left out; Rancher-managed ones are counted."""
    scope = CampaignScope(roles=("cluster-owner", "project-*"), targets=("prod-*",))
    wanted = [crtb("crtb-a"), prtb("prtb-b")]
    others = [
        crtb("crtb-bot", labels={LABEL: "g-1"}),
        crtb("crtb-gone", terminating=True),
        crtb("crtb-member", role_id="cluster-member"),
        crtb("crtb-dev", cluster_id="c-dev", id="c-dev:crtb-dev"),
        RoleBinding(id="grb-1", scope=Scope.GLOBAL, role_id="admin", user_id="u-x"),
    ]
    managed = crtb("crtb-grb-x", labels={GRB_OWNER_LABEL: "grb-1"})
    chosen = select([*others, managed, *wanted], scope, CLUSTERS, PROJECTS, LABEL)
    assert {b.name for b in chosen.bindings} == {"crtb-a", "prtb-b"}
    assert chosen.excluded == 1


@pytest.mark.parametrize(("subjects", "names"), [(Subjects.USERS, {"crtb-1"}), (Subjects.GROUPS, {"prtb-1"})])
def test_select_filters_by_subject_kind(subjects: Subjects, names: set[str]) -> None:
    """`--subjects users` reviews user bindings only, `groups` group bindings only."""
    scope = CampaignScope(roles=("*",), subjects=subjects)
    chosen = select([crtb(), prtb()], scope, CLUSTERS, PROJECTS, LABEL)
    assert {b.name for b in chosen.bindings} == names


def test_a_binding_the_bot_annotated_is_not_standing_access() -> None:
    """The grant id as an annotation (not only as a label) marks the bot's own binding."""
    chosen = select([crtb(annotations={LABEL: "g-9"})], CampaignScope(roles=("*",)), CLUSTERS, PROJECTS, LABEL)
    assert chosen.bindings == ()


# --- fingerprints -----------------------------------------------------------------------------------------


def test_the_user_subject_filled_in_by_rancher_is_not_a_change() -> None:
    """Rancher's controller fills userPrincipalId after a create (noupdate fields): the fingerprint holds."""
    before = crtb(user_principal_id=None)
    assert fingerprint(before) == fingerprint(crtb())


def test_rancher_own_annotations_are_not_a_change() -> None:
    """A lifecycle annotation added by Rancher's controllers leaves the fingerprint as it was."""
    later = crtb(annotations={"lifecycle.cattle.io/create.mgmt-auth-crtb-controller": "true"})
    assert fingerprint(later) == fingerprint(crtb())


@pytest.mark.parametrize(
    ("changed", "expected"),
    [
        (crtb(uid="uid-new"), "deleted and created again"),
        (crtb(labels={"team": "payments"}), "labels changed"),
        (crtb(annotations={"owner": "bob"}), "annotations changed"),
        (crtb(role_id="cluster-member"), "role cluster-owner → cluster-member"),
    ],
)
def test_a_real_change_is_detected_and_named(changed: RoleBinding, expected: str) -> None:
    """A new object, new labels or annotations people set, or a new role change the fingerprint, and say so."""
    assert fingerprint(changed) != fingerprint(crtb())
    assert expected in what_changed(crtb(), changed)


def test_without_a_uid_the_user_subject_counts() -> None:
    """When Rancher gave no uid, a different user subject is a change."""
    assert fingerprint(crtb(uid="", user_id="u-bob")) != fingerprint(crtb(uid=""))


# --- restoring ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "lifecycle.cattle.io/create.mgmt-auth-crtb-controller",
        "cattle.io/creator",
        "field.cattle.io/creatorId",
        "authz.management.cattle.io/grb-owner",
        "auth.cattle.io/principal-display-name",
    ],
)
def test_rancher_metadata_is_recognised(key: str) -> None:
    """Every label and annotation under a cattle.io domain is Rancher's own."""
    assert rancher_managed(key)


def test_restoring_drops_rancher_metadata_and_the_grant_label() -> None:
    """norman lifecycle/object.go: a copied `lifecycle.cattle.io/create.*: true` would make Rancher skip its create
    handler (no downstream RBAC); the grant label would make the reconciler delete it as an orphan."""
    deleted = crtb(
        labels={"team": "payments", "cattle.io/creator": "norman", LABEL: "g-3"},
        annotations={"lifecycle.cattle.io/create.mgmt-auth-crtb-controller": "true", "owner": "bob"},
    )
    labels, annotations = restorable(deleted, LABEL, "review item 7")
    assert labels == {"team": "payments"}
    assert annotations == {"owner": "bob", RESTORED_ANNOTATION: "review item 7"}


def test_a_binding_survives_its_json_round_trip() -> None:
    """The stored form of a binding (for undo) gives back the same value."""
    binding = prtb(labels={"a": "b"}, annotations={"c": "d"})
    assert binding_from_json(binding_json(binding)) == binding


# --- the plan and outcomes ----------------------------------------------------------------------------------


def _decided(verdict: Verdict, **fields: object) -> ReviewItem:
    decision = Decision(verdict, "why", "U1", "iss|sub", 100)
    return item(state=S.DECIDED, decision=decision, **fields)


def test_plan_entry_is_ready_gone_or_changed() -> None:
    """Unchanged: ready; absent or terminating: gone; different: changed with the reason."""
    decided = _decided(Verdict.REMOVE)
    assert plan_entry(decided, crtb()).status is PlanStatus.READY
    assert plan_entry(decided, None).status is PlanStatus.GONE
    assert plan_entry(decided, crtb(terminating=True)).status is PlanStatus.GONE
    changed = plan_entry(decided, crtb(labels={"x": "y"}))
    assert changed.status is PlanStatus.CHANGED
    assert "labels changed" in changed.why


def test_only_decided_removals_and_conversions_are_applied() -> None:
    """Keeps, pending and applied items are not in what an apply deletes."""
    items = [
        _decided(Verdict.KEEP, id=1),
        _decided(Verdict.REMOVE, id=3),
        _decided(Verdict.CONVERT, id=2),
        item(id=4),
        replace(_decided(Verdict.REMOVE, id=5), state=S.APPLIED),
    ]
    assert [i.id for i in to_apply(items)] == [2, 3]


def test_outcome_tallies_each_way_an_item_ends() -> None:
    """Counts by (state, verdict) become kept, converted, removed, undecided, skipped, undone and to apply."""
    result = outcome(
        {
            (S.PENDING, None): 4,
            (S.DECIDED, Verdict.KEEP): 3,
            (S.DECIDED, Verdict.REMOVE): 2,
            (S.APPLIED, Verdict.CONVERT): 5,
            (S.APPLIED, Verdict.REMOVE): 1,
            (S.SKIPPED, Verdict.REMOVE): 1,
            (S.UNDONE, Verdict.REMOVE): 1,
        }
    )
    assert (result.total, result.undecided, result.kept, result.to_apply) == (17, 4, 3, 2)
    assert (result.converted, result.removed, result.skipped, result.undone) == (5, 1, 1, 1)
    assert result.decided == 13


def test_reviewer_keys_are_canonical() -> None:
    """Groups in any order and repeated give the same stored key, and read back sorted."""
    assert reviewer_key(["sre", "security", "sre"]) == reviewer_key(["security", "sre"])
    assert reviewer_groups_of(reviewer_key(["sre", "security"])) == ("security", "sre")
