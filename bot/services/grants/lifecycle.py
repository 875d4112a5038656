"""A grant's life after the decision: activation, failure, revocation, withdrawal, offboarding, expiry warnings.

Each step records its intent before Rancher is touched (`activating`, `revoking`), and each is idempotent: a rerun,
or the reconciler after a crash, finishes whatever was interrupted. No grant stays in a transitional state:
- every Rancher answer to a create is classified (core.rancher_answers): a refusal ends the grant `failed` with the
  reason in plain words (requester told, audited); a transient failure is retried with backoff (the
  `finish_activations` job) until `activation_timeout` after the activation began, then the grant fails and the
  security channel gets one alert;
- a deleted binding that Rancher still shows `removed` (finalizers waiting for the downstream cluster) keeps the
  grant `revoking` until it is gone; the sweep alerts when that lasts.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

from bot.core import audit_actions as A
from bot.core.durations import format_duration
from bot.core.errors import NotAllowed, UpstreamError, UserError
from bot.core.grant_lifecycle import OPEN, GrantEvent, needs_expiry_warning
from bot.core.model import Deletion, Grant, GrantChange, GrantState, Identity, RancherUser
from bot.core.notices import ActivationAbandoned, HolderEvent
from bot.core.ports import Clock
from bot.core.rancher_answers import Verdict, classify
from bot.core.retry import backoff
from bot.core.storage import GrantStore
from bot.services.grants.bindings import Bindings, binding_name
from bot.services.grants.directory import Directory, Names
from bot.services.grants.ledger import AuditNote, Ledger

log = logging.getLogger(__name__)

S = GrantState
TERMINATING_NOTE = "Rancher is still removing the binding (its finalizers wait for the downstream cluster)"


@dataclass(frozen=True)
class LifecycleTiming:
    """How long an activation may keep failing transiently, and the backoff between tries (seconds)."""

    activation_timeout: int = 600
    retry_base: float = 5.0
    retry_cap: float = 60.0


MAX_REASON = 500


@dataclass(frozen=True)
class Released:
    """A `revoking` grant whose binding Rancher no longer has: what `record_revocations` needs to end it."""

    grant: Grant
    names: Names
    final_state: GrantState
    actor: str
    reason: str


class Lifecycle:
    """Activates and ends grants."""

    def __init__(
        self,
        *,
        directory: Directory,
        ledger: Ledger,
        bindings: Bindings,
        grants: GrantStore,
        clock: Clock,
        timing: LifecycleTiming | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._dir = directory
        self._ledger = ledger
        self._bindings = bindings
        self._grants = grants
        self._clock = clock
        self.timing = timing or LifecycleTiming()
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not crypto

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
        return await self._attempt(moved, adopt=False, user=user)

    async def finish_activation(self, grant: Grant) -> Grant:
        """Finish a grant in `activating`: adopt or create its tagged binding, then mark it active (or failed)."""
        current = self._dir.reload(grant.id)
        if current.state is not S.ACTIVATING:
            return current
        why = self._unhonourable(current)
        if why:
            try:
                await self._bindings.delete(current)
            except UpstreamError as err:  # the reconciler deletes the failed grant's tagged binding later
                log.warning("could not delete the binding of %s now: %s", current.id, err)
            return await self._fail(current, why)
        return await self._attempt(current, adopt=True)

    async def _attempt(self, grant: Grant, *, adopt: bool, user: RancherUser | None = None) -> Grant:
        """One try at the binding; the answer decides: active, failed (refused), or retried later (transient)."""
        try:
            return await self._finish(grant, adopt=adopt, user=user)
        except UpstreamError as err:
            verdict = classify(err, role=grant.role_id, where=await self._dir.display(grant.target))
            if verdict.refused:
                return await self._fail(grant, verdict.why, detail=verdict.detail)
            return await self._retry_later(grant, verdict)

    def activating_since(self, grant: Grant) -> int:
        """When the grant last entered `activating` (its history; the last update when that is missing)."""
        for entry in reversed(self._grants.history(grant.id)):
            if entry.to_state == S.ACTIVATING.value:
                return entry.at
        return grant.updated_at or grant.requested_at

    async def _retry_later(self, grant: Grant, verdict: Verdict) -> Grant:
        """Schedule another try with backoff, or give up once `activation_timeout` has passed since it began."""
        now = self._clock.now()
        waited = now - self.activating_since(grant)
        if waited >= self.timing.activation_timeout:
            return await self._abandon(grant, verdict, waited)
        current = self._dir.reload(grant.id)
        attempts = current.attempts + 1
        delay = backoff(attempts, self.timing.retry_base, self.timing.retry_cap, self._rng)
        change = GrantChange(attempts=attempts, next_attempt_at=now + delay, failure=verdict.why[:500])
        self._ledger.mark(grant.id, [S.ACTIVATING], change)
        log.warning("activation of %s failed (try %d, next in %ds): %s", grant.id, attempts, delay, verdict.why)
        return self._dir.reload(grant.id)

    async def _abandon(self, grant: Grant, verdict: Verdict, waited: int) -> Grant:
        """Fail a grant Rancher kept failing for `activation_timeout`, with one alert to the security channel."""
        limit = format_duration(timedelta(seconds=self.timing.activation_timeout))
        why = f"Rancher did not create the binding within {limit}: {verdict.why}"
        try:
            await self._bindings.delete(grant)  # a create that landed while its answer was lost
        except UpstreamError as err:  # the reconciler deletes the failed grant's tagged binding later
            log.warning("could not delete the binding of %s now: %s", grant.id, err)
        return await self._fail(
            grant, why, detail=verdict.detail, alert=ActivationAbandoned(grant, waited, verdict.why)
        )

    def _unhonourable(self, grant: Grant) -> str:
        """Why an interrupted activation must not be completed any more (empty when it may)."""
        if self._dir.rule(grant.rule) is None:
            return f"rule {grant.rule} no longer exists"
        ident = self._dir.maybe_identity(grant.slack_user)
        if ident is None or ident.subject != grant.subject:
            return "the requester is no longer linked"
        if grant.via_groups and not set(grant.via_groups) & set(ident.policy_groups):
            return "the requester is no longer in group " + ", ".join(grant.via_groups)
        return ""

    async def _finish(self, grant: Grant, *, adopt: bool, user: RancherUser | None = None) -> Grant:
        binding = await self._bindings.ensure(grant, adopt=adopt, user=user)
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
                    attempts=0,
                    next_attempt_at=0,
                    failure="",
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

    async def _fail(
        self, grant: Grant, why: str, *, detail: str = "", alert: ActivationAbandoned | None = None
    ) -> Grant:
        """End an activation `failed` with the reason in plain words: audited, the requester told, maybe an alert."""
        details: dict[str, object] = {"why": why}
        if detail:
            details["rancher"] = detail[:500]
        names = await self._dir.names(grant)
        with self._ledger.tx.atomic():
            updated = self._ledger.move(
                grant,
                GrantEvent.FAIL,
                actor="system",
                reason=why,
                change=GrantChange(failure=why[:500], ended_at=self._clock.now(), next_attempt_at=0),
                note=AuditNote(A.GRANT_FAILED, names[0], outcome="failed", reason=why, details=details),
            )
            if updated is None:
                return self._dir.reload(grant.id)
            facts = self._dir.facts(updated, names)
            self._ledger.status(facts)
            self._ledger.refresh_card(facts)
            self._ledger.tell(facts, HolderEvent.FAILED)
            if alert is not None:
                self._ledger.alert(f"activation-abandoned:{grant.id}", alert)
        return updated

    # --- revocation -------------------------------------------------------------------------------------

    async def finish_revocation(
        self, grant: Grant, *, final_state: GrantState = S.EXPIRED, actor: str = "system", reason: str = ""
    ) -> Grant:
        """Delete the binding of a `revoking` grant (already gone counts), then mark it expired or revoked.

        While Rancher still shows the binding `removed` (finalizers pending), the grant stays `revoking` with its
        next check scheduled; the sweep finishes it once the binding is gone.
        """
        released = await self.release_binding(grant, final_state=final_state, actor=actor, reason=reason)
        if isinstance(released, Grant):
            return released
        return self.record_revocations([released])[0]

    async def release_binding(
        self, grant: Grant, *, final_state: GrantState = S.EXPIRED, actor: str = "system", reason: str = ""
    ) -> Released | Grant:
        """The Rancher half of `finish_revocation`: delete the binding; Released when it is gone, else the grant.

        Nothing about the end is stored here: the grant stays `revoking` until `record_revocations` commits, so a
        crash in between leaves it for the sweep to finish (deleting again is harmless: 404 counts as gone).
        """
        if final_state not in (S.EXPIRED, S.REVOKED):
            raise ValueError("final_state must be EXPIRED or REVOKED")
        current = self._dir.reload(grant.id)
        if current.state is not S.REVOKING:
            return current
        if await self._bindings.delete(current) is Deletion.TERMINATING:
            now = self._clock.now()
            attempts = current.attempts + 1
            delay = backoff(attempts, self.timing.retry_base, self.timing.retry_cap, self._rng)
            change = GrantChange(attempts=attempts, next_attempt_at=now + delay, failure=TERMINATING_NOTE)
            self._ledger.mark(current.id, [S.REVOKING], change)
            return self._dir.reload(current.id)
        return Released(current, await self._dir.names(current), final_state, actor, reason)

    def record_revocations(self, released: Sequence[Released]) -> list[Grant]:
        """Mark grants whose bindings are gone expired or revoked, in one transaction with one audit-chain append.

        Each grant is moved (compare-and-set, history), audited and its holder told exactly as one at a time; a
        grant another writer ended meanwhile loses its compare-and-set and is returned as stored. Either all of
        them are stored or none (an exception rolls the whole batch back; the grants stay `revoking`).
        """
        out: list[Grant] = []
        with self._ledger.tx.atomic(), self._ledger.audit_batch():
            for item in released:
                out.append(self._record_revocation(item))
        return out

    def _record_revocation(self, item: Released) -> Grant:
        current, names, actor, reason = item.grant, item.names, item.actor, item.reason
        expired = item.final_state is S.EXPIRED
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
            if grant.state is S.ACTIVATING:  # Rancher keeps failing: end it now so the revocation wins
                try:
                    await self._bindings.delete(grant)
                except UpstreamError as err:  # the reconciler deletes the failed grant's tagged binding later
                    log.warning("could not delete the binding of %s now: %s", grant.id, err)
                who = "revoked by the holder" if actor == grant.slack_user else f"revoked by {actor}"
                return await self._fail(grant, f"{reason or who} before Rancher created the binding")
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
        return self.withdraw_named(grant, actor, reason, await self._dir.names(grant))

    def withdraw_named(self, grant: Grant, actor: str, reason: str, names: Names) -> Grant:
        """`withdraw` with its names already looked up: no await, so it can run inside the caller's transaction."""
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

    async def request_names(self, slack_user: str) -> dict[str, Names]:
        """The names of a Slack account's undecided requests, looked up before a transaction withdraws them."""
        return {g.id: await self._dir.names(g) for g in self._grants.find(slack_user=slack_user, states=(S.REQUESTED,))}

    def withdraw_requests(self, slack_user: str, reason: str, names: Mapping[str, Names] | None = None) -> int:
        """Withdraw every undecided request of a Slack account (inside the caller's transaction; no Rancher call).

        `names` come from `request_names`; a request made since is named by its ids.
        """
        withdrawn = 0
        for grant in self._grants.find(slack_user=slack_user, states=(S.REQUESTED,)):
            named = (names or {}).get(grant.id) or (grant.target.key, grant.role_id)
            if self.withdraw_named(grant, "system", reason, named).state is S.WITHDRAWN:
                withdrawn += 1
        return withdrawn

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
        groups = (set(ident.policy_groups) if ident is not None else set()) - set(removed_groups)
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
