"""Policy evaluation: who may request which role where, for how long, with whose approval, and why not."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from bot.core.model import Cluster, Project, RoleTemplate, Scope
from bot.core.policy import (
    AccessRequest,
    ApprovalRule,
    Catalog,
    Policy,
    ResolvedTarget,
    Rule,
    can_approve,
    evaluate,
    requestable,
    rules_summary,
    validate_policy,
)

H = timedelta(hours=1)

PROD = Cluster("c-prod", "prod", {"env": "prod"})
DEV1 = Cluster("c-dev1", "dev-1", {"env": "dev"})
DEV2 = Cluster("c-dev2", "dev-2", {"env": "dev", "tier": "gold"})
PAYMENTS = Project("c-prod:p-pay", "payments", "c-prod")
WEB = Project("c-dev1:p-web", "web", "c-dev1")

T_PROD = ResolvedTarget(PROD)
T_DEV1 = ResolvedTarget(DEV1)
T_DEV2 = ResolvedTarget(DEV2)
T_PAYMENTS = ResolvedTarget(PROD, PAYMENTS)
T_WEB = ResolvedTarget(DEV1, WEB)
TARGETS = [T_PROD, T_DEV1, T_DEV2, T_PAYMENTS, T_WEB]

CATALOG = Catalog.of(
    [
        RoleTemplate("cluster-member", "Cluster Member", "cluster"),
        RoleTemplate("cluster-owner", "Cluster Owner", "cluster"),
        RoleTemplate("project-member", "Project Member", "project"),
        RoleTemplate("project-owner", "Project Owner", "project"),
        RoleTemplate("user-base", "User Base", ""),
    ]
)

DEV = Rule(
    name="dev",
    groups=("dev",),
    roles=("cluster-member", "project-member"),
    max_duration=4 * H,
    default_duration=H,
    clusters=("dev-*",),
    projects=("dev-*/*",),
)
PROD_RULE = Rule(
    name="prod",
    groups=("sre", "dev"),
    roles=("project-member", "project-owner"),
    max_duration=8 * H,
    default_duration=2 * H,
    projects=("prod/*",),
    approval=ApprovalRule(("sre-leads",), 1),
    require_reason=True,
    max_extensions=1,
)
PROD_SRE = Rule(
    name="prod-sre",
    groups=("sre",),
    roles=("project-member",),
    max_duration=2 * H,
    default_duration=H,
    projects=("prod/payments",),
)
BREAK_GLASS = Rule(
    name="bg",
    groups=("sre",),
    roles=("cluster-owner",),
    max_duration=H,
    default_duration=H,
    clusters=("prod",),
    approval=ApprovalRule(("sre-leads",), 1),
    require_reason=True,
    break_glass=True,
)
LABELLED = Rule(
    name="labelled",
    groups=("qa",),
    roles=("cluster-member", "project-member"),
    max_duration=2 * H,
    default_duration=H,
    cluster_labels=(("env", "dev"),),
)
TWO = Rule(
    name="two",
    groups=("sec",),
    roles=("cluster-member",),
    max_duration=2 * H,
    default_duration=H,
    clusters=("c-prod",),
    approval=ApprovalRule(("sre-leads", "security"), 2),
)
POLICY = Policy(rules=(DEV, PROD_RULE, PROD_SRE, BREAK_GLASS, LABELLED, TWO))


def _req(
    groups: tuple[str, ...],
    target: ResolvedTarget,
    role: str,
    duration: timedelta | None = None,
    reason: str = "",
    *,
    break_glass: bool = False,
) -> AccessRequest:
    return AccessRequest(groups, target, role, duration, reason, break_glass)


ALLOWED = [
    pytest.param(_req(("dev",), T_DEV1, "cluster-member"), "dev", False, H, id="cluster-role-on-dev-cluster"),
    pytest.param(_req(("dev",), T_WEB, "project-member", 2 * H), "dev", False, 2 * H, id="project-role-on-dev-project"),
    pytest.param(_req(("dev",), T_PAYMENTS, "project-member", reason="fix"), "prod", True, 2 * H, id="prod-approval"),
    pytest.param(_req(("sre",), T_PAYMENTS, "project-member"), "prod-sre", False, H, id="no-approval-rule-preferred"),
    pytest.param(
        _req(("sre",), T_PAYMENTS, "project-member", 4 * H, "x"), "prod", True, 4 * H, id="longer-needs-approval"
    ),
    pytest.param(_req(("qa",), T_DEV2, "cluster-member"), "labelled", False, H, id="labels-select-clusters"),
    pytest.param(_req(("qa",), T_WEB, "project-member"), "labelled", False, H, id="labels-select-projects"),
    pytest.param(_req(("sec",), T_PROD, "cluster-member"), "two", True, H, id="cluster-selected-by-id"),
]


@pytest.mark.parametrize(("request_", "rule", "approval", "duration"), ALLOWED)
def test_allowed_requests_pick_the_expected_rule(
    request_: AccessRequest, rule: str, approval: bool, duration: timedelta
) -> None:
    """Each allowed request names its rule, whether approval is needed, and the effective duration."""
    decision = evaluate(POLICY, request_, CATALOG)
    assert decision.allowed, decision.why
    assert decision.rule is not None
    assert decision.rule.name == rule
    assert decision.needs_approval is approval
    assert decision.duration == duration
    assert rule in decision.why


DENIED = [
    pytest.param(
        _req(("dev",), T_DEV1, "cluster-owner"),
        "role cluster-owner not allowed by rule dev (allowed: cluster-member, project-member)",
        id="role-not-allowed",
    ),
    pytest.param(
        _req(("dev",), T_WEB, "project-member", 12 * H), "12h is over the 4h maximum of rule dev", id="too-long"
    ),
    pytest.param(_req(("ops",), T_DEV1, "cluster-member"), "not in group dev", id="not-in-group"),
    pytest.param(_req(("dev",), T_PAYMENTS, "project-member"), "reason required by rule prod", id="reason-required"),
    pytest.param(_req(("dev",), T_DEV1, "project-member"), "project role", id="project-role-on-cluster"),
    pytest.param(_req(("dev",), T_WEB, "cluster-member"), "cluster role", id="cluster-role-on-project"),
    pytest.param(_req(("dev",), T_DEV1, "cluster-admin"), "not a known Rancher role template", id="unknown-role"),
    pytest.param(_req(("dev",), T_DEV1, "user-base"), "not a cluster or project role", id="global-role"),
    pytest.param(_req(("qa",), T_PROD, "cluster-member"), "lacks the labels env=dev", id="labels-mismatch"),
    pytest.param(
        _req(("dev",), T_PROD, "cluster-member"), "prod is not covered by rule dev", id="cluster-not-selected"
    ),
    pytest.param(
        _req(("sre",), T_PROD, "cluster-owner", reason="fire"), "for break-glass requests only", id="bg-rule-needs-flag"
    ),
    pytest.param(
        _req(("dev",), T_DEV1, "cluster-member", reason="x", break_glass=True),
        "not a break-glass rule",
        id="bg-flag-needs-bg-rule",
    ),
    pytest.param(
        _req(("dev",), T_DEV1, "cluster-member", timedelta(seconds=30)), "30s is under the 1m minimum", id="too-short"
    ),
]


@pytest.mark.parametrize(("request_", "why"), DENIED)
def test_denied_requests_explain_the_closest_rule(request_: AccessRequest, why: str) -> None:
    """Each denial carries a human explanation naming what did not match."""
    decision = evaluate(POLICY, request_, CATALOG)
    assert not decision.allowed
    assert decision.rule is None
    assert why in decision.why


def test_denial_names_the_closest_rule() -> None:
    """The rule that matched furthest is reported as closest, with its maximum."""
    decision = evaluate(POLICY, _req(("dev",), T_WEB, "project-member", 12 * H), CATALOG)
    assert decision.closest is DEV
    assert decision.max_duration == 4 * H


def test_break_glass_request_is_self_approved() -> None:
    """A break-glass request under a break-glass rule needs no approval and is flagged."""
    decision = evaluate(POLICY, _req(("sre",), T_PROD, "cluster-owner", reason="outage", break_glass=True), CATALOG)
    assert decision.allowed
    assert decision.break_glass
    assert not decision.needs_approval
    assert decision.approver_groups == ("sre-leads",)


def test_two_approver_rule_reports_the_count() -> None:
    """A rule with count 2 says two approvals are required, from its groups."""
    decision = evaluate(POLICY, _req(("sec",), T_PROD, "cluster-member"), CATALOG)
    assert decision.approvals_required == 2
    assert decision.approver_groups == ("sre-leads", "security")


def test_no_rules_denies_with_a_clear_reason() -> None:
    """An empty policy denies everything and says so."""
    decision = evaluate(Policy(), _req(("dev",), T_DEV1, "cluster-member"), CATALOG)
    assert not decision.allowed
    assert decision.why == "no policy rules are configured"


def test_among_no_approval_rules_the_longest_maximum_wins() -> None:
    """Two matching no-approval rules: the one with the longer max_duration is chosen, regardless of order."""
    short = replace(DEV, name="short", max_duration=2 * H)
    long = replace(DEV, name="long", max_duration=6 * H)
    for rules in ((short, long), (long, short)):
        decision = evaluate(Policy(rules=rules), _req(("dev",), T_DEV1, "cluster-member"), CATALOG)
        assert decision.rule is long


def test_equal_rules_resolve_in_config_order() -> None:
    """Ties between equally permissive rules go to the first in the config."""
    first, second = replace(DEV, name="first"), replace(DEV, name="second")
    decision = evaluate(Policy(rules=(first, second)), _req(("dev",), T_DEV1, "cluster-member"), CATALOG)
    assert decision.rule is first


SELECTORS = [
    (Rule("r", ("g",), ("cluster-member",), H, H, clusters=("dev-*",)), T_DEV1, "cluster-member", True),
    (Rule("r", ("g",), ("project-member",), H, H, clusters=("dev-*",)), T_WEB, "project-member", False),
    (Rule("r", ("g",), ("project-member",), H, H, projects=("prod/*",)), T_PAYMENTS, "project-member", True),
    (Rule("r", ("g",), ("cluster-member",), H, H, projects=("prod/*",)), T_PROD, "cluster-member", False),
    (Rule("r", ("g",), ("project-member",), H, H, projects=("c-prod/payments",)), T_PAYMENTS, "project-member", True),
    (Rule("r", ("g",), ("project-member",), H, H, projects=("prod/p-pay",)), T_PAYMENTS, "project-member", True),
    (Rule("r", ("g",), ("project-member",), H, H, projects=("prod/c-prod:p-pay",)), T_PAYMENTS, "project-member", True),
    (Rule("r", ("g",), ("project-member",), H, H, projects=("dev-*/*",)), T_PAYMENTS, "project-member", False),
    (Rule("r", ("g",), ("project-member",), H, H, projects=("*/web",)), T_WEB, "project-member", True),
    (
        Rule("r", ("g",), ("cluster-member",), H, H, clusters=("*",), cluster_labels=(("tier", "gold"),)),
        T_DEV2,
        "cluster-member",
        True,
    ),
    (
        Rule("r", ("g",), ("cluster-member",), H, H, clusters=("*",), cluster_labels=(("tier", "gold"),)),
        T_DEV1,
        "cluster-member",
        False,
    ),
    (
        Rule("r", ("g",), ("cluster-member",), H, H, cluster_labels=(("env", "d*"),)),
        T_DEV1,
        "cluster-member",
        True,
    ),
]


@pytest.mark.parametrize(("rule", "target", "role", "allowed"), SELECTORS)
def test_selectors_match_names_ids_and_labels(rule: Rule, target: ResolvedTarget, role: str, allowed: bool) -> None:
    """Cluster selectors cover clusters only, project selectors projects only, by name or id; labels narrow."""
    decision = evaluate(Policy(rules=(rule,)), _req(("g",), target, role), CATALOG)
    assert decision.allowed is allowed, decision.why


def test_requestable_lists_each_role_target_once_under_its_best_rule() -> None:
    """An SRE sees prod/payments project-member via the no-approval rule, and roles only where they fit."""
    options = requestable(POLICY, ("sre",), CATALOG, TARGETS)
    seen = {(o.target.display, o.role_id, o.break_glass): o for o in options}
    assert seen[("prod/payments", "project-member", False)].rule is PROD_SRE
    assert not seen[("prod/payments", "project-member", False)].needs_approval
    assert seen[("prod/payments", "project-owner", False)].needs_approval
    assert seen[("prod", "cluster-owner", True)].break_glass
    assert all(o.target.scope is Scope.PROJECT for o in options if o.role_id.startswith("project-"))
    assert not any(o.target.cluster.name.startswith("dev") for o in options)
    assert len(seen) == len(options)


def test_requestable_is_empty_for_a_caller_in_no_group() -> None:
    """A caller outside every rule's groups may request nothing."""
    assert requestable(POLICY, ("nobody",), CATALOG, TARGETS) == []


def test_requestable_shows_role_names_from_the_catalog() -> None:
    """Options carry the role template's display name for the modal."""
    options = requestable(POLICY, ("qa",), CATALOG, TARGETS)
    assert {(o.target.display, o.role_name) for o in options} == {
        ("dev-1", "Cluster Member"),
        ("dev-2", "Cluster Member"),
        ("dev-1/web", "Project Member"),
    }


APPROVALS = [
    (PROD_RULE, ("sre-leads",), "U2", "U1", True, "approver via group sre-leads"),
    (PROD_RULE, ("dev",), "U2", "U1", False, "not in approver group sre-leads of rule prod"),
    (PROD_RULE, ("sre-leads",), "U1", "U1", False, "cannot approve your own request"),
    (replace(PROD_RULE, self_approval=True), ("sre-leads",), "U1", "U1", True, "approver via group"),
    (DEV, ("sre-leads",), "U2", "U1", False, "needs no approval"),
    (TWO, ("security",), "U3", "U1", True, "approver via group security"),
]


@pytest.mark.parametrize(("rule", "groups", "approver", "requester", "ok", "why"), APPROVALS)
def test_can_approve_checks_group_and_self_approval(
    rule: Rule, groups: tuple[str, ...], approver: str, requester: str, ok: bool, why: str
) -> None:
    """An approver must be in an approver group and not the requester unless the rule allows it."""
    allowed, reason = can_approve(rule, groups, approver, requester)
    assert allowed is ok
    assert why in reason


def test_can_approve_refuses_a_second_vote() -> None:
    """An approver who already decided cannot count twice."""
    allowed, reason = can_approve(TWO, ("security",), "U3", "U1", already=("U3",))
    assert not allowed
    assert "already" in reason


def test_rules_summary_shows_only_the_callers_rules() -> None:
    """A dev sees the dev and prod rules, with the group that lets them in and role names."""
    summary = rules_summary(POLICY, ("dev",), CATALOG)
    assert [s.name for s in summary] == ["dev", "prod"]
    assert summary[1].via_groups == ("dev",)
    assert summary[1].approvals_required == 1
    assert ("project-member", "Project Member") in summary[1].roles


def test_rules_summary_all_rules_marks_membership() -> None:
    """With all_rules every rule is listed and `member` tells which apply to the caller."""
    summary = rules_summary(POLICY, ("qa",), all_rules=True)
    assert len(summary) == len(POLICY.rules)
    assert [s.name for s in summary if s.member] == ["labelled"]


def test_valid_policy_has_no_warnings() -> None:
    """The example policy fits the catalog and clusters."""
    assert validate_policy(POLICY, CATALOG, [PROD, DEV1, DEV2]) == []


@pytest.mark.parametrize(
    ("rule", "warning"),
    [
        (replace(DEV, roles=("project-membr",)), "rule dev: role template project-membr is unknown to Rancher"),
        (replace(DEV, roles=("project-membr",)), "did you mean project-member"),
        (replace(DEV, projects=()), "rule dev: project-member is a project role but the rule selects only clusters"),
        (replace(PROD_RULE, roles=("cluster-member",)), "cluster-member is a cluster role but the rule selects only"),
        (replace(DEV, roles=("user-base",)), "user-base is not a cluster or project role"),
        (replace(DEV, clusters=("stage-*",)), "rule dev: cluster selector stage-* matches no cluster"),
        (replace(PROD_RULE, projects=("staging/*",)), "rule prod: project selector staging/* matches no cluster"),
        (replace(LABELLED, cluster_labels=(("env", "qa"),)), "rule labelled: no cluster has the labels env=qa"),
    ],
)
def test_validate_policy_warns_by_name(rule: Rule, warning: str) -> None:
    """Each problem is a warning naming the rule and the offending value."""
    warnings = validate_policy(Policy(rules=(rule,)), CATALOG, [PROD, DEV1, DEV2])
    assert any(warning in w for w in warnings), warnings


def test_validate_policy_skips_checks_without_rancher_data() -> None:
    """With no catalog and no clusters (Rancher unreachable) nothing is flagged."""
    assert validate_policy(Policy(rules=(replace(DEV, roles=("nope",)),)), Catalog(), []) == []
