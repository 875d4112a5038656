"""Time-boxed grants: request → policy → approval → recorded intent → tagged Rancher binding → active → revoked."""

from __future__ import annotations

import asyncio
import difflib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from bot.core import audit_actions as A
from bot.core.durations import format_duration
from bot.core.errors import (
    BotError,
    ConflictError,
    NotAllowed,
    NotFound,
    NotLinked,
    PermanentUpstreamError,
    UpstreamError,
    UserError,
)
from bot.core.grant_lifecycle import GrantEvent, can_extend, sources, transition
from bot.core.model import (
    Approval,
    Grant,
    GrantState,
    Identity,
    LinkStatus,
    PrincipalSet,
    RancherUser,
    RoleBinding,
    Scope,
    Target,
)
from bot.core.mrkdwn import escape
from bot.core.policy import (
    AccessRequest,
    Catalog,
    Decision,
    Option,
    Policy,
    ResolvedTarget,
    Rule,
    RuleSummary,
    can_approve,
    evaluate,
    requestable,
    rules_summary,
    validate_policy,
)
from bot.core.ports import Clock, RancherApi, Store
from bot.core.principals import derive_user_id, principal_set
from bot.services.audit import AuditLog
from bot.services.notifications import Notifications

log = logging.getLogger(__name__)

S = GrantState
SLACK_USER_ANNOTATION = "accessbot.io/slack-user"
OPEN_STATES = (S.REQUESTED, S.APPROVED, S.ACTIVATING, S.ACTIVE, S.REVOKING)
"""States of a grant that is not over yet."""
_REFUSALS = frozenset({400, 403, 404, 422})  # Rancher answers no retry will change

Rendered = tuple[str, list[dict[str, Any]]]


# --- values the callers get back ------------------------------------------------------------------------


@dataclass(frozen=True)
class GrantView:
    """A grant with the names people read (target, role) and the time it is shown at."""

    grant: Grant
    target: str
    role: str
    now: int
    rule: Rule | None = None


@dataclass(frozen=True)
class RequestOutcome:
    """What became of a request: `active`, `pending`, `activating`, `failed`, `denied`, `covered` or `duplicate`."""

    status: str
    message: str
    target: str = ""
    role: str = ""
    grant: Grant | None = None
    decision: Decision | None = None
    covering: tuple[RoleBinding, ...] = ()


@dataclass(frozen=True)
class DecisionOutcome:
    """What a click on Approve/Deny did: `approved`, `recorded` (more approvals needed), `denied` or `unchanged`."""

    status: str
    message: str
    grant: Grant
    view: GrantView | None = None


@dataclass(frozen=True)
class ExtendOutcome:
    """What an extension did: `extended`, `pending` (awaiting re-approval), `denied` or `unchanged`."""

    status: str
    message: str
    grant: Grant


@dataclass(frozen=True)
class WhoEntry:
    """One holder of a role on a target, standing or temporary."""

    subject: str
    role_id: str
    role: str
    kind: str  # "standing" | "temporary" | "group"
    binding_id: str = ""
    grant_id: str = ""
    slack_user: str = ""
    expires_at: int | None = None


@dataclass(frozen=True)
class WhoReport:
    """Who holds which role on one target."""

    target: str
    entries: tuple[WhoEntry, ...] = ()


@dataclass(frozen=True)
class PolicyTest:
    """A policy decision explained for the command line."""

    target: str
    role: str
    groups: tuple[str, ...]
    decision: Decision


class GrantRenderer(Protocol):
    """Turns grants into Slack text and blocks (bot.slack.grant_blocks implements it; wiring passes it in)."""

    def approval(self, view: GrantView) -> Rendered:
        """The approvals-channel message of a request (buttons while undecided, the outcome after)."""
        ...

    def status(self, view: GrantView) -> Rendered:
        """The one grants-channel message of a grant's lifecycle."""
        ...

    def break_glass(self, view: GrantView, mentions: Sequence[str]) -> Rendered:
        """The break-glass announcement for the approvals and security channels."""
        ...

    def dm(self, view: GrantView, event: str) -> Rendered:
        """A DM to the requester/holder about `event` (approved, denied, active, expiring, expired, …)."""
        ...

    def extension_request(self, view: GrantView, extra_s: int, number: int, approvers: Sequence[str]) -> Rendered:
        """The approvals-channel message asking to approve an extension."""
        ...


class PlainRenderer:
    """Text-only messages (the default when no Block Kit renderer is wired in)."""

    def _line(self, view: GrantView) -> str:
        g = view.grant
        return (
            f"{g.id}: {escape(g.role_id)} on {escape(view.target)} for <@{g.slack_user}> "
            f"({format_duration(timedelta(seconds=g.duration_s))}) — {g.state.value}"
        )

    def approval(self, view: GrantView) -> Rendered:
        """The approvals-channel message, as text."""
        return self._line(view) + f"; reason: {escape(view.grant.reason)}", []

    def status(self, view: GrantView) -> Rendered:
        """The grants-channel message, as text."""
        return self._line(view), []

    def break_glass(self, view: GrantView, mentions: Sequence[str]) -> Rendered:
        """The break-glass announcement, as text."""
        who = " ".join(f"<@{m}>" for m in mentions)
        return f":rotating_light: BREAK-GLASS {self._line(view)}; reason: {escape(view.grant.reason)} {who}", []

    def dm(self, view: GrantView, event: str) -> Rendered:
        """A DM, as text."""
        return f"{event}: {self._line(view)}", []

    def extension_request(self, view: GrantView, extra_s: int, number: int, approvers: Sequence[str]) -> Rendered:
        """An extension request, as text."""
        return f"extension +{format_duration(timedelta(seconds=extra_s))} requested: {self._line(view)}", []


class _Unchanged(BotError):
    """Raised inside a transaction to roll it back when a compare-and-set lost a race."""


def binding_name(grant_id: str) -> str:
    """The deterministic DNS-1123 name of a grant's binding, e.g. `accessbot-g-12`."""
    safe = "".join(ch if ch.isalnum() or ch == "-" else "-" for ch in grant_id.lower()).strip("-")
    return f"accessbot-{safe}"[:63].rstrip("-")


def _user_id_of(principal: str) -> str:
    return principal.removeprefix("local://") if principal.startswith("local://") else derive_user_id(principal)


# --- the service ----------------------------------------------------------------------------------------


def grant_details(grant: Grant, **extra: object) -> dict[str, object]:
    """The audit details every grant.* event carries (core.audit_actions), plus `extra`."""
    return {
        "grant_id": grant.id,
        "slack_user": grant.slack_user,
        "role": grant.role_id,
        "target": grant.target.key,
        "duration_s": grant.duration_s,
        "rule": grant.rule,
        "break_glass": grant.break_glass,
        "self_service": grant.self_service,
        **extra,
    }


class GrantingService:
    """Every grant use case; each step is recorded before Rancher is called, and every method is idempotent."""

    def __init__(
        self,
        *,
        store: Store,
        rancher: RancherApi,
        audit: AuditLog,
        notifications: Notifications,
        clock: Clock,
        policy: Policy,
        grant_label: str = "accessbot.io/grant",
        auth_provider: str = "genericoidc",
        user_principal_template: str | None = None,
        group_principal_template: str | None = None,
        admins: frozenset[str] = frozenset(),
        renderer: GrantRenderer | None = None,
    ) -> None:
        self._store = store
        self._rancher = rancher
        self._audit = audit
        self._notify = notifications
        self._clock = clock
        self.policy = policy
        self.grant_label = grant_label
        self._provider = auth_provider
        self._user_template = user_principal_template
        self._group_template = group_principal_template
        self.admins = admins
        self._render: GrantRenderer = renderer or PlainRenderer()

    # --- lookups ------------------------------------------------------------------------------------------

    def identity(self, who: Identity | str) -> Identity:
        """The active linked identity of a Slack user (an Identity is re-read), or raise NotLinked."""
        slack_user = who.slack_user if isinstance(who, Identity) else who
        ident = self._store.link(slack_user)
        if ident is None or ident.status is not LinkStatus.ACTIVE:
            raise NotLinked("your Slack account is not linked to your company identity")
        return ident

    def _principals(self, ident: Identity) -> PrincipalSet:
        return principal_set(
            self._provider,
            ident.subject,
            ident.groups,
            user_template=self._user_template,
            group_template=self._group_template,
        )

    def rule(self, name: str) -> Rule | None:
        """The policy rule of that name, if it still exists."""
        return next((r for r in self.policy.rules if r.name == name), None)

    def governed_roles(self) -> set[str]:
        """Role template ids named by any policy rule."""
        return {role for rule in self.policy.rules for role in rule.roles}

    def get(self, grant_id: str) -> Grant:
        """A grant by id, or raise NotFound."""
        grant = self._store.grant(grant_id.strip().lower())
        if grant is None:
            raise NotFound(f"there is no grant {grant_id}", "see your grants with `grants`")
        return grant

    def is_approver(self, ident: Identity | None, rule: Rule | None = None) -> bool:
        """True when the identity is in the approver groups of `rule` (of any rule when None)."""
        if ident is None or ident.status is not LinkStatus.ACTIVE:
            return False
        rules = [rule] if rule is not None else list(self.policy.rules)
        return any(set(r.approval.groups) & set(ident.groups) for r in rules)

    def _maybe_identity(self, slack_user: str) -> Identity | None:
        ident = self._store.link(slack_user)
        return ident if ident is not None and ident.status is LinkStatus.ACTIVE else None

    async def catalog(self) -> Catalog:
        """The role templates Rancher knows."""
        return Catalog.of(await self._rancher.list_role_templates())

    async def resolve_target(self, text: str) -> ResolvedTarget:
        """`CLUSTER` or `CLUSTER/PROJECT` (names or ids; a project id `c-x:p-y` alone works too) → Rancher objects."""
        raw = text.strip()
        cluster_text, _, project_text = raw.partition("/")
        if not project_text and ":" in cluster_text:
            cluster_text, project_text = cluster_text.split(":", 1)[0], cluster_text
        clusters = list(await self._rancher.list_clusters())
        found = (
            [c for c in clusters if c.id == cluster_text]
            or [c for c in clusters if c.name == cluster_text]
            or [c for c in clusters if c.name.lower() == cluster_text.lower()]
        )
        if not found:
            close = difflib.get_close_matches(cluster_text, [c.name for c in clusters], n=3)
            hint = f"did you mean {', '.join(close)}?" if close else "see what exists with `list`"
            raise NotFound(f"there is no cluster {cluster_text}", hint)
        if len(found) > 1:
            ids = ", ".join(c.id for c in found)
            raise UserError(f"several clusters are called {cluster_text}", f"use the cluster id: {ids}")
        cluster = found[0]
        if not project_text:
            return ResolvedTarget(cluster)
        projects = list(await self._rancher.list_projects(cluster.id))
        tail = project_text.split(":", 1)[-1]
        pfound = (
            [p for p in projects if p.id in (project_text, f"{cluster.id}:{tail}")]
            or [p for p in projects if p.name == project_text]
            or [p for p in projects if p.name.lower() == project_text.lower()]
        )
        if not pfound:
            close = difflib.get_close_matches(project_text, [p.name for p in projects], n=3)
            hint = f"did you mean {', '.join(close)}?" if close else f"projects in {cluster.name} are listed by `list`"
            raise NotFound(f"there is no project {project_text} in cluster {cluster.name}", hint)
        if len(pfound) > 1:
            ids = ", ".join(p.id for p in pfound)
            raise UserError(f"several projects are called {project_text}", f"use the project id: {ids}")
        return ResolvedTarget(cluster, pfound[0])

    async def _display(self, target: Target) -> str:
        """`cluster` or `cluster/project` by name (ids when Rancher does not answer)."""
        try:
            cluster = next((c for c in await self._rancher.list_clusters() if c.id == target.cluster_id), None)
            cname = cluster.name if cluster else target.cluster_id
            if target.project_id is None:
                return cname
            project = next(
                (p for p in await self._rancher.list_projects(target.cluster_id) if p.id == target.project_id), None
            )
            return f"{cname}/{project.name if project else target.project_id}"
        except UpstreamError:
            return target.key

    async def _role_name(self, role_id: str) -> str:
        try:
            return (await self.catalog()).name(role_id)
        except UpstreamError:
            return role_id

    async def _names(self, grant: Grant) -> tuple[str, str]:
        return await self._display(grant.target), await self._role_name(grant.role_id)

    def _view(self, grant: Grant, names: tuple[str, str]) -> GrantView:
        return GrantView(grant, names[0], names[1], self._clock.now(), self.rule(grant.rule))

    async def view(self, grant: Grant) -> GrantView:
        """The grant with display names, for rendering."""
        return GrantView(
            grant=grant,
            target=await self._display(grant.target),
            role=await self._role_name(grant.role_id),
            now=self._clock.now(),
            rule=self.rule(grant.rule),
        )

    # --- notifications (always inside the caller's transaction) -------------------------------------------

    def _post_status(self, view: GrantView) -> None:
        text, blocks = self._render.status(view)
        g = view.grant
        ref = f"grant:{g.id}"
        if self._store.message_ref(ref) is None and self._store.outbox_message(f"{ref}:post") is None:
            self._notify.to_channel("grants", f"{ref}:post", text, blocks, ref=ref)
        else:
            key = f"{ref}:{g.state.value}:{g.extensions}:{len(g.approvals)}"
            self._notify.update(ref, key, text, blocks, channel_name="grants")

    def _post_approval(self, view: GrantView, *, first: bool = False) -> None:
        text, blocks = self._render.approval(view)
        g = view.grant
        ref = f"approval:{g.id}"
        if first:
            self._notify.to_channel("approvals", f"{ref}:post", text, blocks, ref=ref)
        else:
            key = f"{ref}:{g.state.value}:{len(g.approvals)}"
            self._notify.update(ref, key, text, blocks, channel_name="approvals")

    def _refresh_approval_card(self, view: GrantView) -> None:
        """Bring the approvals card (if this grant has one) to the grant's latest state, after queued updates."""
        if self._store.outbox_message(f"approval:{view.grant.id}:post") is not None:
            self._post_approval(view)

    def _dm(self, view: GrantView, event: str, suffix: str = "") -> None:
        text, blocks = self._render.dm(view, event)
        self._notify.dm(view.grant.slack_user, f"dm:{view.grant.id}:{event}{suffix}", text, blocks)

    def _details(self, grant: Grant, **extra: object) -> dict[str, object]:
        return grant_details(grant, **extra)

    def _history(self, grant: Grant, to: GrantState, now: int, actor: str, reason: str = "") -> None:
        self._store.add_history(grant.id, grant.state.value, to.value, now, actor, reason)

    def _reload(self, grant_id: str) -> Grant:
        grant = self._store.grant(grant_id)
        if grant is None:  # pragma: no cover - grants are never deleted
            raise NotFound(f"there is no grant {grant_id}")
        return grant

    # --- requests -----------------------------------------------------------------------------------------

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
        ident = self.identity(who)
        reason, ticket, role = reason.strip(), ticket.strip()[:64], role.strip().lower()
        resolved = await self.resolve_target(target_text)
        catalog = await self.catalog()
        decision = evaluate(
            self.policy,
            AccessRequest(ident.groups, resolved, role, duration, reason, break_glass),
            catalog,
        )
        display, role_name = resolved.display, catalog.name(role)
        if not decision.allowed or decision.rule is None or decision.duration is None:
            self._audit.record(
                A.GRANT_DENIED,
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
        principals = self._principals(ident)
        user, bindings = await asyncio.gather(
            self._rancher.get_user(principals.user_id or _user_id_of(principals.user_principal_id)),
            self._rancher.list_target_bindings(resolved.target.cluster_id, resolved.target.project_id),
        )
        covering = self._standing(bindings, role, principals, user)
        if covering:
            return RequestOutcome(
                "covered",
                f"you already hold {role} on {display} (standing access), so no grant was created",
                display,
                role_name,
                decision=decision,
                covering=tuple(covering),
            )
        now = self._clock.now()
        needs = decision.needs_approval
        with self._store.atomic():
            same = self._open_same(ident.slack_user, resolved.target, role)  # a concurrent twin won the race
            if same is not None:
                return self._duplicate(same, display, role_name)
            gid = self._store.new_grant_id()
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
                via_groups=tuple(g for g in rule.groups if g in ident.groups),
                request_expires_at=now + int(self.policy.request_ttl.total_seconds()) if needs else None,
            )
            self._store.insert_grant(grant, now)
            self._store.add_history(gid, None, S.REQUESTED.value, now, ident.slack_user, decision.why)
            self._audit.record(
                A.GRANT_REQUESTED,
                actor=ident.slack_user,
                target=display,
                reason=reason,
                details=self._details(grant, why=decision.why, ticket=ticket),
            )
            view = GrantView(grant, display, role_name, now, rule)
            self._post_status(view)
            if needs:
                self._post_approval(view, first=True)
            if grant.break_glass:
                self._announce_break_glass(view, rule)
        if needs:
            return RequestOutcome(
                "pending",
                f"{decision.why}; request {gid} was sent to the approvers",
                display,
                role_name,
                grant=grant,
                decision=decision,
            )
        grant = await self._activate(grant, actor=ident.slack_user, user=user)
        status = {S.ACTIVE: "active", S.FAILED: "failed"}.get(grant.state, "activating")
        return RequestOutcome(status, decision.why, display, role_name, grant=grant, decision=decision)

    def _open_same(self, slack_user: str, target: Target, role: str) -> Grant | None:
        found = self._store.grants(slack_user=slack_user, states=OPEN_STATES, target_key=target.key)
        return next((g for g in found if g.role_id == role), None)

    @staticmethod
    def _duplicate(grant: Grant, display: str, role_name: str) -> RequestOutcome:
        message = f"you already have {grant.id} for this ({grant.state.value})"
        return RequestOutcome("duplicate", message, display, role_name, grant=grant)

    def _announce_break_glass(self, view: GrantView, rule: Rule) -> None:
        mentions = sorted(
            ident.slack_user
            for ident in self._store.active_links()
            if set(ident.groups) & set(rule.approval.groups or rule.groups)
        )
        text, blocks = self._render.break_glass(view, mentions)
        for channel in ("approvals", "security"):
            self._notify.to_channel(channel, f"breakglass:{view.grant.id}:{channel}", text, blocks)

    def _standing(
        self, bindings: Sequence[RoleBinding], role: str, principals: PrincipalSet, user: RancherUser | None
    ) -> list[RoleBinding]:
        """Bindings not made by the bot that already give this role on this target to the user or their groups."""
        mine_users = {principals.user_id} | ({user.id} if user else set())
        mine_principals = set(principals.principal_ids) | set(user.principal_ids if user else ())
        groups = set(principals.group_principal_ids)
        out = []
        for b in bindings:
            if b.role_id != role or self.grant_label in b.labels:
                continue
            if b.user_id in mine_users or b.user_principal_id in mine_principals or b.group_principal_id in groups:
                out.append(b)
        return out

    async def options_for(self, who: Identity | str, *, break_glass: bool | None = None) -> list[Option]:
        """Every (target, role) the user may request, for the request form."""
        ident = self.identity(who)
        catalog = await self.catalog()
        clusters = {c.id: c for c in await self._rancher.list_clusters()}
        targets = [ResolvedTarget(c) for c in clusters.values()]
        targets += [
            ResolvedTarget(clusters[p.cluster_id], p)
            for p in await self._rancher.list_projects()
            if p.cluster_id in clusters
        ]
        options = requestable(self.policy, ident.groups, catalog, targets)
        return [o for o in options if break_glass is None or o.break_glass is break_glass]

    async def rules_for(self, who: Identity | str) -> list[RuleSummary]:
        """The rules the caller may use, with role names when Rancher answers."""
        ident = self.identity(who)
        try:
            catalog = await self.catalog()
        except UpstreamError:
            catalog = Catalog()
        return rules_summary(self.policy, ident.groups, catalog)

    async def validate(self) -> list[str]:
        """Warnings about rules that cannot work against this Rancher (unknown roles, selectors matching nothing)."""
        return validate_policy(self.policy, await self.catalog(), list(await self._rancher.list_clusters()))

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
        resolved = await self.resolve_target(target_text)
        catalog = await self.catalog()
        request = AccessRequest(tuple(groups), resolved, role, duration, "policy test", break_glass)
        return PolicyTest(resolved.display, role, tuple(groups), evaluate(self.policy, request, catalog))

    # --- approval -----------------------------------------------------------------------------------------

    async def decide(
        self, grant_id: str, approver: Identity | str, decision: str, comment: str = ""
    ) -> DecisionOutcome:
        """Record one approver's Approve/Deny; a replay or a second click changes nothing."""
        if decision not in ("approve", "deny"):
            raise UserError(f"unknown decision {decision}")
        ident = self.identity(approver)
        grant = self.get(grant_id)
        if grant.state is not S.REQUESTED:
            return DecisionOutcome("unchanged", f"{grant.id} is already {grant.state.value}", grant)
        rule = self.rule(grant.rule)
        if rule is None:
            raise NotAllowed(f"rule {grant.rule} of {grant.id} no longer exists", "ask an admin")
        already = [a.approver for a in grant.approvals]
        ok, why = can_approve(rule, ident.groups, ident.slack_user, grant.slack_user, already=already)
        if not ok:
            if ident.slack_user in already:
                return DecisionOutcome("unchanged", why, grant)
            raise NotAllowed(why)
        now = self._clock.now()
        display = await self._display(grant.target)
        role_name = await self._role_name(grant.role_id)
        final = False
        try:
            with self._store.atomic():
                if not self._store.add_approval(grant.id, Approval(ident.slack_user, decision, now, comment[:500])):
                    raise _Unchanged
                if decision == "deny":
                    if not self._store.transition_grant(
                        grant.id, sources(GrantEvent.DENY), {"state": S.DENIED, "ended_at": now}, now
                    ):
                        raise _Unchanged
                    self._history(grant, S.DENIED, now, ident.slack_user, comment)
                    updated = self._reload(grant.id)
                    self._audit.record(
                        A.GRANT_DENIED,
                        actor=ident.slack_user,
                        target=display,
                        outcome="denied",
                        reason=comment,
                        details=self._details(updated, approver=ident.slack_user, why=comment or "denied by approver"),
                    )
                    status, message = "denied", f"{grant.id} denied"
                else:
                    approvals = [a for a in self._store.approvals(grant.id) if a.decision == "approve"]
                    final = len(approvals) >= max(1, grant.approvals_required)
                    if final:
                        if not self._store.transition_grant(
                            grant.id, sources(GrantEvent.APPROVE), {"state": transition(S.REQUESTED, "approve")}, now
                        ):
                            raise _Unchanged
                        self._history(grant, S.APPROVED, now, ident.slack_user, comment)
                    updated = self._reload(grant.id)
                    self._audit.record(
                        A.GRANT_APPROVED,
                        actor=ident.slack_user,
                        target=display,
                        reason=comment,
                        details=self._details(
                            updated,
                            approver=ident.slack_user,
                            approvals=len(approvals),
                            approvals_required=grant.approvals_required,
                            final=final,
                        ),
                    )
                    if final:
                        status, message = "approved", f"{grant.id} approved"
                    else:
                        left = grant.approvals_required - len(approvals)
                        status, message = "recorded", f"approval recorded; {left} more needed for {grant.id}"
                view = GrantView(updated, display, role_name, now, rule)
                self._post_approval(view)
                self._post_status(view)
                if status != "recorded":
                    self._dm(view, status)
        except _Unchanged:
            return DecisionOutcome("unchanged", f"{grant.id} was already decided", self._reload(grant.id))
        if final:
            updated = await self._activate(updated, actor=ident.slack_user)
            view = GrantView(updated, display, role_name, self._clock.now(), rule)
        return DecisionOutcome(status, message, updated, view)

    async def expire_requests(self, now: int) -> int:
        """Undecided requests past request_expires_at → expired_request; the approvals message says so."""
        count = 0
        for grant in self._store.grants(states=(S.REQUESTED,)):
            if grant.request_expires_at is None or grant.request_expires_at > now:
                continue
            names = await self._names(grant)
            with self._store.atomic():
                if not self._store.transition_grant(
                    grant.id, sources(GrantEvent.EXPIRE_REQUEST), {"state": S.EXPIRED_REQUEST, "ended_at": now}, now
                ):
                    continue
                self._history(grant, S.EXPIRED_REQUEST, now, "system", "nobody decided in time")
                updated = self._reload(grant.id)
                view = self._view(updated, names)
                self._audit.record(
                    A.GRANT_REQUEST_EXPIRED,
                    actor="system",
                    target=view.target,
                    reason="nobody decided in time",
                    details=self._details(updated),
                )
                self._post_approval(view)
                self._post_status(view)
                self._dm(view, "request_expired")
                count += 1
        return count

    # --- activation -----------------------------------------------------------------------------------------

    async def _activate(self, grant: Grant, *, actor: str, user: RancherUser | None = None) -> Grant:
        """Record the intent (`activating` + audit), then create the binding and mark the grant active."""
        now = self._clock.now()
        display = await self._display(grant.target)
        with self._store.atomic():
            if not self._store.transition_grant(
                grant.id,
                sources(GrantEvent.ACTIVATE),
                {"state": S.ACTIVATING, "binding_name": binding_name(grant.id)},
                now,
            ):
                return self._reload(grant.id)
            self._history(grant, S.ACTIVATING, now, actor)
            self._audit.record(
                A.GRANT_ACTIVATING,
                actor=actor,
                target=display,
                details=self._details(grant, binding_name=binding_name(grant.id)),
            )
        current = self._reload(grant.id)
        try:
            return await self._finish(current, first=True, user=user)
        except UpstreamError as err:
            log.warning("activation of %s interrupted, the reconciler will finish it: %s", grant.id, err)
            return self._reload(grant.id)

    async def finish_activation(self, grant: Grant) -> Grant:
        """Finish a grant stuck in `activating`: adopt or create its tagged binding, then mark it active."""
        current = self._reload(grant.id)
        if current.state is not S.ACTIVATING:
            return current
        why = self._unhonourable(current)
        if why:
            await self._delete_bindings(current)
            return self._fail(current, why)
        return await self._finish(current, first=False)

    def _unhonourable(self, grant: Grant) -> str:
        """Why an interrupted activation must not be completed any more (empty when it may)."""
        if self.rule(grant.rule) is None:
            return f"rule {grant.rule} no longer exists"
        ident = self._store.link(grant.slack_user)
        if ident is None or ident.status is not LinkStatus.ACTIVE or ident.subject != grant.subject:
            return "the requester is no longer linked"
        if grant.via_groups and not set(grant.via_groups) & set(ident.groups):
            return "the requester is no longer in group " + ", ".join(grant.via_groups)
        return ""

    async def _finish(self, grant: Grant, *, first: bool, user: RancherUser | None = None) -> Grant:
        try:
            binding = await self._ensure_binding(grant, first=first, user=user)
        except ConflictError as err:
            return self._fail(grant, f"Rancher refused the binding: {err.message}")
        except PermanentUpstreamError as err:
            if err.status in _REFUSALS:
                return self._fail(grant, f"Rancher refused the binding ({err.status}): {err.message}")
            raise
        names = await self._names(grant)
        now = self._clock.now()
        expires = now + grant.duration_s
        with self._store.atomic():
            if not self._store.transition_grant(
                grant.id,
                sources(GrantEvent.ACTIVATED),
                {
                    "state": S.ACTIVE,
                    "binding_id": binding.id,
                    "binding_name": binding.name or binding_name(grant.id),
                    "activated_at": now,
                    "expires_at": expires,
                },
                now,
            ):
                return self._reload(grant.id)
            self._history(grant, S.ACTIVE, now, "system")
            updated = self._reload(grant.id)
            view = self._view(updated, names)
            self._audit.record(
                A.GRANT_ACTIVE,
                actor=grant.slack_user,
                target=view.target,
                details=self._details(updated, binding_id=binding.id, expires_at=expires),
            )
            self._post_status(view)
            self._refresh_approval_card(view)
            self._dm(view, "active")
        return updated

    async def _ensure_binding(self, grant: Grant, *, first: bool, user: RancherUser | None) -> RoleBinding:
        """The grant's tagged binding: adopted when it exists already, else created under its deterministic name."""
        target = grant.target
        if not first:
            for b in await self._rancher.list_target_bindings(target.cluster_id, target.project_id):
                if b.labels.get(self.grant_label) == grant.id:
                    return b
        principal = grant.user_principal_id or self._principals(self.identity(grant.slack_user)).user_principal_id
        if user is None:
            user = await self._rancher.get_user(_user_id_of(principal))
        return await self._rancher.create_binding(
            name=grant.binding_name or binding_name(grant.id),
            cluster_id=target.cluster_id,
            project_id=target.project_id,
            role_id=grant.role_id,
            user_id=user.id if user is not None else None,
            user_principal_id=None if user is not None else principal,
            labels={self.grant_label: grant.id},
            annotations={SLACK_USER_ANNOTATION: grant.slack_user},
        )

    def _fail(self, grant: Grant, why: str) -> Grant:
        now = self._clock.now()
        with self._store.atomic():
            if not self._store.transition_grant(
                grant.id, sources(GrantEvent.FAIL), {"state": S.FAILED, "failure": why[:500], "ended_at": now}, now
            ):
                return self._reload(grant.id)
            self._history(grant, S.FAILED, now, "system", why)
            updated = self._reload(grant.id)
            self._audit.record(
                A.GRANT_FAILED,
                actor="system",
                target=grant.target.key,
                outcome="failed",
                reason=why,
                details=self._details(updated, why=why),
            )
            view = GrantView(updated, grant.target.key, grant.role_id, now, self.rule(grant.rule))
            self._post_status(view)
            self._refresh_approval_card(view)
            self._dm(view, "failed")
        return updated

    # --- revocation -----------------------------------------------------------------------------------------

    async def finish_revocation(
        self,
        grant: Grant,
        *,
        final_state: GrantState = GrantState.EXPIRED,
        actor: str = "system",
        reason: str = "",
    ) -> Grant:
        """Delete the binding of a `revoking` grant (already gone counts), then mark it expired or revoked."""
        if final_state not in (S.EXPIRED, S.REVOKED):
            raise ValueError("final_state must be EXPIRED or REVOKED")
        current = self._reload(grant.id)
        if current.state is not S.REVOKING:
            return current
        await self._delete_bindings(current)
        names = await self._names(current)
        now = self._clock.now()
        event = GrantEvent.EXPIRED if final_state is S.EXPIRED else GrantEvent.REVOKED
        with self._store.atomic():
            if not self._store.transition_grant(
                current.id, sources(event), {"state": transition(S.REVOKING, event), "ended_at": now}, now
            ):
                return self._reload(current.id)
            self._history(current, final_state, now, actor, reason)
            updated = self._reload(current.id)
            view = self._view(updated, names)
            held = max(0, now - current.activated_at) if current.activated_at else 0
            self._audit.record(
                A.GRANT_EXPIRED if final_state is S.EXPIRED else A.GRANT_REVOKED,
                actor=actor,
                target=view.target,
                reason=reason,
                details=self._details(updated, held_s=held),
            )
            self._post_status(view)
            self._refresh_approval_card(view)
            self._dm(view, final_state.value)
        return updated

    async def _delete_bindings(self, grant: Grant) -> None:
        scope = Scope.PROJECT if grant.target.project_id else Scope.CLUSTER
        if grant.binding_id:
            binding = RoleBinding(
                id=grant.binding_id,
                scope=scope,
                role_id=grant.role_id,
                cluster_id=grant.target.cluster_id,
                project_id=grant.target.project_id,
                name=grant.binding_name or "",
            )
            await self._rancher.delete_binding(binding)
            return
        # No binding id recorded (crash before it was): delete whatever carries this grant's tag.
        for b in await self._rancher.list_target_bindings(grant.target.cluster_id, grant.target.project_id):
            if b.labels.get(self.grant_label) == grant.id:
                await self._rancher.delete_binding(b)

    async def revoke(self, grant_id: str, *, actor: str, reason: str) -> Grant:
        """End an active grant early (no permission check: callers check, see revoke_by)."""
        grant = self.get(grant_id)
        if grant.state is S.ACTIVATING:
            grant = await self.finish_activation(grant)
        if grant.state is S.ACTIVE:
            now = self._clock.now()
            with self._store.atomic():
                if self._store.transition_grant(grant.id, sources(GrantEvent.BEGIN_REVOKE), {"state": S.REVOKING}, now):
                    self._history(grant, S.REVOKING, now, actor, reason)
            grant = self._reload(grant.id)
        if grant.state is S.REVOKING:
            return await self.finish_revocation(grant, final_state=S.REVOKED, actor=actor, reason=reason)
        return grant

    def _withdraw(self, grant: Grant, actor: str, reason: str) -> Grant:
        """Close an undecided request (withdrawn, offboarded, groups lost) as denied."""
        now = self._clock.now()
        with self._store.atomic():
            if not self._store.transition_grant(
                grant.id, sources(GrantEvent.DENY), {"state": S.DENIED, "ended_at": now, "failure": reason[:500]}, now
            ):
                return self._reload(grant.id)
            self._history(grant, S.DENIED, now, actor, reason)
            updated = self._reload(grant.id)
            self._audit.record(
                A.GRANT_DENIED,
                actor=actor,
                target=grant.target.key,
                outcome="denied",
                reason=reason,
                details=self._details(updated, why=reason),
            )
            view = GrantView(updated, grant.target.key, grant.role_id, now, self.rule(grant.rule))
            self._post_approval(view)
            self._post_status(view)
        return updated

    async def revoke_by(self, actor: Identity | str, grant_id: str, reason: str = "") -> Grant:
        """Revoke (or withdraw) a grant as a person: the holder, an approver of its rule, or an admin."""
        slack_user = actor.slack_user if isinstance(actor, Identity) else actor
        grant = self.get(grant_id)
        ident = self._maybe_identity(slack_user)
        allowed = (
            slack_user == grant.slack_user
            or slack_user in self.admins
            or self.is_approver(ident, self.rule(grant.rule))
        )
        if not allowed:
            raise NotAllowed(f"only the holder, an approver of rule {grant.rule} or an admin can revoke {grant.id}")
        why = reason or ("revoked by the holder" if slack_user == grant.slack_user else f"revoked by {slack_user}")
        return await self.end(grant.id, actor=slack_user, reason=why)

    async def end(self, grant_id: str, *, actor: str, reason: str) -> Grant:
        """End a grant whatever its open state (withdraw a request, revoke a grant); callers check permission."""
        grant = self.get(grant_id)
        if grant.state is S.REQUESTED:
            return self._withdraw(grant, actor, reason)
        if grant.state in (S.ACTIVE, S.ACTIVATING, S.REVOKING, S.APPROVED):
            if grant.state is S.APPROVED:
                grant = await self._activate(grant, actor=actor)
            return await self.revoke(grant.id, actor=actor, reason=reason)
        raise UserError(f"{grant.id} is already {grant.state.value}")

    async def revoke_all_for_user(self, slack_user: str, *, reason: str) -> int:
        """Offboarding: revoke every active grant of the user and close their pending requests."""
        count = 0
        for grant in self._store.grants(slack_user=slack_user, states=OPEN_STATES):
            try:
                if grant.state is S.REQUESTED:
                    self._withdraw(grant, "system", reason)
                elif grant.state is S.APPROVED:
                    await self._activate(grant, actor="system")
                    await self.revoke(grant.id, actor="system", reason=reason)
                else:
                    await self.revoke(grant.id, actor="system", reason=reason)
                count += 1
            except UpstreamError:
                log.warning("could not revoke %s now; the reconciler retries", grant.id, exc_info=True)
        return count

    async def revoke_for_removed_groups(self, slack_user: str, removed_groups: Sequence[str]) -> int:
        """Revoke grants whose `via_groups` no longer intersect the user's current groups."""
        ident = self._store.link(slack_user)
        groups = set(ident.groups) if ident is not None and ident.status is LinkStatus.ACTIVE else set()
        groups -= set(removed_groups)
        count = 0
        for grant in self._store.grants(slack_user=slack_user, states=OPEN_STATES):
            if set(grant.via_groups) & groups:
                continue
            reason = "no longer in group " + ", ".join(grant.via_groups or removed_groups)
            try:
                if grant.state is S.REQUESTED:
                    self._withdraw(grant, "system", reason)
                else:
                    if grant.state is S.APPROVED:
                        await self._activate(grant, actor="system")
                    await self.revoke(grant.id, actor="system", reason=reason)
                count += 1
            except UpstreamError:
                log.warning("could not revoke %s now; the reconciler retries", grant.id, exc_info=True)
        return count

    # --- expiry warnings and extension -----------------------------------------------------------------------

    async def warn_expiring(self, now: int, lead_s: int) -> int:
        """DM holders once per expiry time, `lead_s` before it, with an Extend button."""
        count = 0
        for grant in self._store.grants(states=(S.ACTIVE,)):
            if grant.expires_at is None or not (grant.expires_at - lead_s <= now < grant.expires_at):
                continue
            view = await self.view(grant)
            with self._store.atomic():
                text, blocks = self._render.dm(view, "expiring")
                if self._notify.dm(grant.slack_user, f"dm:{grant.id}:expiring:{grant.expires_at}", text, blocks):
                    count += 1
        return count

    async def extend(self, who: Identity | str, grant_id: str, duration: timedelta) -> ExtendOutcome:
        """Add time to the caller's active grant within the rule's caps; re-approval when the rule needs approval."""
        slack_user = who.slack_user if isinstance(who, Identity) else who
        grant = self.get(grant_id)
        if grant.slack_user != slack_user:
            raise NotAllowed(f"only the holder can extend {grant.id}")
        self.identity(slack_user)
        rule = self.rule(grant.rule)
        if rule is None:
            raise NotAllowed(f"rule {grant.rule} of {grant.id} no longer exists")
        now = self._clock.now()
        ok, why = can_extend(grant, rule, duration, now)
        if not ok:
            raise UserError(why)
        extra = int(duration.total_seconds())
        if rule.approval.required and not rule.break_glass:
            key = f"ext:{grant.id}:{grant.extensions}"
            view = await self.view(grant)
            with self._store.atomic():
                if not self._store.claim_state(key, json.dumps({"extra_s": extra, "approvers": []}), now):
                    return ExtendOutcome(
                        "unchanged", f"an extension of {grant.id} is already waiting for approval", grant
                    )
                text, blocks = self._render.extension_request(view, extra, grant.extensions, ())
                self._notify.to_channel(
                    "approvals", f"{key}:post", text, blocks, ref=f"extension:{grant.id}:{grant.extensions}"
                )
            return ExtendOutcome(
                "pending", f"extension of {grant.id} by {format_duration(duration)} sent to the approvers", grant
            )
        updated = self._apply_extension(grant, rule, extra, actor=slack_user)
        if updated is None:
            return ExtendOutcome("unchanged", f"{grant.id} was just extended", self._reload(grant.id))
        return ExtendOutcome("extended", why, updated)

    def extension_room(self, grant: Grant) -> timedelta:
        """How much more time the rule allows for this grant (zero when none)."""
        rule = self.rule(grant.rule)
        if rule is None or grant.activated_at is None or grant.expires_at is None:
            return timedelta(0)
        if grant.extensions >= rule.max_extensions:
            return timedelta(0)
        return max(timedelta(0), rule.max_duration - timedelta(seconds=grant.expires_at - grant.activated_at))

    async def extend_default(self, who: Identity | str, grant_id: str) -> ExtendOutcome:
        """The Extend button: add the rule's default duration, or whatever room is left if less."""
        grant = self.get(grant_id)
        rule = self.rule(grant.rule)
        room = self.extension_room(grant)
        if rule is None or room <= timedelta(0):
            return await self.extend(who, grant_id, rule.default_duration if rule else timedelta(hours=1))
        return await self.extend(who, grant_id, min(rule.default_duration, room))

    def _apply_extension(self, grant: Grant, rule: Rule, extra: int, *, actor: str) -> Grant | None:
        now = self._clock.now()
        with self._store.atomic():
            current = self._reload(grant.id)
            ok, _ = can_extend(current, rule, timedelta(seconds=extra), now)
            if not ok or current.extensions != grant.extensions or current.expires_at is None:
                return None
            if not self._store.claim_state(f"ext:{grant.id}:{grant.extensions}:applied", str(extra), now):
                return None
            expires = current.expires_at + extra
            total = expires - (current.activated_at or now)
            if not self._store.transition_grant(
                grant.id,
                (S.ACTIVE,),
                {"expires_at": expires, "extensions": current.extensions + 1, "duration_s": total},
                now,
            ):
                raise _Unchanged
            self._store.add_history(grant.id, S.ACTIVE.value, S.ACTIVE.value, now, actor, f"extended by {extra}s")
            updated = self._reload(grant.id)
            self._audit.record(
                A.GRANT_EXTENDED,
                actor=actor,
                target=grant.target.key,
                details=self._details(updated, extra_s=extra, extensions=updated.extensions),
            )
            view = GrantView(updated, grant.target.key, grant.role_id, now, rule)
            self._post_status(view)
            self._dm(view, "extended", f":{updated.extensions}")
        return updated

    async def decide_extension(self, ref: str, approver: Identity | str, decision: str) -> ExtendOutcome:
        """Approve or deny a pending extension (`ref` is `<grant id>:<extension number>` from the button)."""
        gid, _, number = ref.partition(":")
        grant = self.get(gid)
        key = f"ext:{grant.id}:{number}"
        raw = self._store.get_state(key)
        if raw is None or not number.isdigit():
            raise NotFound(f"there is no pending extension {ref}")
        pending: dict[str, Any] = json.loads(raw)
        if self._store.get_state(f"{key}:decided") is not None or grant.extensions != int(number):
            return ExtendOutcome("unchanged", f"the extension of {grant.id} was already decided", grant)
        ident = self.identity(approver)
        rule = self.rule(grant.rule)
        if rule is None:
            raise NotAllowed(f"rule {grant.rule} of {grant.id} no longer exists")
        approvers: list[str] = list(pending.get("approvers", []))
        ok, why = can_approve(rule, ident.groups, ident.slack_user, grant.slack_user, already=approvers)
        if not ok:
            if ident.slack_user in approvers:
                return ExtendOutcome("unchanged", why, grant)
            raise NotAllowed(why)
        now = self._clock.now()
        if decision == "deny":
            view = await self.view(grant)
            with self._store.atomic():
                if not self._store.claim_state(f"{key}:decided", f"denied by {ident.slack_user}", now):
                    return ExtendOutcome("unchanged", "already decided", grant)
                self._dm(view, "extension_denied", f":{number}")
            return ExtendOutcome("denied", f"extension of {grant.id} denied", grant)
        approvers.append(ident.slack_user)
        self._store.set_state(key, json.dumps({**pending, "approvers": approvers}), now)
        if len(approvers) < max(1, rule.approval.count):
            return ExtendOutcome(
                "pending", f"approval recorded; {rule.approval.count - len(approvers)} more needed", grant
            )
        if not self._store.claim_state(f"{key}:decided", f"approved by {', '.join(approvers)}", now):
            return ExtendOutcome("unchanged", "already decided", grant)
        updated = self._apply_extension(grant, rule, int(pending["extra_s"]), actor=ident.slack_user)
        if updated is None:
            return ExtendOutcome("unchanged", f"{grant.id} can no longer be extended", self._reload(grant.id))
        return ExtendOutcome("extended", f"{grant.id} extended", updated)

    # --- listings ---------------------------------------------------------------------------------------------

    def list_grants(self, who: Identity | str, all: bool = False) -> list[Grant]:
        """The caller's grants (open ones first), or everyone's open grants for approvers and admins."""
        slack_user = who.slack_user if isinstance(who, Identity) else who
        if all:
            if slack_user not in self.admins and not self.is_approver(self._maybe_identity(slack_user)):
                raise NotAllowed("only approvers and admins can list everyone's grants")
            return self._store.grants(states=OPEN_STATES, limit=200)
        mine = self._store.grants(slack_user=slack_user, limit=50)
        open_ = [g for g in mine if g.state in OPEN_STATES]
        return open_ + [g for g in mine if g.state not in OPEN_STATES][:10]

    async def who(self, caller: Identity | str, target_text: str) -> WhoReport:
        """Who holds which role on a target, standing or temporary (approvers and admins only)."""
        slack_user = caller.slack_user if isinstance(caller, Identity) else caller
        if slack_user not in self.admins and not self.is_approver(self._maybe_identity(slack_user)):
            raise NotAllowed("only approvers and admins can see who holds access")
        resolved = await self.resolve_target(target_text)
        target = resolved.target
        catalog = await self.catalog()
        by_user: dict[str, str] = {}
        for ident in self._store.active_links():
            by_user[self._principals(ident).user_id or ""] = ident.slack_user
        grants = {g.id: g for g in self._store.grants(states=OPEN_STATES, target_key=target.key)}
        entries: list[WhoEntry] = []
        for b in await self._rancher.list_target_bindings(target.cluster_id, target.project_id):
            gid = b.labels.get(self.grant_label, "")
            grant = grants.get(gid)
            if b.group_principal_id:
                subject, kind = b.group_principal_id.split("://", 1)[-1], "group"
            else:
                subject = b.user_id or (b.user_principal_id or "").split("://", 1)[-1]
                kind = "temporary" if grant else "standing"
            slack = grant.slack_user if grant else by_user.get(b.user_id or "", "")
            entries.append(
                WhoEntry(
                    subject=subject,
                    role_id=b.role_id,
                    role=catalog.name(b.role_id),
                    kind=kind,
                    binding_id=b.id,
                    grant_id=gid if grant else "",
                    slack_user=slack,
                    expires_at=grant.expires_at if grant else None,
                )
            )
        entries.sort(key=lambda e: (e.kind != "temporary", e.role_id, e.subject))
        return WhoReport(resolved.display, tuple(entries))


__all__ = [
    "OPEN_STATES",
    "DecisionOutcome",
    "ExtendOutcome",
    "GrantRenderer",
    "GrantView",
    "GrantingService",
    "PlainRenderer",
    "PolicyTest",
    "RequestOutcome",
    "WhoEntry",
    "WhoReport",
    "binding_name",
]
