"""Keeping links honest: refresh each link at the IdP, follow group changes, end links the IdP stops vouching for.

A refresh stores the rotated refresh token by compare-and-swap before the new ID token is even checked, so a
refused token cannot burn the rotated one. A refused refresh is classified (core.token_refusals): deactivation
revokes the link and every grant, a re-authentication prompt asks the user to sign in again within the grace
(services.offboarding), an answer only a directory can interpret asks the directory. Timeouts and 5xx are retried
with backoff and never revoke anything. Groups follow core.groups: an unknown answer never removes a group.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

from bot.core import audit_actions
from bot.core.errors import InvalidGrantError, TokenRejected, TransientUpstreamError, UpstreamError
from bot.core.groups import GroupsAnswer
from bot.core.model import Identity, LinkRecord, LinkStatus
from bot.core.notices import RefreshFailing
from bot.core.ports import AccountDirectory, AccountStatus, Clock, GroupSource, IdentityProvider, Sealer
from bot.core.storage import LeaseStore, LinkStore, Transactions
from bot.core.token_refusals import RefusalKind
from bot.services.audit import AuditLog
from bot.services.group_sources import ClaimGroups, unknown_reason, warn_unknown
from bot.services.offboarding import LinkEnding, Offboarding, discard_token
from bot.services.outbox import Outbox
from bot.services.refusals import Refusals, identity_key

__all__ = ["IdentitySync", "Offboarding", "RefreshOutcome", "RefreshReport", "discard_token"]

log = logging.getLogger(__name__)

REFRESH_LEASE_TTL = 120
"""Seconds one process holds a link while refreshing it (two processes never refresh the same link at once)."""
CIRCUIT_BREAK = 5
"""Consecutive failed refreshes that end a run early (the IdP looks down)."""


class RefreshOutcome(StrEnum):
    """What one refresh did."""

    REFRESHED = "refreshed"
    REVOKED = "revoked"
    RELINK = "relink"
    RETRY = "retry"
    SKIPPED = "skipped"


@dataclass
class RefreshReport:
    """Counts of one refresh run."""

    outcomes: dict[str, RefreshOutcome] = field(default_factory=dict)
    relinks_expired: int = 0

    def count(self, outcome: RefreshOutcome) -> int:
        """How many links ended with `outcome`."""
        return sum(1 for o in self.outcomes.values() if o is outcome)


class IdentitySync:
    """Refreshes linked identities at the IdP (the refresh_identities job body)."""

    def __init__(
        self,
        *,
        tx: Transactions,
        links: LinkStore,
        leases: LeaseStore,
        idp: IdentityProvider,
        sealer: Sealer,
        audit: AuditLog,
        outbox: Outbox,
        refusals: Refusals,
        offboarding: Offboarding,
        clock: Clock,
        group_source: GroupSource | None = None,
        directory: AccountDirectory | None = None,
        ending: LinkEnding | None = None,
        refresh_interval: int = 6 * 3600,
        retry_delays: Sequence[float] = (0.5, 2.0),
    ) -> None:
        self._tx = tx
        self._links = links
        self._leases = leases
        self._idp = idp
        self._sealer = sealer
        self._audit = audit
        self._outbox = outbox
        self._refusals = refusals
        self._clock = clock
        self._groups: GroupSource = group_source or ClaimGroups()
        self._directory = directory
        self._ending = ending or LinkEnding(
            tx=tx, links=links, audit=audit, outbox=outbox, offboarding=offboarding, clock=clock
        )
        self._offboarding = offboarding
        self._refresh_interval = int(refresh_interval)
        self._retry_delays = tuple(retry_delays)

    async def refresh_all(self, now: int | None = None) -> RefreshReport:
        """End overdue re-links, then refresh every active link that is due (links carry their own due time)."""
        now = self._clock.now() if now is None else now
        report = RefreshReport()
        report.relinks_expired = await self._ending.expire_relinks(now)
        failing = 0
        for record in self._links.active():
            if record.next_refresh_at is not None and record.next_refresh_at > now:
                continue
            slack_user = record.identity.slack_user
            try:
                outcome = await self.refresh_one(slack_user)
            except Exception:
                log.exception("refreshing the link of %s failed unexpectedly", slack_user)
                outcome = RefreshOutcome.RETRY
            report.outcomes[slack_user] = outcome
            failing = failing + 1 if outcome is RefreshOutcome.RETRY else 0
            if failing >= CIRCUIT_BREAK:
                # The IdP looks down: stop here; the rest stay due and the next run tries them.
                log.warning("stopping the refresh run after %d failures in a row", failing)
                break
        return report

    async def refresh_one(self, slack_user: str) -> RefreshOutcome:
        """Refresh one link: rotate (compare-and-swap first), update groups, end or back off on refusals."""
        record = self._links.get(slack_user)
        if record is None or record.identity.status is not LinkStatus.ACTIVE or not record.sealed_refresh_token:
            return RefreshOutcome.SKIPPED
        lease, owner = f"link-refresh:{slack_user}", secrets.token_hex(8)
        if not self._leases.take(lease, owner, self._clock.now(), REFRESH_LEASE_TTL):
            return RefreshOutcome.SKIPPED
        try:
            return await self._refresh_locked(record)
        finally:
            self._leases.release(lease, owner)

    async def _refresh_locked(self, record: LinkRecord) -> RefreshOutcome:
        identity = record.identity
        slack_user = identity.slack_user
        sealed = str(record.sealed_refresh_token)
        try:
            refresh_token = self._sealer.unseal(sealed)
        except TokenRejected as err:
            return self._refresh_failed(record, err.reason)
        attempt = 0
        while True:
            try:
                tokens = await self._idp.refresh_tokens(refresh_token)
                break
            except InvalidGrantError as err:
                return await self._refused(identity, err)
            except TransientUpstreamError as err:
                if attempt >= len(self._retry_delays):
                    return self._refresh_failed(record, err.message)
                await asyncio.sleep(self._retry_delays[attempt])
                attempt += 1
            except UpstreamError as err:
                return self._refresh_failed(record, err.message)
        now = self._clock.now()
        new_sealed = self._sealer.seal(tokens.refresh_token) if tokens.refresh_token else None
        if tokens.refresh_token != refresh_token and not self._links.swap_refresh_token(
            slack_user, sealed, new_sealed, tokens.access_token_expires_at
        ):
            # The link changed while we refreshed (unlinked, relinked): the new token belongs to nobody. Revoke it
            # unless the same subject is linked again (its revocation could end the new link's IdP session).
            current = self._links.get(slack_user)
            if (
                current is None
                or current.identity.status is not LinkStatus.ACTIVE
                or current.identity.subject != identity.subject
            ):
                await discard_token(self._idp, tokens.refresh_token)
            return RefreshOutcome.SKIPPED
        try:
            login = await self._idp.verify_refresh(tokens, identity.subject)
        except TokenRejected as err:
            self._refusals.record(audit_actions.ID_TOKEN_REJECTED, slack_user, err.reason, notify=True, actor="idp")
            return self._refresh_failed(record, f"ID token rejected: {err.reason}")
        except UpstreamError as err:
            return self._refresh_failed(record, f"identity provider: {err.message}")
        try:
            answer = await self._groups.groups(login)
            unknown_why = "" if answer is not None else unknown_reason(login)
        except TransientUpstreamError as err:
            return self._refresh_failed(record, f"group source: {err.message}")
        except UpstreamError as err:
            answer, unknown_why = None, f"group source refused: {err.message}"
        new = self._with_groups(identity, answer)
        before, after = identity.policy_groups, new.policy_groups
        kept, had = set(after), set(before)
        removed = tuple(g for g in before if g not in kept)
        added = tuple(g for g in after if g not in had)
        with self._tx.atomic():
            self._links.record_refresh(
                slack_user,
                email=login.email or identity.email,
                name=login.name or identity.name,
                groups=new.groups,
                group_names=new.group_names,
                at=now,
                token_expires_at=login.access_token_expires_at,
                next_refresh_at=now + self._refresh_interval,
            )
            self._audit.record(
                audit_actions.TOKEN_REFRESHED,
                actor="system",
                target=slack_user,
                details={
                    "slack_user": slack_user,
                    "rotated": tokens.refresh_token != refresh_token,
                    "groups_added": list(added),
                    "groups_removed": list(removed),
                    "groups_known": answer is not None,
                },
            )
            if answer is None:
                warn_unknown(
                    self._audit, self._outbox, slack_user, unknown_why, now=now, at_link=False, kept=new.groups
                )
        if removed:
            await self._offboarding.groups_removed(slack_user, removed)
        return RefreshOutcome.REFRESHED

    @staticmethod
    def _with_groups(identity: Identity, answer: GroupsAnswer | None) -> Identity:
        """The identity with the answer's groups; an unknown answer keeps the ones it had (core.groups rule 3)."""
        if answer is None:
            return identity
        names = tuple((g, answer.names[g]) for g in answer.ids if g in answer.names)
        return replace(identity, groups=answer.ids, group_names=names)

    async def _refused(self, identity: Identity, err: InvalidGrantError) -> RefreshOutcome:
        """The IdP refused the refresh: end the link at once, ask for a new sign-in, or ask the directory first."""
        kind = err.kind
        if kind is RefusalKind.UNCONFIRMED:
            status = await self._account_status(identity)
            kind = RefusalKind.REAUTH if status is AccountStatus.ACTIVE else RefusalKind.DEACTIVATED
        if kind is RefusalKind.REAUTH:
            # False: the link stopped being active meanwhile (unlinked, revoked): nothing left to ask.
            moved = self._ending.require_relink(identity, err.message)
            return RefreshOutcome.RELINK if moved else RefreshOutcome.SKIPPED
        await self._ending.deactivated(identity, err.message, reuse=kind is RefusalKind.REUSE)
        return RefreshOutcome.REVOKED

    async def _account_status(self, identity: Identity) -> AccountStatus:
        """The directory's word on the account; UNKNOWN (treated as deactivated) without one or when it fails."""
        if self._directory is None:
            return AccountStatus.UNKNOWN
        try:
            return await self._directory.account_status(identity)
        except UpstreamError as err:
            log.warning("the directory could not confirm %s's account: %s", identity.slack_user, err)
            return AccountStatus.UNKNOWN

    def _refresh_failed(self, record: LinkRecord, why: str) -> RefreshOutcome:
        """Count a failure and back off; never revoke (the IdP may be down)."""
        slack_user = record.identity.slack_user
        now = self._clock.now()
        failures = record.refresh_failures + 1
        backoff = min(self._refresh_interval, 60 * 2 ** min(failures - 1, 16))
        with self._tx.atomic():
            self._links.record_refresh_failure(slack_user, failures, now + backoff)
            self._audit.record(
                audit_actions.TOKEN_REFRESH_FAILED,
                actor="system",
                target=slack_user,
                outcome="failed",
                reason=why,
                details={"slack_user": slack_user, "error": why, "failures": failures, "retry_in_s": backoff},
            )
            if failures in (1, 3) or failures % 10 == 0:
                self._outbox.post(
                    "security",
                    identity_key("refresh-failed", slack_user, now),
                    RefreshFailing(slack_user, why, failures, backoff),
                )
        return RefreshOutcome.RETRY
