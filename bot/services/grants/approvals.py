"""Approving and denying requests, and expiring the ones nobody decided in time."""

from __future__ import annotations

from dataclasses import replace

from bot.core import audit_actions as A
from bot.core.errors import BotError, NotAllowed, UserError
from bot.core.grant_lifecycle import GrantEvent, request_expired
from bot.core.model import Approval, GrantChange, GrantState, Identity, person_key
from bot.core.notices import HolderEvent
from bot.core.policy import can_approve
from bot.core.ports import Clock
from bot.core.storage import GrantStore
from bot.services.grants.directory import Directory
from bot.services.grants.ledger import AuditNote, Ledger
from bot.services.grants.lifecycle import Lifecycle
from bot.services.grants.outcomes import DecisionOutcome

S = GrantState
MAX_COMMENT = 500


class _Unchanged(BotError):
    """Raised inside a transaction to roll it back when a compare-and-set lost a race."""


class Approvals:
    """Records approvers' decisions; the last approval needed activates the grant."""

    def __init__(
        self, *, directory: Directory, ledger: Ledger, lifecycle: Lifecycle, grants: GrantStore, clock: Clock
    ) -> None:
        self._dir = directory
        self._ledger = ledger
        self._lifecycle = lifecycle
        self._grants = grants
        self._clock = clock

    async def decide(
        self, grant_id: str, approver: Identity | str, decision: str, comment: str = ""
    ) -> DecisionOutcome:
        """Record one approver's Approve/Deny; a replay or a second click changes nothing."""
        if decision not in ("approve", "deny"):
            raise UserError(f"unknown decision {decision}")
        ident = self._dir.identity(approver)
        grant = self._dir.get(grant_id)
        if grant.state is not S.REQUESTED:
            return DecisionOutcome("unchanged", f"{grant.id} is already {grant.state.value}", grant)
        rule = self._dir.rule(grant.rule)
        if rule is None:
            raise NotAllowed(f"rule {grant.rule} of {grant.id} no longer exists", "ask an admin")
        me, requester = person_key(ident.issuer, ident.subject), person_key(ident.issuer, grant.subject)
        already = [a.person for a in grant.approvals]
        if ident.slack_user == grant.slack_user:
            me = requester  # the requesting Slack account, whatever identity it is linked to now
        ok, why = can_approve(rule, ident.policy_groups, me, requester, already=already)
        if not ok:
            if me in already:
                return DecisionOutcome("unchanged", why, grant)
            raise NotAllowed(why)
        now = self._clock.now()
        names = await self._dir.names(grant)
        comment = comment[:MAX_COMMENT]
        final = False
        lapsed: frozenset[str] = frozenset()
        try:
            with self._ledger.tx.atomic():
                vote = Approval(ident.slack_user, decision, now, comment, ident.issuer, ident.subject)
                if not self._grants.add_approval(grant.id, vote):
                    raise _Unchanged
                if decision == "deny":
                    updated = self._ledger.move(
                        grant,
                        GrantEvent.DENY,
                        actor=ident.slack_user,
                        reason=comment,
                        change=GrantChange(ended_at=now),
                        note=AuditNote(
                            A.GRANT_DENIED,
                            names[0],
                            outcome="denied",
                            reason=comment,
                            details={"approver": ident.slack_user, "why": comment or "denied by approver"},
                        ),
                    )
                    if updated is None:
                        raise _Unchanged
                    status, message = "denied", f"{grant.id} denied"
                else:
                    approvals = [a for a in self._dir.reload(grant.id).approvals if a.decision == "approve"]
                    # Every earlier approval is checked again now: its person may have been unlinked or left the
                    # approver groups since; only approvals that still hold count, one per person.
                    counted = {a.person for a in approvals if self._dir.still_approver(a.person, rule, requester)}
                    lapsed = frozenset({a.person for a in approvals} - counted)
                    final = len(counted) >= max(1, grant.approvals_required)
                    if final:
                        moved = self._ledger.move(grant, GrantEvent.APPROVE, actor=ident.slack_user, reason=comment)
                        if moved is None:
                            raise _Unchanged
                    updated = self._dir.reload(grant.id)
                    self._ledger.record(
                        updated,
                        ident.slack_user,
                        AuditNote(
                            A.GRANT_APPROVED,
                            names[0],
                            reason=comment,
                            details={
                                "approver": ident.slack_user,
                                "approver_subject": ident.subject,
                                "approvals": len(counted),
                                "approvals_required": grant.approvals_required,
                                "lapsed": len(lapsed),
                                "final": final,
                            },
                        ),
                    )
                    if final:
                        status, message = "approved", f"{grant.id} approved"
                    else:
                        left = grant.approvals_required - len(counted)
                        status, message = "recorded", f"approval recorded; {left} more needed for {grant.id}"
                        if lapsed:
                            message += (
                                f" ({len(lapsed)} earlier approval no longer counts: "
                                "approver unlinked or left the group)"
                            )
                facts = replace(self._dir.facts(updated, names), lapsed=lapsed)
                self._ledger.card(facts, approvers=self._dir.approvers_of(rule, grant.slack_user))
                self._ledger.status(facts)
                if status == "denied":
                    self._ledger.tell(facts, HolderEvent.DENIED, by=ident.slack_user, why=comment)
                elif status != "recorded":
                    self._ledger.tell(facts, HolderEvent(status))
        except _Unchanged:
            return DecisionOutcome("unchanged", f"{grant.id} was already decided", self._dir.reload(grant.id))
        if final:
            updated = await self._lifecycle.activate(updated, actor=ident.slack_user)
            facts = self._dir.facts(updated, names)
        return DecisionOutcome(status, message, updated, facts)

    async def expire_requests(self, now: int) -> int:
        """Undecided requests past request_expires_at → expired_request; the approvals message says so."""
        count = 0
        for grant in self._grants.find(states=(S.REQUESTED,)):
            if not request_expired(grant, now):
                continue
            names = await self._dir.names(grant)
            why = "nobody decided in time"
            with self._ledger.tx.atomic():
                updated = self._ledger.move(
                    grant,
                    GrantEvent.EXPIRE_REQUEST,
                    actor="system",
                    reason=why,
                    change=GrantChange(ended_at=now),
                    note=AuditNote(A.GRANT_REQUEST_EXPIRED, names[0], reason=why),
                )
                if updated is None:
                    continue
                facts = self._dir.facts(updated, names)
                self._ledger.card(facts, approvers=self._dir.approvers_of(facts.rule, grant.slack_user))
                self._ledger.status(facts)
                self._ledger.tell(facts, HolderEvent.REQUEST_EXPIRED)
                count += 1
        return count
