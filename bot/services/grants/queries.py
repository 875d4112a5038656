"""Reading grants and access without changing anything: lists, who holds what, the rules, policy tests."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

from bot.core.effective_access import GRB_OWNER_LABEL, Source, SourceKind
from bot.core.errors import NotAllowed, UpstreamError
from bot.core.grant_lifecycle import BOUND, OPEN
from bot.core.model import Grant, GrantState, Identity, RoleBinding, Scope, Target, person_key
from bot.core.policy import (
    AccessRequest,
    Catalog,
    RuleSummary,
    can_approve,
    evaluate,
    rules_summary,
    validate_policy,
)
from bot.core.ports import Clock, RancherApi
from bot.core.storage import GrantStore
from bot.services.grants.directory import Directory
from bot.services.grants.outcomes import PolicyTest

MAX_NAMED_HOLDERS = 50
"""Rancher users looked up by name for one `who` answer (the rest are shown by id)."""


@dataclass(frozen=True)
class Holder:
    """One subject holding a role on a target, and why."""

    subject: str
    kind: str  # "user" | "group"
    role_id: str
    role_name: str
    source_text: str
    binding_id: str
    user_id: str | None = None
    principal_id: str | None = None
    slack_user: str = ""
    grant_id: str = ""


@dataclass(frozen=True)
class HoldersReport:
    """Who holds roles on one cluster or project."""

    target: Target
    cluster_name: str
    project_name: str
    holders: tuple[Holder, ...]

    @property
    def where(self) -> str:
        """`dev-eu` or `dev-eu/payments`."""
        return f"{self.cluster_name}/{self.project_name}" if self.target.project_id else self.cluster_name


class GrantQueries:
    """Answers questions about grants, holders and the policy."""

    def __init__(
        self, *, directory: Directory, grants: GrantStore, rancher: RancherApi, clock: Clock, grant_label: str
    ) -> None:
        self._dir = directory
        self._grants = grants
        self._rancher = rancher
        self._clock = clock
        self._label = grant_label

    def list_grants(self, who: Identity | str, all: bool = False) -> list[Grant]:
        """The caller's grants (open ones first), or everyone's open grants for approvers and admins."""
        slack_user = who.slack_user if isinstance(who, Identity) else who
        if all:
            if not self._dir.sees_everyone(slack_user):
                raise NotAllowed("only approvers and admins can list everyone's grants")
            return self._grants.find(states=OPEN, limit=200)
        mine = self._grants.find(slack_user=slack_user, limit=50)
        open_ = [g for g in mine if g.state in OPEN]
        return open_ + [g for g in mine if g.state not in OPEN][:10]

    def awaiting(self, who: Identity | str, limit: int = 500) -> list[Grant]:
        """Undecided requests this person may approve now (App Home's "Awaiting your approval"), oldest first."""
        ident = self._dir.maybe_identity(who.slack_user if isinstance(who, Identity) else who)
        if ident is None:
            return []
        out = []
        for grant in self._grants.find(states=(GrantState.REQUESTED,), limit=limit):
            rule = self._dir.rule(grant.rule)
            if rule is None:
                continue
            me, requester = person_key(ident.issuer, ident.subject), person_key(ident.issuer, grant.subject)
            if ident.slack_user == grant.slack_user:
                me = requester
            already = [a.person for a in grant.approvals]  # by person, as approvals.decide counts them
            if can_approve(rule, ident.policy_groups, me, requester, already=already)[0]:
                out.append(grant)
        return sorted(out, key=lambda g: g.requested_at)

    async def who(self, caller: Identity | str, target_text: str) -> HoldersReport:
        """Who holds which role on a cluster or project, and why (approvers and admins only)."""
        slack_user = caller.slack_user if isinstance(caller, Identity) else caller
        if not self._dir.sees_everyone(slack_user):
            raise NotAllowed("only approvers and admins can see who holds access")
        resolved = await self._dir.resolve_target(target_text)
        target = resolved.target
        catalog, bindings = await asyncio.gather(
            self._dir.catalog(), self._rancher.list_target_bindings(target.cluster_id, target.project_id)
        )
        bindings = [b for b in bindings if not b.terminating]
        user_ids = list(dict.fromkeys(b.user_id for b in bindings if b.user_id))[:MAX_NAMED_HOLDERS]
        users = [u for u in await asyncio.gather(*(self._rancher.get_user(u) for u in user_ids)) if u is not None]
        user_names = {u.id: u.name for u in users}
        # linked people by principal: a Rancher user id need not be the derived one (the bootstrap admin, API users)
        by_principal = {self._dir.principals(i).user_principal_id: i.slack_user for i in self._dir.linked()}
        slack_of = {u.id: by_principal[p] for u in users for p in u.principal_ids if p in by_principal}
        slack_of.update(by_principal)
        live = {g.id: g for g in self._grants.find(states=BOUND, target=target)}
        now = self._clock.now()
        holders = [
            _holder(b, catalog=catalog, user_names=user_names, slack_of=slack_of, live=live, label=self._label, now=now)
            for b in bindings
            if b.target == target or (b.scope is Scope.CLUSTER and target.project_id is None)
        ]
        holders.sort(key=lambda h: (h.role_name.lower(), h.kind, h.subject.lower(), h.binding_id))
        project_name = resolved.project.name if resolved.project is not None else ""
        return HoldersReport(target, resolved.cluster.name, project_name, tuple(holders))

    async def rules_for(self, who: Identity | str) -> list[RuleSummary]:
        """The rules the caller may use, with role names when Rancher answers."""
        ident = self._dir.identity(who)
        try:
            catalog = await self._dir.catalog()
        except UpstreamError:
            catalog = Catalog()
        return rules_summary(self._dir.policy, ident.policy_groups, catalog)

    async def validate(self) -> list[str]:
        """Warnings about rules that cannot work against this Rancher (unknown roles, selectors matching nothing)."""
        return validate_policy(self._dir.policy, await self._dir.catalog(), list(await self._rancher.list_clusters()))

    async def test_policy(
        self,
        groups: Sequence[str],
        target_text: str,
        role: str,
        duration: timedelta | None,
        *,
        break_glass: bool = False,
    ) -> PolicyTest:
        """Explain the decision for a user in `groups` (the `accessbot policy test` command)."""
        resolved = await self._dir.resolve_target(target_text)
        catalog = await self._dir.catalog()
        request = AccessRequest(tuple(groups), resolved, role, duration, "policy test", break_glass)
        return PolicyTest(resolved.display, role, tuple(groups), evaluate(self._dir.policy, request, catalog))


def _holder(
    binding: RoleBinding,
    *,
    catalog: Catalog,
    user_names: Mapping[str, str],
    slack_of: Mapping[str, str],
    live: Mapping[str, Grant],
    label: str,
    now: int,
) -> Holder:
    tag = binding.labels.get(label, "")
    grant = live.get(tag)
    if grant is not None:
        source = Source(SourceKind.GRANT, grant_id=grant.id, expires_at=grant.expires_at)
    elif tag:
        source = Source(SourceKind.GRANT, grant_id=tag)
    elif GRB_OWNER_LABEL in binding.labels:
        source = Source(SourceKind.GLOBAL_ROLE, global_role=binding.labels[GRB_OWNER_LABEL])
    else:
        source = Source(SourceKind.DIRECT)
    if binding.group_principal_id:
        subject, kind = binding.group_principal_id.split("://", 1)[-1], "group"
    else:
        principal = binding.user_principal_id or ""
        subject = user_names.get(binding.user_id or "") or binding.annotations.get(
            "auth.cattle.io/principal-display-name", ""
        )
        subject, kind = subject or binding.user_id or principal.split("://", 1)[-1], "user"
    slack_user = grant.slack_user if grant is not None else slack_of.get(binding.user_id or "", "")
    if not slack_user and binding.user_principal_id:
        slack_user = slack_of.get(binding.user_principal_id, "")
    return Holder(
        subject=subject,
        kind=kind,
        role_id=binding.role_id,
        role_name=catalog.name(binding.role_id),
        source_text=source.text(now),
        binding_id=binding.id,
        user_id=binding.user_id,
        principal_id=binding.group_principal_id or binding.user_principal_id,
        slack_user="" if kind == "group" else slack_user,
        grant_id=grant.id if grant is not None else "",
    )
