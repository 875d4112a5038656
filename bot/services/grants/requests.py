"""Asking for access: decide by policy, refuse duplicates and what standing access already covers, record intent."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from bot.core import audit_actions as A
from bot.core.errors import UserError
from bot.core.grant_lifecycle import OPEN
from bot.core.model import Grant, GrantState, Identity, Target
from bot.core.notices import GrantFacts
from bot.core.policy import AccessRequest, Option, ResolvedTarget, Rule, evaluate, requestable
from bot.core.ports import Clock, RancherApi
from bot.core.storage import GrantStore
from bot.services.audit import AuditLog
from bot.services.grants.bindings import Bindings, binding_name
from bot.services.grants.directory import Directory
from bot.services.grants.ledger import AuditNote, Ledger
from bot.services.grants.lifecycle import Lifecycle
from bot.services.grants.outcomes import RequestOutcome
from bot.services.grants.standing import StandingAccess

S = GrantState
MAX_TICKET = 64


class Requests:
    """Turns a request into a grant that is active at once or waits for its approvers."""

    def __init__(
        self,
        *,
        directory: Directory,
        ledger: Ledger,
        bindings: Bindings,
        lifecycle: Lifecycle,
        grants: GrantStore,
        rancher: RancherApi,
        standing: StandingAccess,
        audit: AuditLog,
        clock: Clock,
        approver_usergroups: Mapping[str, str] | None = None,
    ) -> None:
        self._standing = standing
        self._usergroups = dict(approver_usergroups or {})
        self._dir = directory
        self._ledger = ledger
        self._bindings = bindings
        self._lifecycle = lifecycle
        self._grants = grants
        self._rancher = rancher
        self._audit = audit
        self._clock = clock

    async def request(  # noqa: PLR0917 - the fields of a request, in the order people say them
        self,
        who: Identity | str,
        target_text: str,
        role: str,
        duration: timedelta | None = None,
        reason: str = "",
        ticket: str = "",
        break_glass: bool = False,
    ) -> RequestOutcome:
        """Ask for `role` on a target: decide by policy, then activate now or ask the approvers."""
        ident = self._dir.identity(who)
        reason, ticket, role = reason.strip(), ticket.strip(), role.strip().lower()
        if len(ticket) > MAX_TICKET:
            raise UserError(f"the ticket is {len(ticket)} characters long (at most {MAX_TICKET})")
        resolved = await self._dir.resolve_target(target_text)
        catalog = await self._dir.catalog()
        policy = self._dir.policy
        decision = evaluate(
            policy, AccessRequest(ident.policy_groups, resolved, role, duration, reason, break_glass), catalog
        )
        display, role_name = resolved.display, catalog.name(role)
        if not decision.allowed or decision.rule is None or decision.duration is None:
            self._audit.record(
                A.GRANT_REFUSED,
                actor=ident.slack_user,
                target=display,
                outcome="denied",
                reason=decision.why,
                details={
                    "slack_user": ident.slack_user,
                    "role": role,
                    "target": resolved.target.key,
                    "why": decision.why,
                },
            )
            return RequestOutcome("denied", decision.why, display, role_name, decision=decision)
        rule = decision.rule
        same = self._open_same(ident.slack_user, resolved.target, role)
        if same is not None:
            return self._duplicate(same, display, role_name)
        principals = self._dir.principals(ident)
        user, covering = await self._standing.covering(principals, role, resolved.target)
        if covering:
            return RequestOutcome(
                "covered",
                f"you already hold {role} on {display} through {await self._standing.describe(covering[0])}, "
                "so no grant was created",
                display,
                role_name,
                decision=decision,
                covering=tuple(c.binding for c in covering),
            )
        now = self._clock.now()
        needs = decision.needs_approval
        with self._ledger.tx.atomic():
            same = self._open_same(ident.slack_user, resolved.target, role)  # a concurrent twin won the race
            if same is not None:
                return self._duplicate(same, display, role_name)
            gid = self._grants.new_id()
            grant = Grant(
                id=gid,
                slack_user=ident.slack_user,
                subject=ident.subject,
                target=resolved.target,
                role_id=role,
                duration_s=int(decision.duration.total_seconds()),
                rule=rule.name,
                state=S.REQUESTED,
                requested_at=now,
                reason=reason,
                ticket=ticket,
                break_glass=decision.break_glass,
                self_service=not needs and not decision.break_glass,
                approvals_required=decision.approvals_required,
                binding_name=binding_name(gid),
                user_principal_id=principals.user_principal_id,
                via_groups=tuple(g for g in rule.groups if g in ident.policy_groups),
                request_expires_at=now + int(policy.request_ttl.total_seconds()) if needs else None,
            )
            self._ledger.create(
                grant,
                actor=ident.slack_user,
                why=decision.why,
                note=AuditNote(
                    A.GRANT_REQUESTED, display, reason=reason, details={"why": decision.why, "ticket": ticket}
                ),
            )
            facts = GrantFacts(grant, display, role_name, now, rule)
            self._ledger.status(facts)
            if needs:
                self._ledger.card(facts, first=True)
                self._ledger.ask(facts, self._dir.approvers_of(rule, ident.slack_user))
            if grant.break_glass:
                self._announce_break_glass(facts, rule)
        if needs:
            return RequestOutcome(
                "pending",
                f"{decision.why}; request {gid} was sent to the approvers",
                display,
                role_name,
                grant=grant,
                decision=decision,
            )
        grant = await self._lifecycle.activate(grant, actor=ident.slack_user, user=user)
        status = {S.ACTIVE: "active", S.FAILED: "failed"}.get(grant.state, "activating")
        return RequestOutcome(status, decision.why, display, role_name, grant=grant, decision=decision)

    def _open_same(self, slack_user: str, target: Target, role: str) -> Grant | None:
        found = self._grants.find(slack_user=slack_user, states=OPEN, target=target)
        return next((g for g in found if g.role_id == role), None)

    @staticmethod
    def _duplicate(grant: Grant, display: str, role_name: str) -> RequestOutcome:
        message = f"you already have {grant.id} for this ({grant.state.value})"
        return RequestOutcome("duplicate", message, display, role_name, grant=grant)

    def _announce_break_glass(self, facts: GrantFacts, rule: Rule) -> None:
        groups = rule.approval.groups or rule.groups
        approver_groups = set(groups)
        mentions = sorted(
            ident.slack_user for ident in self._dir.linked() if set(ident.policy_groups) & approver_groups
        )
        usergroups = tuple(dict.fromkeys(self._usergroups[g] for g in groups if g in self._usergroups))
        self._ledger.break_glass(facts, mentions, usergroups)

    async def options_for(self, who: Identity | str, *, break_glass: bool | None = None) -> list[Option]:
        """Every (target, role) the user may request, for the request form."""
        ident = self._dir.identity(who)
        catalog = await self._dir.catalog()
        clusters = {c.id: c for c in await self._rancher.list_clusters()}
        targets = [ResolvedTarget(c) for c in clusters.values()]
        targets += [
            ResolvedTarget(clusters[p.cluster_id], p)
            for p in await self._rancher.list_projects()
            if p.cluster_id in clusters
        ]
        options = requestable(self._dir.policy, ident.policy_groups, catalog, targets)
        return [o for o in options if break_glass is None or o.break_glass is break_glass]
