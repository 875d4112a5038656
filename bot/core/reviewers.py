"""People in an access review: who holds a standing binding, who reviews it, who may decide it, and whether the
holder could request it as time-boxed access instead.

- **Reviewers** are the approvers of the policy rule that governs that role on that target: the rule the holder
  would request it under (for a group binding, the group's members), else every rule covering it that needs an
  approval. A self-service rule has no approvers, and a role no rule covers has no rule: then `review.reviewer_groups`
  review it, and without those only the admins do.
- **Never the holder alone**: a reviewer who holds the binding (its user, or a member of its group) may decide it
  only when `review.self_attestation` is on, and the decision is recorded as self-attested.
- **Convert** is offered only when a rule would let the holder (the group's members, for a group) request the role on
  the target; otherwise the reason names the closest rule, as a refused request would.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from bot.core.model import Identity, PrincipalSet, RancherUser, RoleBinding, person_key
from bot.core.policy import AccessRequest, Catalog, Policy, ResolvedTarget, covering_rules, evaluate
from bot.core.principals import PrincipalMapping, principal_display
from bot.core.reviews import Holder, ReviewItem

REVIEW_REASON = "access review"
"""The reason a policy check made for a review carries (rules requiring a reason accept it)."""


@dataclass(frozen=True)
class Reviewers:
    """Who reviews one binding: groups (empty: the admins) and the rules that named them; `source` says which case."""

    groups: tuple[str, ...]
    rules: tuple[str, ...]
    source: str  # "approvers" | "reviewer_groups" | "admins"


@dataclass
class PeopleIndex:
    """Linked identities by the Rancher principals they map to, and the names of group principals."""

    by_principal: dict[str, Identity] = field(default_factory=dict)
    by_user_id: dict[str, Identity] = field(default_factory=dict)
    group_names: dict[str, tuple[str, ...]] = field(default_factory=dict)  # group principal -> policy names

    @classmethod
    def build(cls, identities: Iterable[Identity], mapping: PrincipalMapping) -> PeopleIndex:
        """Index every linked identity once (oldest link first wins a shared principal)."""
        index = cls()
        for ident in identities:
            ps = mapping.of(ident)
            index.by_principal.setdefault(ps.user_principal_id, ident)
            if ps.user_id:
                index.by_user_id.setdefault(ps.user_id, ident)
            names = ident.names
            for pid, value in ps.group_names.items():
                known = index.group_names.get(pid, ())
                found = tuple(dict.fromkeys((*known, value, *([names[value]] if value in names else []))))
                index.group_names[pid] = found
        return index

    def identity_of(self, principals: Iterable[str], user_id: str = "") -> Identity | None:
        """The linked identity holding any of the user principals (or mapping to `user_id`), if any."""
        for principal in principals:
            found = self.by_principal.get(principal)
            if found is not None:
                return found
        return self.by_user_id.get(user_id) if user_id else None


def holder_of(binding: RoleBinding, users: Mapping[str, RancherUser], people: PeopleIndex) -> Holder:
    """Who a binding gives access to: its group, or its user with every principal Rancher knows them by."""
    if binding.group_principal_id:
        pid = binding.group_principal_id
        names = people.group_names.get(pid, ())
        name = names[-1] if len(names) > 1 else (names[0] if names else principal_display(pid))
        return Holder(kind="group", name=name, principals=(pid,), groups=names or (principal_display(pid),))
    user_id = binding.user_id or ""
    user = users.get(user_id) if user_id else None
    principals = [p for p in (binding.user_principal_id,) if p]
    if user is not None:
        principals += list(user.principal_ids)
    if user_id:
        principals.append(f"local://{user_id}")
    principals = list(dict.fromkeys(principals))
    ident = people.identity_of(principals, user_id)
    if ident is not None:
        name = ident.email or ident.name or ident.slack_user
        return Holder(
            kind="user",
            name=name,
            principals=tuple(principals),
            user_id=user_id,
            person=person_key(ident.issuer, ident.subject),
            slack_user=ident.slack_user,
        )
    name = (user.name if user is not None else "") or user_id or principal_display(principals[0] if principals else "")
    return Holder(kind="user", name=name, principals=tuple(principals), user_id=user_id)


def reviewers_for(
    policy: Policy,
    catalog: Catalog,
    target: ResolvedTarget,
    role_id: str,
    holder_groups: Sequence[str] | None,
    *,
    fallback: Sequence[str],
) -> Reviewers:
    """The reviewers of `role_id` on `target` held by someone in `holder_groups` (None: not known); see the module."""
    candidates = covering_rules(policy, target, role_id)
    names = tuple(r.name for r in candidates)
    if holder_groups:
        decision = evaluate(policy, AccessRequest(tuple(holder_groups), target, role_id, None, REVIEW_REASON), catalog)
        rule = decision.rule
        if decision.allowed and rule is not None:
            if rule.approval.required:
                return Reviewers(tuple(rule.approval.groups), (rule.name,), "approvers")
            return _fallback(fallback, (rule.name,))
    asking = [r for r in candidates if r.approval.required]
    if asking:
        groups = tuple(dict.fromkeys(g for r in asking for g in r.approval.groups))
        return Reviewers(groups, tuple(r.name for r in asking), "approvers")
    return _fallback(fallback, names)


def _fallback(groups: Sequence[str], rules: tuple[str, ...]) -> Reviewers:
    if groups:
        return Reviewers(tuple(groups), rules, "reviewer_groups")
    return Reviewers((), rules, "admins")


def holder_groups(holder: Holder, ident: Identity | None) -> tuple[str, ...] | None:
    """The groups a policy check for the holder uses: the group's names, the linked user's groups, or None."""
    if holder.is_group:
        return holder.groups or (holder.name,)
    return ident.policy_groups if ident is not None else None


def holds(holder: Holder, ident: Identity, principals: PrincipalSet) -> bool:
    """True when the identity is the binding's holder: its user, or a member of its group."""
    if holder.is_group:
        return bool(set(holder.principals) & set(principals.group_principal_ids))
    if holder.person and holder.person == person_key(ident.issuer, ident.subject):
        return True
    mine = {principals.user_principal_id, *principals.principal_ids}
    if principals.user_id:
        mine.add(f"local://{principals.user_id}")
    return bool(set(holder.principals) & mine)


@dataclass(frozen=True)
class Eligibility:
    """Whether a reviewer may decide an item, why not, and whether it would be self-attested."""

    allowed: bool
    why: str = ""
    self_attested: bool = False


def may_decide(
    item: ReviewItem,
    ident: Identity,
    principals: PrincipalSet,
    *,
    admin: bool,
    self_attestation: bool,
) -> Eligibility:
    """Whether this linked person may decide this item: in its reviewer groups (or an admin), and not its holder
    unless self-attestation is configured (then recorded as such)."""
    in_groups = bool(set(item.reviewer_groups) & set(ident.policy_groups))
    if not (in_groups or admin):
        who = ", ".join(item.reviewer_groups) if item.reviewer_groups else "the admins"
        return Eligibility(False, f"you do not review this binding (its reviewers: {who})")
    if holds(item.holder, ident, principals):
        if not self_attestation:
            return Eligibility(False, "this access is yours, so someone else must review it (self-attestation is off)")
        return Eligibility(True, "self-attested", self_attested=True)
    return Eligibility(True)


@dataclass(frozen=True)
class Conversion:
    """Whether a binding may become time-boxed access: the rule the holder would request it under, or why not."""

    allowed: bool
    why: str
    rule: str = ""


def conversion(
    policy: Policy,
    catalog: Catalog,
    target: ResolvedTarget,
    role_id: str,
    groups: Sequence[str] | None,
) -> Conversion:
    """Whether someone in `groups` (None: the holder is not linked) could request `role_id` on `target`."""
    if groups is None:
        return Conversion(
            False,
            "the holder has not linked their Slack account to the bot, so no rule is known to let them request it",
        )
    decision = evaluate(policy, AccessRequest(tuple(groups), target, role_id, None, REVIEW_REASON), catalog)
    if decision.allowed and decision.rule is not None:
        return Conversion(True, decision.why, decision.rule.name)
    return Conversion(False, decision.why)
