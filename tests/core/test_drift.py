"""Reconciliation planning: grants versus the tagged bindings Rancher holds."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.core import drift
from bot.core.model import Grant, RoleBinding, Scope, Target
from bot.core.model import GrantState as S

NOW = 1_800_000_000
LABEL = "accessbot.io/grant"
GOVERNED = {"project-member", "cluster-member"}


def _grant(gid: str, state: S = S.ACTIVE, **changes: object) -> Grant:
    base = Grant(
        id=gid,
        slack_user="U1",
        subject="sub",
        target=Target("c-1", "c-1:p-1"),
        role_id="project-member",
        duration_s=3600,
        rule="dev",
        state=state,
        requested_at=NOW - 7200,
        activated_at=NOW - 1800 if state in (S.ACTIVE, S.REVOKING) else None,
        expires_at=NOW + 1800 if state in (S.ACTIVE, S.REVOKING) else None,
        binding_id=f"c-1:p-1:b-{gid}" if state in (S.ACTIVE, S.REVOKING) else None,
        binding_name=f"b-{gid}",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def _binding(bname: str, tag: str | None = None, role: str = "project-member", **changes: object) -> RoleBinding:
    base = RoleBinding(
        id=f"c-1:p-1:{bname}",
        scope=Scope.PROJECT,
        role_id=role,
        cluster_id="c-1",
        project_id="c-1:p-1",
        user_principal_id="keycloak_user://sub",
        labels={LABEL: tag} if tag else {},
        name=bname,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def _plan(grants: list[Grant], bindings: list[RoleBinding]) -> drift.Plan:
    return drift.plan(grants, bindings, LABEL, GOVERNED, NOW)


def test_matching_grant_and_binding_need_nothing() -> None:
    """An active grant with its tagged binding gives an empty plan."""
    assert _plan([_grant("g-1")], [_binding("b-g-1", "g-1")]).empty


@pytest.mark.parametrize(
    ("grants", "why"),
    [
        ([], "does not know"),
        ([_grant("g-9", S.EXPIRED)], "is expired"),
        ([_grant("g-9", S.REVOKED)], "is revoked"),
        ([_grant("g-9", S.FAILED)], "is failed"),
    ],
)
def test_tagged_binding_without_a_live_grant_is_deleted(grants: list[Grant], why: str) -> None:
    """A binding tagged with an unknown or ended grant is planned for deletion with the reason."""
    binding = _binding("b-g-9", "g-9")
    plan = _plan(grants, [binding])
    assert [o.binding for o in plan.delete] == [binding]
    assert plan.delete[0].grant_id == "g-9"
    assert why in plan.delete[0].why


def test_active_grant_without_binding_is_missing() -> None:
    """An active, unexpired grant whose binding is gone is reported missing."""
    grant = _grant("g-1")
    assert _plan([grant], []).missing == (grant,)


def test_expired_active_grant_is_not_reported_missing() -> None:
    """An active grant already past its expiry is left to the sweep, not recreated."""
    assert _plan([_grant("g-1", expires_at=NOW - 1)], []).missing == ()


def test_just_activated_grant_is_not_reported_missing() -> None:
    """A grant activated within the settle window may have a binding the listing did not see yet."""
    assert _plan([_grant("g-1", activated_at=NOW - 10)], []).missing == ()


def test_activating_grant_with_binding_is_adopted() -> None:
    """An activating grant whose tagged binding exists is finished with that binding."""
    grant = _grant("g-2", S.ACTIVATING)
    binding = _binding("b-g-2", "g-2")
    plan = _plan([grant], [binding])
    assert plan.adopt == (drift.Adoption(grant, binding),)
    assert plan.delete == ()


def test_activating_grant_without_binding_is_unfinished() -> None:
    """An activating grant with no binding is listed for the service to retry or fail."""
    grant = _grant("g-2", S.ACTIVATING)
    plan = _plan([grant], [])
    assert plan.unfinished_activation == (grant,)
    assert plan.adopt == ()


def test_revoking_grant_is_finished_with_its_bindings() -> None:
    """A revoking grant is always listed, with its remaining bindings and none in the delete list."""
    grant = _grant("g-3", S.REVOKING)
    binding = _binding("b-g-3", "g-3")
    plan = _plan([grant, _grant("g-4", S.REVOKING)], [binding])
    assert plan.finish_revoke[0] == drift.PendingRevoke(grant, (binding,))
    assert plan.finish_revoke[1].bindings == ()
    assert plan.delete == ()


def test_untagged_binding_of_a_governed_role_is_reported_only() -> None:
    """Standing access for a governed role is reported, never deleted."""
    binding = _binding("standing", None)
    plan = _plan([], [binding, _binding("other", None, role="view-only")])
    assert plan.untagged == (binding,)
    assert plan.delete == ()


def test_untagged_binding_recorded_by_a_grant_counts_as_its_binding() -> None:
    """A binding that lost its label but whose id a grant recorded is matched, not reported."""
    grant = _grant("g-1")
    plan = _plan([grant], [_binding("b-g-1", None)])
    assert plan.empty


def test_second_binding_for_one_grant_is_deleted() -> None:
    """Two bindings tagged with one active grant: the recorded one is kept, the copy deleted."""
    keep = _binding("b-g-1", "g-1")
    copy = _binding("b-g-1-copy", "g-1")
    plan = _plan([_grant("g-1")], [copy, keep])
    assert [o.binding for o in plan.delete] == [copy]
    assert plan.missing == ()


def test_binding_of_a_pending_request_is_left_alone() -> None:
    """A binding tagged with a requested or approved grant is neither deleted nor adopted (a race in flight)."""
    plan = _plan([_grant("g-5", S.APPROVED)], [_binding("b-g-5", "g-5")])
    assert plan.empty


def test_tag_in_annotations_is_honoured() -> None:
    """Rancher may keep the tag as an annotation; it identifies the grant just as well."""
    binding = _binding("b-g-1", None, annotations={LABEL: "g-1"}, id="other-id")
    plan = _plan([_grant("g-1", binding_id=None, binding_name=None)], [binding])
    assert plan.empty


def test_global_bindings_are_ignored() -> None:
    """Global role bindings never take part in reconciliation."""
    binding = _binding("grb", "g-9", scope=Scope.GLOBAL, cluster_id=None, project_id=None)
    assert _plan([], [binding]).empty
