"""Extending grants: within the rule's caps, at once for self-service rules, after re-approval otherwise."""

from __future__ import annotations

from datetime import timedelta

from bot.core import audit_actions as A
from bot.core.durations import format_duration
from bot.core.errors import BotError, NotAllowed, NotFound, UserError, is_number, shown
from bot.core.grant_lifecycle import ExtensionRequest, ExtensionState, can_extend, extension_sources
from bot.core.model import Grant, GrantChange, Identity, person_key
from bot.core.notices import HolderEvent
from bot.core.policy import Rule, can_approve
from bot.core.ports import Clock
from bot.core.storage import ExtensionStore
from bot.services.grants.directory import Directory, Names
from bot.services.grants.ledger import AuditNote, Ledger
from bot.services.grants.outcomes import ExtendOutcome

X = ExtensionState


class _Lost(BotError):
    """Raised inside a transaction to roll it back when an extension no longer fits or lost a race."""


class Extensions:
    """Adds time to active grants; every extension is a request of its own (`number` = the grant's count then)."""

    def __init__(self, *, directory: Directory, ledger: Ledger, requests: ExtensionStore, clock: Clock) -> None:
        self._dir = directory
        self._ledger = ledger
        self._requests = requests
        self._clock = clock

    async def extend(self, who: Identity | str, grant_id: str, duration: timedelta) -> ExtendOutcome:
        """Add time to the caller's active grant within the rule's caps; re-approval when the rule needs approval."""
        slack_user = who.slack_user if isinstance(who, Identity) else who
        grant = self._dir.get(grant_id)
        if grant.slack_user != slack_user:
            raise NotAllowed(f"only the holder can extend {grant.id}")
        self._dir.identity(slack_user)
        rule = self._dir.rule(grant.rule)
        if rule is None:
            raise NotAllowed(f"rule {grant.rule} of {grant.id} no longer exists")
        now = self._clock.now()
        ok, why = can_extend(grant, rule, duration, now)
        if not ok:
            raise UserError(why)
        extra = int(duration.total_seconds())
        request = ExtensionRequest(grant.id, grant.extensions, extra, now, slack_user)
        if rule.approval.required and not rule.break_glass:
            facts = await self._dir.facts_of(grant)
            with self._ledger.tx.atomic():
                if not self._requests.open(request):
                    return ExtendOutcome(
                        "unchanged", f"an extension of {grant.id} is already waiting for approval", grant
                    )
                self._ledger.ask_extension(facts, extra, grant.extensions)
            return ExtendOutcome(
                "pending", f"extension of {grant.id} by {format_duration(duration)} sent to the approvers", grant
            )
        names = await self._dir.names(grant)
        try:
            with self._ledger.tx.atomic():
                approved = ExtensionRequest(
                    grant.id, grant.extensions, extra, now, slack_user, X.APPROVED, (), now, slack_user
                )
                if not self._requests.open(approved):
                    raise _Lost
                updated = self._apply(grant, rule, extra, actor=slack_user, names=names)
        except _Lost:
            return ExtendOutcome("unchanged", f"{grant.id} was just extended", self._dir.reload(grant.id))
        return ExtendOutcome("extended", why, updated)

    def extension_room(self, grant: Grant) -> timedelta:
        """How much more time the rule allows for this grant (zero when none)."""
        rule = self._dir.rule(grant.rule)
        if rule is None or grant.activated_at is None or grant.expires_at is None:
            return timedelta(0)
        if grant.extensions >= rule.max_extensions:
            return timedelta(0)
        return max(timedelta(0), rule.max_duration - timedelta(seconds=grant.expires_at - grant.activated_at))

    async def extend_default(self, who: Identity | str, grant_id: str) -> ExtendOutcome:
        """The Extend button: add the rule's default duration, or whatever room is left if less."""
        grant = self._dir.get(grant_id)
        rule = self._dir.rule(grant.rule)
        room = self.extension_room(grant)
        if rule is None or room <= timedelta(0):
            return await self.extend(who, grant_id, rule.default_duration if rule else timedelta(hours=1))
        return await self.extend(who, grant_id, min(rule.default_duration, room))

    async def decide_extension(self, ref: str, approver: Identity | str, decision: str) -> ExtendOutcome:
        """Approve or deny a pending extension (`ref` is `<grant id>:<extension number>` from the button)."""
        gid, _, number_text = ref.partition(":")
        grant = self._dir.get(gid)
        known = is_number(number_text) and len(number_text) < 6
        request = self._requests.get(grant.id, int(number_text)) if known else None
        if request is None:
            raise NotFound(f"there is no pending extension {shown(ref)}")
        if request.state is not X.PENDING or grant.extensions != request.number:
            return ExtendOutcome("unchanged", f"the extension of {grant.id} was already decided", grant)
        ident = self._dir.identity(approver)
        rule = self._dir.rule(grant.rule)
        if rule is None:
            raise NotAllowed(f"rule {grant.rule} of {grant.id} no longer exists")
        me, requester = person_key(ident.issuer, ident.subject), person_key(ident.issuer, grant.subject)
        if ident.slack_user == grant.slack_user:
            me = requester
        approvers = [a if "|" in a else f"slack:{a}" for a in request.approvers]  # Slack ids: rows before m005
        ok, why = can_approve(rule, ident.policy_groups, me, requester, already=approvers)
        if not ok:
            if me in approvers:
                return ExtendOutcome("unchanged", why, grant)
            raise NotAllowed(why)
        now = self._clock.now()
        if decision == "deny":
            facts = await self._dir.facts_of(grant)
            with self._ledger.tx.atomic():
                if not self._requests.move(
                    grant.id, request.number, extension_sources(X.DENIED), X.DENIED, by=ident.slack_user, at=now
                ):
                    return ExtendOutcome("unchanged", "already decided", grant)
                self._ledger.tell(facts, HolderEvent.EXTENSION_DENIED, f":{request.number}")
            return ExtendOutcome("denied", f"extension of {grant.id} denied", grant)
        self._requests.add_approver(grant.id, request.number, me, now)
        counted = {p for p in [*approvers, me] if self._dir.still_approver(p, rule, requester)}
        if len(counted) < max(1, rule.approval.count):
            return ExtendOutcome(
                "pending", f"approval recorded; {rule.approval.count - len(counted)} more needed", grant
            )
        if not self._requests.move(
            grant.id, request.number, extension_sources(X.APPROVED), X.APPROVED, by=ident.slack_user, at=now
        ):
            return ExtendOutcome("unchanged", "already decided", grant)
        names = await self._dir.names(grant)
        try:
            with self._ledger.tx.atomic():
                updated = self._apply(grant, rule, request.extra_s, actor=ident.slack_user, names=names)
        except _Lost:
            return ExtendOutcome("unchanged", f"{grant.id} can no longer be extended", self._dir.reload(grant.id))
        return ExtendOutcome("extended", f"{grant.id} extended", updated)

    def _apply(self, grant: Grant, rule: Rule, extra: int, *, actor: str, names: Names) -> Grant:
        """Apply an approved extension once (inside the caller's transaction); raise _Lost when it no longer fits."""
        now = self._clock.now()
        current = self._dir.reload(grant.id)
        ok, _ = can_extend(current, rule, timedelta(seconds=extra), now)
        if not ok or current.extensions != grant.extensions or current.expires_at is None:
            raise _Lost
        if not self._requests.move(
            grant.id, grant.extensions, extension_sources(X.APPLIED), X.APPLIED, by=actor, at=now
        ):
            raise _Lost
        expires = current.expires_at + extra
        total = expires - (current.activated_at or now)
        updated = self._ledger.move(
            current,
            None,
            actor=actor,
            reason=f"extended by {extra}s",
            change=GrantChange(expires_at=expires, extensions=current.extensions + 1, duration_s=total),
        )
        if updated is None:
            raise _Lost
        self._ledger.record(
            updated,
            actor,
            AuditNote(A.GRANT_EXTENDED, names[0], details={"extra_s": extra, "extensions": updated.extensions}),
        )
        facts = self._dir.facts(updated, names)
        self._ledger.status(facts)
        self._ledger.tell(facts, HolderEvent.EXTENDED, f":{updated.extensions}")
        return updated
