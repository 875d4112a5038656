"""When the IdP stops vouching for a user: revoke the link and every grant at once, or ask for a new sign-in.

- Deactivation (account disabled or deleted, tokens revoked, a refresh token reused): the link is revoked, every
  grant revoked, the user gets a DM and the security channel a post.
- Re-authentication (MFA, sign-in frequency, token limits): the link waits in `relink_needed`; the user gets a DM
  with a Link button and the security channel a post. Their grants stay until `relink_grace` has passed; then,
  unless they linked again, the link and the grants are revoked (`expire_relinks`, run by the refresh job).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Protocol

from bot.core import audit_actions
from bot.core.errors import TokenRejected, UpstreamError
from bot.core.model import Identity, LinkStatus
from bot.core.notices import (
    IdentityRevoked,
    IdentityRevokedDm,
    RelinkExpired,
    RelinkExpiredDm,
    RelinkRequested,
    RelinkRequired,
)
from bot.core.ports import Clock, IdentityProvider
from bot.core.storage import LinkStore, Transactions
from bot.services.audit import AuditLog
from bot.services.outbox import Outbox
from bot.services.refusals import identity_key

log = logging.getLogger(__name__)


class GrantRevoker(Protocol):
    """What offboarding needs from the grants (services.grants.Lifecycle)."""

    async def revoke_all_for_user(self, slack_user: str, *, reason: str) -> int:
        """Revoke every open grant of the user; return how many."""
        ...

    async def revoke_for_removed_groups(self, slack_user: str, removed_groups: Sequence[str]) -> int:
        """Revoke grants that depended on groups the user lost; return how many."""
        ...

    async def request_names(self, slack_user: str) -> dict[str, tuple[str, str]]:
        """The (target, role) names of the account's undecided requests, looked up before a transaction."""
        ...

    def withdraw_requests(
        self, slack_user: str, reason: str, names: Mapping[str, tuple[str, str]] | None = None
    ) -> int:
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

    async def request_names(self, slack_user: str) -> dict[str, tuple[str, str]]:
        """Names for the account's undecided requests (await before the transaction that withdraws them)."""
        try:
            return await self._grants.request_names(slack_user)
        except Exception:  # names are cosmetic: the withdrawal names requests by their ids instead
            log.warning("could not look up request names for %s", slack_user)
            return {}

    def withdraw_requests(self, slack_user: str, why: str, names: Mapping[str, tuple[str, str]] | None = None) -> int:
        """Withdraw the account's undecided requests now, in the caller's transaction (no Rancher call needed)."""
        return self._grants.withdraw_requests(slack_user, why, names)

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


class LinkEnding:
    """Ends links the IdP no longer vouches for: at once (deactivation) or after a grace (re-authentication)."""

    def __init__(
        self,
        *,
        tx: Transactions,
        links: LinkStore,
        audit: AuditLog,
        outbox: Outbox,
        offboarding: Offboarding,
        clock: Clock,
        relink_grace: int = 3600,
    ) -> None:
        self._tx = tx
        self._links = links
        self._audit = audit
        self._outbox = outbox
        self._offboarding = offboarding
        self._clock = clock
        self.relink_grace = int(relink_grace)

    async def deactivated(self, identity: Identity, message: str, *, reuse: bool = False) -> None:
        """The IdP no longer accepts this user: revoke the link and everything it granted."""
        slack_user = identity.slack_user
        now = self._clock.now()
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

    def require_relink(self, identity: Identity, why: str) -> bool:
        """Ask the user to sign in again; grants stay until the grace ends. False when the link was not active."""
        slack_user = identity.slack_user
        now = self._clock.now()
        deadline = now + self.relink_grace
        short = why[:200]
        with self._tx.atomic():
            if not self._links.mark_relink(slack_user, deadline, short):
                return False
            self._audit.record(
                audit_actions.LINK_RELINK_REQUIRED,
                actor="idp",
                target=slack_user,
                outcome="ok",
                reason=short,
                details={"slack_user": slack_user, "subject": identity.subject, "why": short, "relink_by": deadline},
            )
            who = identity.email or identity.subject
            self._outbox.post(
                "security", identity_key("relink", slack_user, now), RelinkRequired(slack_user, who, short, deadline)
            )
            self._outbox.dm(
                slack_user, identity_key("relink-dm", slack_user, now), RelinkRequested(slack_user, short, deadline)
            )
        return True

    async def expire_relinks(self, now: int) -> int:
        """Revoke every link whose re-sign-in deadline passed, and its grants; return how many."""
        ended = 0
        for record in self._links.relink_overdue(now):
            identity = record.identity
            slack_user = identity.slack_user
            why = "did not sign in again before the re-link deadline"
            with self._tx.atomic():
                current = self._links.get(slack_user)  # no await in between: a relink meanwhile wins
                if current is None or current.identity.status is not LinkStatus.RELINK:
                    continue
                self._links.revoke(slack_user, now, why)
                self._audit.record(
                    audit_actions.LINK_RELINK_EXPIRED,
                    actor="system",
                    target=slack_user,
                    outcome="ok",
                    reason=why,
                    details={"slack_user": slack_user, "subject": identity.subject},
                )
                self._outbox.post(
                    "security",
                    identity_key("relink-expired", slack_user, now),
                    RelinkExpired(slack_user, identity.email or identity.subject),
                )
                self._outbox.dm(slack_user, identity_key("relink-expired-dm", slack_user, now), RelinkExpiredDm())
            await self._offboarding.offboard(slack_user, why)
            ended += 1
        return ended
