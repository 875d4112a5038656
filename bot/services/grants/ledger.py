"""The grant ledger: the one move of a grant (compare-and-set, history, audit) and where each grant notice goes.

Every change of a grant's state goes through `move`, inside one transaction with the notices the caller queues
after it: either all of it is stored or none of it. A lost compare-and-set returns None and changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace

from bot.core.grant_lifecycle import GrantEvent, sources, transition
from bot.core.model import Grant, GrantChange, GrantState, HistoryEntry
from bot.core.notices import (
    ActivationAbandoned,
    ApprovalCard,
    ApproverAsked,
    BreakGlassUsed,
    ExtensionAsked,
    GrantChanged,
    GrantFacts,
    GrantStatus,
    HolderEvent,
)
from bot.core.ports import Clock
from bot.core.storage import GrantStore, Transactions
from bot.services.audit import AuditLog
from bot.services.outbox import Outbox


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


NO_CHANGE = GrantChange()
"""A move that changes nothing but the state."""


@dataclass(frozen=True)
class AuditNote:
    """The audit event a move records (its details are the grant's details plus `details`)."""

    action: str
    target: str
    outcome: str = "ok"
    reason: str = ""
    details: Mapping[str, object] = field(default_factory=dict)


class Ledger:
    """Moves grants and queues what people must be told about them."""

    def __init__(self, *, tx: Transactions, grants: GrantStore, audit: AuditLog, outbox: Outbox, clock: Clock) -> None:
        self.tx = tx
        self._grants = grants
        self._audit = audit
        self._outbox = outbox
        self._clock = clock

    # --- storing ----------------------------------------------------------------------------------------

    def create(self, grant: Grant, *, actor: str, why: str, note: AuditNote) -> None:
        """Store a new request with its first history entry and audit event."""
        now = self._clock.now()
        with self.tx.atomic():
            self._grants.insert(grant, now)
            self._grants.add_history(HistoryEntry(grant.id, None, grant.state.value, now, actor, why))
            self._record(grant, actor, note)

    def move(
        self,
        grant: Grant,
        event: GrantEvent | None,
        *,
        actor: str,
        reason: str = "",
        change: GrantChange = NO_CHANGE,
        note: AuditNote | None = None,
    ) -> Grant | None:
        """Fire `event` on the grant (None: change it within its state), record history and `note`; None if lost."""
        now = self._clock.now()
        if event is None:
            expected: tuple[GrantState, ...] = (grant.state,)
            to = grant.state
        else:
            expected, to = sources(event), transition(grant.state, event)
            change = replace(change, state=to)
        with self.tx.atomic():
            if not self._grants.update(grant.id, expected, change, now):
                return None
            self._grants.add_history(HistoryEntry(grant.id, grant.state.value, to.value, now, actor, reason))
            updated = self._grants.get(grant.id)
            assert updated is not None
            if note is not None:
                self._record(updated, actor, note)
        return updated

    def audit_batch(self) -> AbstractContextManager[None]:
        """Inside the caller's transaction: chain the audit events recorded meanwhile with one append (AuditLog)."""
        return self._audit.batch()

    def mark(self, grant_id: str, expected: Sequence[GrantState], change: GrantChange) -> bool:
        """Change bookkeeping columns without a state change or history (retries, alerts, drift flags)."""
        return self._grants.update(grant_id, expected, change, self._clock.now())

    def record(self, grant: Grant, actor: str, note: AuditNote) -> None:
        """Audit an event about a grant that is not a move (an approval that is not yet the last one)."""
        self._record(grant, actor, note)

    def _record(self, grant: Grant, actor: str, note: AuditNote) -> None:
        self._audit.record(
            note.action,
            actor=actor,
            target=note.target,
            outcome=note.outcome,
            reason=note.reason,
            details=grant_details(grant, **note.details),
        )

    # --- telling people (always inside the caller's transaction) ----------------------------------------

    def status(self, facts: GrantFacts) -> None:
        """The grant's one grants-channel message: posted the first time, edited after."""
        g = facts.grant
        ref = f"grant:{g.id}"
        notice = GrantStatus(facts)
        if not self._outbox.posted(ref) and not self._outbox.queued(f"{ref}:post"):
            self._outbox.post("grants", f"{ref}:post", notice, ref=ref)
        else:
            key = f"{ref}:{g.state.value}:{g.extensions}:{len(g.approvals)}"
            self._outbox.update(ref, key, notice, channel_name="grants")

    def card(self, facts: GrantFacts, *, first: bool = False, approvers: Sequence[str] = ()) -> None:
        """The request's approvals-channel card: posted when asked, edited as approvers decide.

        The DMs that asked `approvers` are edited the same way, so no stale Approve/Deny is left behind.
        """
        g = facts.grant
        ref = f"approval:{g.id}"
        if first:
            self._outbox.post("approvals", f"{ref}:post", ApprovalCard(facts), ref=ref)
            return
        state = f"{g.state.value}:{len(g.approvals)}"
        self._outbox.update(ref, f"{ref}:{state}", ApprovalCard(facts), channel_name="approvals")
        for approver in approvers:
            asked = f"ask:{g.id}:{approver}"
            if self._outbox.queued(asked):
                self._outbox.update(asked, f"{asked}:{state}", ApprovalCard(facts))

    def ask(self, facts: GrantFacts, approvers: Sequence[str]) -> None:
        """DM each approver the request with Approve/Deny (urgent: it goes before DMs and edits)."""
        g = facts.grant
        for approver in approvers:
            key = f"ask:{g.id}:{approver}"
            self._outbox.dm(approver, key, ApproverAsked(facts), urgent=True, ref=key)

    def refresh_card(self, facts: GrantFacts) -> None:
        """Bring the approvals card (if this grant has one) to the grant's latest state, after queued edits."""
        if self._outbox.queued(f"approval:{facts.grant.id}:post"):
            self.card(facts)

    def tell(self, facts: GrantFacts, event: HolderEvent, suffix: str = "", *, by: str = "", why: str = "") -> bool:
        """DM the requester or holder about one event (once per grant, event and `suffix`); True when queued now.

        `by` is who ended or decided it (a Slack user id, `system`, `cli:…`) and `why` their reason, when known.
        """
        g = facts.grant
        notice = GrantChanged(facts, event, by=by, why=why)
        return self._outbox.dm(g.slack_user, f"dm:{g.id}:{event.value}{suffix}", notice)

    def break_glass(self, facts: GrantFacts, mentions: Sequence[str], usergroups: Sequence[str] = ()) -> None:
        """Announce a break-glass grant in the approvals and security channels."""
        notice = BreakGlassUsed(facts, tuple(mentions), tuple(usergroups))
        for channel in ("approvals", "security"):
            self._outbox.post(channel, f"breakglass:{facts.grant.id}:{channel}", notice)

    def alert(self, key: str, notice: ActivationAbandoned) -> None:
        """Post one alert about a grant to the security channel (once per idempotency `key`)."""
        self._outbox.post("security", key, notice)

    def ask_extension(self, facts: GrantFacts, extra_s: int, number: int) -> None:
        """Ask the approvers to approve extension `number` of a grant."""
        key = f"ext:{facts.grant.id}:{number}"
        notice = ExtensionAsked(facts, extra_s, number)
        self._outbox.post("approvals", f"{key}:post", notice, ref=f"extension:{facts.grant.id}:{number}")
