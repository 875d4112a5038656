"""People in a review: holders, reviewers from the policy, who may decide, and when conversion is possible."""

from __future__ import annotations

from datetime import timedelta

from bot.core.model import Cluster, Identity, Project, RancherUser, RoleBinding, RoleTemplate, Scope
from bot.core.policy import ApprovalRule, Catalog, Policy, ResolvedTarget, Rule
from bot.core.principals import PrincipalMapping
from bot.core.reviewers import (
    PeopleIndex,
    conversion,
    holder_groups,
    holder_of,
    may_decide,
    reviewers_for,
)
from bot.core.reviews import Holder, ReviewItem

H = timedelta(hours=1)
PROD = Cluster("c-prod", "prod-eu")
PAY = Project("c-prod:p-pay", "payments", "c-prod")
T_PAY = ResolvedTarget(PROD, PAY)
T_PROD = ResolvedTarget(PROD)
CATALOG = Catalog.of(
    [
        RoleTemplate("cluster-owner", "Cluster Owner", "cluster"),
        RoleTemplate("project-member", "Project Member", "project"),
        RoleTemplate("project-owner", "Project Owner", "project"),
    ]
)
PROD_APPROVAL = Rule(
    name="prod-approval",
    groups=("engineering",),
    roles=("project-member", "project-owner"),
    max_duration=4 * H,
    default_duration=H,
    projects=("prod-*/*",),
    approval=ApprovalRule(groups=("sre",)),
)
PROD_SELF = Rule(
    name="prod-self",
    groups=("payments-team",),
    roles=("project-member",),
    max_duration=2 * H,
    default_duration=H,
    projects=("prod-*/payments",),
)
GLASS = Rule(
    name="glass",
    groups=("sre",),
    roles=("cluster-owner",),
    max_duration=H,
    default_duration=H,
    clusters=("prod-*",),
    approval=ApprovalRule(groups=("sre",)),
    break_glass=True,
)
POLICY = Policy(rules=(PROD_APPROVAL, PROD_SELF, GLASS))
MAPPING = PrincipalMapping("genericoidc")


def ident(slack: str, subject: str, groups: tuple[str, ...]) -> Identity:
    return Identity(slack, "T1", "https://idp", subject, f"{subject}@example.com", subject, groups, 0, 0)


ALICE = ident("U0ALICE", "alice", ("engineering", "payments-team"))
BOB = ident("U0BOB", "bob", ("sre",))
PEOPLE = PeopleIndex.build([ALICE, BOB], MAPPING)


def test_a_linked_users_binding_names_the_person() -> None:
    """A user binding by Rancher user id finds the linked person through the user's principals."""
    users = {"user-x1": RancherUser("user-x1", "Alice", ("genericoidc_user://alice", "local://user-x1"))}
    binding = RoleBinding("p-pay:prtb-1", Scope.PROJECT, "project-owner", "c-prod", PAY.id, user_id="user-x1")
    holder = holder_of(binding, users, PEOPLE)
    assert holder.person == "https://idp|alice"
    assert holder.slack_user == "U0ALICE"
    assert "local://user-x1" in holder.principals


def test_an_unlinked_users_binding_is_named_by_rancher() -> None:
    """Nobody linked holds the principal: the holder is Rancher's user name and no person."""
    users = {"u-zz": RancherUser("u-zz", "Zed", ("genericoidc_user://zed",))}
    binding = RoleBinding("p-pay:prtb-2", Scope.PROJECT, "project-owner", "c-prod", PAY.id, user_id="u-zz")
    holder = holder_of(binding, users, PEOPLE)
    assert (holder.name, holder.person) == ("Zed", "")


def test_a_group_binding_is_named_by_its_group() -> None:
    """A group principal is shown by the IdP group it stands for."""
    binding = RoleBinding(
        "p-pay:prtb-3", Scope.PROJECT, "project-owner", "c-prod", PAY.id, group_principal_id="genericoidc_group://sre"
    )
    holder = holder_of(binding, {}, PEOPLE)
    assert (holder.kind, holder.name, holder.groups) == ("group", "sre", ("sre",))


def test_reviewers_are_the_approvers_of_the_holders_rule() -> None:
    """An engineer's project-owner on prod is governed by the approval rule: sre reviews it."""
    found = reviewers_for(POLICY, CATALOG, T_PAY, "project-owner", ("engineering",), fallback=("security",))
    assert (found.groups, found.rules, found.source) == (("sre",), ("prod-approval",), "approvers")


def test_a_self_service_rule_falls_back_to_the_reviewer_groups() -> None:
    """The holder's own rule needs no approval, so `review.reviewer_groups` review it."""
    found = reviewers_for(POLICY, CATALOG, T_PAY, "project-member", ("payments-team",), fallback=("security",))
    assert (found.groups, found.source) == (("security",), "reviewer_groups")


def test_an_unknown_holder_is_reviewed_by_every_approving_rule() -> None:
    """Not linked: the approvers of every rule that covers the role there review it."""
    found = reviewers_for(POLICY, CATALOG, T_PAY, "project-member", None, fallback=())
    assert (found.groups, found.rules) == (("sre",), ("prod-approval",))


def test_a_role_no_rule_covers_goes_to_the_admins_without_reviewer_groups() -> None:
    """Break-glass rules do not govern standing access; without reviewer groups only the admins review."""
    found = reviewers_for(POLICY, CATALOG, T_PROD, "cluster-owner", ("sre",), fallback=())
    assert (found.groups, found.source) == ((), "admins")


def _item(holder: Holder, reviewers: tuple[str, ...] = ("sre",)) -> ReviewItem:
    binding = RoleBinding("p-pay:prtb-1", Scope.PROJECT, "project-owner", "c-prod", PAY.id, user_id="u-1")
    return ReviewItem(1, 1, binding, "fp", "prod-eu/payments", "Project Owner", holder, reviewers)


def test_a_reviewer_in_the_groups_may_decide() -> None:
    """bob is in sre, the item's reviewer group."""
    holder = Holder("user", "alice", ("genericoidc_user://alice",), person="https://idp|alice")
    verdict = may_decide(_item(holder), BOB, MAPPING.of(BOB), admin=False, self_attestation=False)
    assert verdict.allowed
    assert not verdict.self_attested


def test_someone_outside_the_groups_may_not_decide() -> None:
    """alice is not in sre: refused, naming the reviewers."""
    holder = Holder("user", "carol", ("genericoidc_user://carol",))
    verdict = may_decide(_item(holder), ALICE, MAPPING.of(ALICE), admin=False, self_attestation=False)
    assert not verdict.allowed
    assert "sre" in verdict.why


def test_the_holder_never_reviews_alone() -> None:
    """bob holds the binding: without self-attestation he may not decide it, with it the decision is marked."""
    holder = Holder("user", "bob", ("genericoidc_user://bob",), person="https://idp|bob")
    refused = may_decide(_item(holder), BOB, MAPPING.of(BOB), admin=False, self_attestation=False)
    allowed = may_decide(_item(holder), BOB, MAPPING.of(BOB), admin=False, self_attestation=True)
    assert not refused.allowed
    assert allowed.allowed
    assert allowed.self_attested


def test_a_member_of_the_reviewed_group_holds_it() -> None:
    """A group binding of sre is bob's own access too: he cannot review it alone."""
    holder = Holder("group", "sre", ("genericoidc_group://sre",), groups=("sre",))
    assert not may_decide(_item(holder), BOB, MAPPING.of(BOB), admin=False, self_attestation=False).allowed


def test_admins_decide_what_nobody_else_reviews() -> None:
    """An item without reviewer groups is decided by an admin."""
    holder = Holder("user", "carol", ("genericoidc_user://carol",))
    assert may_decide(_item(holder, ()), ALICE, MAPPING.of(ALICE), admin=True, self_attestation=False).allowed


def test_conversion_needs_a_rule_the_holder_could_use() -> None:
    """An engineer may request project-owner on prod (with approval); a stranger's group may not."""
    assert conversion(POLICY, CATALOG, T_PAY, "project-owner", ("engineering",)).allowed
    refused = conversion(POLICY, CATALOG, T_PAY, "project-owner", ("marketing",))
    assert not refused.allowed
    assert "not in group engineering" in refused.why


def test_conversion_of_an_unlinked_holder_is_refused() -> None:
    """Nobody knows the groups of a holder who never linked: no rule is known to let them request it."""
    assert not conversion(POLICY, CATALOG, T_PAY, "project-owner", None).allowed


def test_break_glass_rules_do_not_make_conversion_possible() -> None:
    """cluster-owner only through break-glass: converting sre's standing cluster-owner is refused."""
    assert not conversion(POLICY, CATALOG, T_PROD, "cluster-owner", ("sre",)).allowed


def test_holder_groups_of_a_group_are_its_names() -> None:
    """A group holder is checked as its own group; an unlinked user gives None."""
    group = Holder("group", "sre", ("genericoidc_group://sre",), groups=("sre",))
    assert holder_groups(group, None) == ("sre",)
    assert holder_groups(Holder("user", "x"), None) is None
    assert holder_groups(Holder("user", "alice"), ALICE) == ALICE.policy_groups
