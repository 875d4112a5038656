"""Keeping links honest: refresh each link at the IdP, follow group changes, offboard who the IdP no longer vouches for.

A refresh stores the rotated refresh token by compare-and-swap before the new ID token is even checked, so a
refused token cannot burn the rotated one. `invalid_grant` revokes the link and every grant; timeouts and 5xx
are retried with backoff and never revoke anything.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from bot.core import audit_actions
from bot.core.errors import InvalidGrantError, TokenRejected, TransientUpstreamError, UpstreamError
from bot.core.model import Identity, LinkRecord, LinkStatus, VerifiedLogin
from bot.core.notices import IdentityRevoked, IdentityRevokedDm, RefreshFailing
from bot.core.ports import Clock, GroupSource, IdentityProvider, Sealer
from bot.core.storage import LeaseStore, LinkStore, Transactions
from bot.services.audit import AuditLog
from bot.services.outbox import Outbox
from bot.services.refusals import Refusals, identity_key

log = logging.getLogger(__name__)

REFRESH_LEASE_TTL = 120
"""Seconds one process holds a link while refreshing it (two processes never refresh the same link at once)."""
CIRCUIT_BREAK = 5
"""Consecutive failed refreshes that end a run early (the IdP looks down)."""


class GrantRevoker(Protocol):
    """What offboarding needs from the grants (services.grants.Lifecycle)."""

    async def revoke_all_for_user(self, slack_user: str, *, reason: str) -> int:
        """Revoke every open grant of the user; return how many."""
        ...

    async def revoke_for_removed_groups(self, slack_user: str, removed_groups: Sequence[str]) -> int:
        """Revoke grants that depended on groups the user lost; return how many."""
        ...

    def withdraw_requests(self, slack_user: str, reason: str) -> int:
        """Withdraw the account's undecided requests, inside the caller's transaction; return how many."""
        ...


class Offboarding:
    """Revokes everything a Slack user holds through the bot (after their link was revoked or moved)."""

    def __init__(self, grants: GrantRevoker) -> None:
        self._grants = grants

    async def offboard(self, slack_user: str, why: str) -> None:
        """Revoke the user's grants; a failure is logged (the reconciler and the next run retry), never raised."""
        try:
            await self._grants.revoke_all_for_user(slack_user, reason=why)
        except Exception:
            log.exception("offboarding %s failed (grants may still be active)", slack_user)

    def withdraw_requests(self, slack_user: str, why: str) -> int:
        """Withdraw the account's undecided requests now, in the caller's transaction (no Rancher call needed)."""
        return self._grants.withdraw_requests(slack_user, why)

    async def groups_removed(self, slack_user: str, removed: tuple[str, ...]) -> None:
        """Revoke grants that depended on removed groups; failures are logged, never raised."""
        try:
            await self._grants.revoke_for_removed_groups(slack_user, removed)
        except Exception:
            log.exception("revoking grants after a group change failed for %s", slack_user)


async def discard_token(idp: IdentityProvider, refresh_token: str | None) -> None:
    """Best-effort revocation at the IdP of a refresh token the bot will not keep."""
    if not refresh_token:
        return
    try:
        await idp.revoke(refresh_token)
    except (UpstreamError, TokenRejected) as err:
        log.warning("could not revoke a discarded refresh token: %s", err)


class ClaimGroups:
    """The groups the IdP put in the ID token (or userinfo): the default group source."""

    async def groups(self, login: VerifiedLogin) -> tuple[str, ...] | None:
        """The groups of the login as the IdP sent them."""
        return login.groups


class RefreshOutcome(StrEnum):
    """What one refresh did."""

    REFRESHED = "refreshed"
    REVOKED = "revoked"
    RETRY = "retry"
    SKIPPED = "skipped"


@dataclass
class RefreshReport:
    """Counts of one refresh run."""

    outcomes: dict[str, RefreshOutcome] = field(default_factory=dict)

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
        self._offboarding = offboarding
        self._clock = clock
        self._groups: GroupSource = group_source or ClaimGroups()
        self._refresh_interval = int(refresh_interval)
        self._retry_delays = tuple(retry_delays)

    async def refresh_all(self, now: int | None = None) -> RefreshReport:
        """Refresh every active link that is due (the job body; schedule it often, links carry their own due time)."""
        now = self._clock.now() if now is None else now
        report = RefreshReport()
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
        """Refresh one link: rotate (compare-and-swap first), update groups, revoke on invalid_grant, back off."""
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
                await self._revoke_link(identity, err.message)
                return RefreshOutcome.REVOKED
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
            return self._refresh_failed(record, err.message)
        try:
            reported = await self._groups.groups(login)
        except UpstreamError as err:
            return self._refresh_failed(record, f"group source: {err.message}")
        groups = identity.groups if reported is None else reported
        removed = tuple(g for g in identity.groups if g not in groups)
        added = tuple(g for g in groups if g not in identity.groups)
        with self._tx.atomic():
            self._links.record_refresh(
                slack_user,
                email=login.email or identity.email,
                name=login.name or identity.name,
                groups=groups,
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
                },
            )
        if removed:
            await self._offboarding.groups_removed(slack_user, removed)
        return RefreshOutcome.REFRESHED

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

    async def _revoke_link(self, identity: Identity, message: str) -> None:
        """invalid_grant: the IdP no longer vouches for this user. Revoke the link and everything it granted."""
        slack_user = identity.slack_user
        now = self._clock.now()
        reuse = "reuse" in message.lower()
        why = "refresh token reuse detected" if reuse else "identity provider refused the refresh (invalid_grant)"
        with self._tx.atomic():
            self._links.revoke(slack_user, now, why)
            self._audit.record(
                audit_actions.TOKEN_REUSE_DETECTED if reuse else audit_actions.USER_DEACTIVATED,
                actor="idp",
                target=slack_user,
                outcome="refused",
                reason=why,
                details={
                    "slack_user": slack_user,
                    "subject": identity.subject,
                    "why": message[:200],
                    "error": message[:200],
                },
            )
            who = identity.email or identity.subject
            self._outbox.post(
                "security", identity_key("deactivated", slack_user, now), IdentityRevoked(slack_user, who, reuse)
            )
            self._outbox.dm(slack_user, identity_key("deactivated-dm", slack_user, now), IdentityRevokedDm())
        await self._offboarding.offboard(slack_user, why)
