"""A grant's life after the decision: activation, failure, revocation, withdrawal, offboarding, expiry warnings.

Each step records its intent before Rancher is touched (`activating`, `revoking`), and each is idempotent: a rerun,
or the reconciler after a crash, finishes whatever was interrupted.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta

from bot.core import audit_actions as A
from bot.core.errors import ConflictError, NotAllowed, PermanentUpstreamError, UpstreamError, UserError
from bot.core.grant_lifecycle import OPEN, GrantEvent, needs_expiry_warning
from bot.core.model import Grant, GrantChange, GrantState, Identity, RancherUser
from bot.core.notices import HolderEvent
from bot.core.ports import Clock
from bot.core.storage import GrantStore
from bot.services.grants.bindings import REFUSALS, Bindings, binding_name
from bot.services.grants.directory import Directory
from bot.services.grants.ledger import AuditNote, Ledger

log = logging.getLogger(__name__)

S = GrantState
MAX_REASON = 500


class Lifecycle:
    """Activates and ends grants."""

    def __init__(
        self, *, directory: Directory, ledger: Ledger, bindings: Bindings, grants: GrantStore, clock: Clock
    ) -> None:
        self._dir = directory
        self._ledger = ledger
        self._bindings = bindings
        self._grants = grants
        self._clock = clock

    # --- activation -------------------------------------------------------------------------------------

    async def activate(self, grant: Grant, *, actor: str, user: RancherUser | None = None) -> Grant:
        """Record the intent (`activating` + audit), then create the binding and mark the grant active."""
        display = await self._dir.display(grant.target)
        moved = self._ledger.move(
            grant,
            GrantEvent.ACTIVATE,
            actor=actor,
            change=GrantChange(binding_name=binding_name(grant.id)),
            note=AuditNote(A.GRANT_ACTIVATING, display, details={"binding_name": binding_name(grant.id)}),
        )
        if moved is None:
            return self._dir.reload(grant.id)
        try:
            return await self._finish(moved, adopt=False, user=user)
        except UpstreamError as err:
            log.warning("activation of %s interrupted, the reconciler will finish it: %s", grant.id, err)
            return self._dir.reload(grant.id)

    async def finish_activation(self, grant: Grant) -> Grant:
        """Finish a grant stuck in `activating`: adopt or create its tagged binding, then mark it active."""
        current = self._dir.reload(grant.id)
        if current.state is not S.ACTIVATING:
            return current
        why = self._unhonourable(current)
        if why:
            await self._bindings.delete(current)
            return await self._fail(current, why)
        return await self._finish(current, adopt=True)

    def _unhonourable(self, grant: Grant) -> str:
        """Why an interrupted activation must not be completed any more (empty when it may)."""
        if self._dir.rule(grant.rule) is None:
            return f"rule {grant.rule} no longer exists"
        ident = self._dir.maybe_identity(grant.slack_user)
        if ident is None or ident.subject != grant.subject:
            return "the requester is no longer linked"
        if grant.via_groups and not set(grant.via_groups) & set(ident.groups):
            return "the requester is no longer in group " + ", ".join(grant.via_groups)
        return ""

    async def _finish(self, grant: Grant, *, adopt: bool, user: RancherUser | None = None) -> Grant:
        try:
            binding = await self._bindings.ensure(grant, adopt=adopt, user=user)
        except ConflictError as err:
            return await self._fail(grant, f"Rancher refused the binding: {err.message}")
        except PermanentUpstreamError as err:
            if err.status in REFUSALS:
                return await self._fail(grant, f"Rancher refused the binding ({err.status}): {err.message}")
            raise
        names = await self._dir.names(grant)
        now = self._clock.now()
        expires = now + grant.duration_s
        with self._ledger.tx.atomic():
            updated = self._ledger.move(
                grant,
                GrantEvent.ACTIVATED,
                actor="system",
                change=GrantChange(
                    binding_id=binding.id,
                    binding_name=binding.name or binding_name(grant.id),
                    activated_at=now,
                    expires_at=expires,
                ),
            )
            if updated is None:
                return self._dir.reload(grant.id)
            facts = self._dir.facts(updated, names)
            self._ledger.record(
                updated,
                grant.slack_user,
                AuditNote(A.GRANT_ACTIVE, facts.target, details={"binding_id": binding.id, "expires_at": expires}),
            )
            self._ledger.status(facts)
            self._ledger.refresh_card(facts)
            self._ledger.tell(facts, HolderEvent.ACTIVE)
        return updated

    async def _fail(self, grant: Grant, why: str) -> Grant:
        names = await self._dir.names(grant)
        with self._ledger.tx.atomic():
            updated = self._ledger.move(
                grant,
                GrantEvent.FAIL,
                actor="system",
                reason=why,
                change=GrantChange(failure=why[:500], ended_at=self._clock.now()),
                note=AuditNote(A.GRANT_FAILED, names[0], outcome="failed", reason=why, details={"why": why}),
            )
            if updated is None:
                return self._dir.reload(grant.id)
            facts = self._dir.facts(updated, names)
            self._ledger.status(facts)
            self._ledger.refresh_card(facts)
            self._ledger.tell(facts, HolderEvent.FAILED)
        return updated

    # --- revocation -------------------------------------------------------------------------------------

    async def finish_revocation(
        self, grant: Grant, *, final_state: GrantState = S.EXPIRED, actor: str = "system", reason: str = ""
    ) -> Grant:
        """Delete the binding of a `revoking` grant (already gone counts), then mark it expired or revoked."""
        if final_state not in (S.EXPIRED, S.REVOKED):
            raise ValueError("final_state must be EXPIRED or REVOKED")
        current = self._dir.reload(grant.id)
        if current.state is not S.REVOKING:
            return current
        await self._bindings.delete(current)
        names = await self._dir.names(current)
        expired = final_state is S.EXPIRED
        with self._ledger.tx.atomic():
            now = self._clock.now()
            held = max(0, now - current.activated_at) if current.activated_at else 0
            updated = self._ledger.move(
                current,
                GrantEvent.EXPIRED if expired else GrantEvent.REVOKED,
                actor=actor,
                reason=reason,
                change=GrantChange(ended_at=now),
                note=AuditNote(
                    A.GRANT_EXPIRED if expired else A.GRANT_REVOKED, names[0], reason=reason, details={"held_s": held}
                ),
            )
            if updated is None:
                return self._dir.reload(current.id)
            facts = self._dir.facts(updated, names)
            self._ledger.status(facts)
            self._ledger.refresh_card(facts)
            if expired:
                self._ledger.tell(facts, HolderEvent.EXPIRED)
            else:
                self._ledger.tell(facts, HolderEvent.REVOKED, by=actor, why=reason)
        return updated

    async def revoke(self, grant_id: str, *, actor: str, reason: str) -> Grant:
        """End an active grant early (no permission check: callers check, see `revoke_by`)."""
        grant = self._dir.get(grant_id)
        if grant.state is S.ACTIVATING:
            grant = await self.finish_activation(grant)
        if grant.state is S.ACTIVE:
            self._ledger.move(grant, GrantEvent.BEGIN_REVOKE, actor=actor, reason=reason)
            grant = self._dir.reload(grant.id)
        if grant.state is S.REVOKING:
            return await self.finish_revocation(grant, final_state=S.REVOKED, actor=actor, reason=reason)
        return grant

    async def revoke_by(self, actor: Identity | str, grant_id: str, reason: str = "") -> Grant:
        """Revoke (or withdraw) a grant as a person: the holder, an approver of its rule, or an admin."""
        slack_user = actor.slack_user if isinstance(actor, Identity) else actor
        grant = self._dir.get(grant_id)
        allowed = (
            slack_user == grant.slack_user
            or slack_user in self._dir.admins
            or self._dir.is_approver(self._dir.maybe_identity(slack_user), self._dir.rule(grant.rule))
        )
        if not allowed:
            raise NotAllowed(f"only the holder, an approver of rule {grant.rule} or an admin can revoke {grant.id}")
        return await self.end(grant.id, actor=slack_user, reason=reason.strip()[:MAX_REASON])

    async def end(self, grant_id: str, *, actor: str, reason: str) -> Grant:
        """End a grant whatever its open state (withdraw a request, revoke a grant); callers check permission."""
        grant = self._dir.get(grant_id)
        if grant.state is S.REQUESTED:
            return await self.withdraw(grant, actor, reason)
        if grant.state in (S.ACTIVE, S.ACTIVATING, S.REVOKING, S.APPROVED):
            if grant.state is S.APPROVED:
                grant = await self.activate(grant, actor=actor)
            return await self.revoke(grant.id, actor=actor, reason=reason)
        raise UserError(f"{grant.id} is already {grant.state.value}")

    async def withdraw(self, grant: Grant, actor: str, reason: str) -> Grant:
        """Close an undecided request as withdrawn (by its requester, an admin, offboarding, lost groups)."""
        names = await self._dir.names(grant)
        with self._ledger.tx.atomic():
            updated = self._ledger.move(
                grant,
                GrantEvent.WITHDRAW,
                actor=actor,
                reason=reason,
                change=GrantChange(ended_at=self._clock.now(), failure=reason[:500]),
                note=AuditNote(
                    A.GRANT_WITHDRAWN, names[0], outcome="withdrawn", reason=reason, details={"why": reason}
                ),
            )
            if updated is None:
                return self._dir.reload(grant.id)
            facts = self._dir.facts(updated, names)
            self._ledger.card(facts, approvers=self._dir.approvers_of(facts.rule, grant.slack_user))
            self._ledger.status(facts)
            if actor != grant.slack_user:
                self._ledger.tell(facts, HolderEvent.WITHDRAWN, by=actor, why=reason)
        return updated

    async def _close(self, grant: Grant, reason: str) -> None:
        """Offboarding one open grant: withdraw a request, activate-then-revoke an approved one, revoke the rest."""
        if grant.state is S.REQUESTED:
            await self.withdraw(grant, "system", reason)
            return
        if grant.state is S.APPROVED:
            await self.activate(grant, actor="system")
        await self.revoke(grant.id, actor="system", reason=reason)

    async def revoke_all_for_user(self, slack_user: str, *, reason: str) -> int:
        """Offboarding: revoke every active grant of the user and close their pending requests."""
        count = 0
        for grant in self._grants.find(slack_user=slack_user, states=OPEN):
            try:
                await self._close(grant, reason)
                count += 1
            except UpstreamError:
                log.warning("could not revoke %s now; the reconciler retries", grant.id, exc_info=True)
        return count

    async def revoke_for_removed_groups(self, slack_user: str, removed_groups: Sequence[str]) -> int:
        """Revoke grants whose `via_groups` no longer intersect the user's current groups."""
        ident = self._dir.maybe_identity(slack_user)
        groups = (set(ident.groups) if ident is not None else set()) - set(removed_groups)
        count = 0
        for grant in self._grants.find(slack_user=slack_user, states=OPEN):
            if set(grant.via_groups) & groups:
                continue
            try:
                await self._close(grant, "no longer in group " + ", ".join(grant.via_groups or removed_groups))
                count += 1
            except UpstreamError:
                log.warning("could not revoke %s now; the reconciler retries", grant.id, exc_info=True)
        return count

    # --- warnings ---------------------------------------------------------------------------------------

    async def warn_expiring(self, now: int, lead_s: int) -> int:
        """DM holders once per expiry time, `lead_s` before it, with an Extend button."""
        count = 0
        for grant in self._grants.find(states=(S.ACTIVE,)):
            if not needs_expiry_warning(grant, now, timedelta(seconds=lead_s)):
                continue
            facts = await self._dir.facts_of(grant)
            if self._ledger.tell(facts, HolderEvent.EXPIRING, f":{grant.expires_at}"):
                count += 1
        return count
