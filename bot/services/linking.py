"""Identity links: the OIDC link flow with its takeover guard, unlinking, and what `whoami` shows.

Keeping links honest afterwards (refresh, groups, offboarding) is services.identity_sync.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import NoReturn

from bot.core import audit_actions
from bot.core.errors import InvalidGrantError, NotLinked, TokenRejected, UpstreamError
from bot.core.model import Identity, LinkRecord, LinkStatus, LoginAttempt, VerifiedLogin
from bot.core.notices import LinkConfirmed, LinkMade, LinkMovedAway, LinkRemoved
from bot.core.ports import Clock, IdentityProvider, Notifier, Sealer
from bot.core.storage import LinkStore, LoginAttemptStore, Transactions
from bot.services.audit import AuditLog
from bot.services.identity_sync import Offboarding, discard_token
from bot.services.outbox import Outbox
from bot.services.refusals import Refusals, identity_key

log = logging.getLogger(__name__)

_ERROR_CODE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
ATTEMPT_RETENTION = 86400
"""Seconds expired login attempts are kept before they are purged."""


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


class Failure(StrEnum):
    """Why a link attempt was refused (the web page turns each into a sentence)."""

    START_INVALID = "start_invalid"
    STATE_MISSING = "state_missing"
    STATE_UNKNOWN = "state_unknown"
    STATE_REPLAYED = "state_replayed"
    STATE_EXPIRED = "state_expired"
    COOKIE_MISSING = "cookie_missing"
    COOKIE_MISMATCH = "cookie_mismatch"
    IDP_ERROR = "idp_error"
    CODE_MISSING = "code_missing"
    CODE_REJECTED = "code_rejected"
    TOKEN_REJECTED = "token_rejected"  # noqa: S105 - a failure kind, not a secret
    EMAIL_MISSING = "email_missing"
    EMAIL_UNVERIFIED = "email_unverified"
    EMAIL_MISMATCH = "email_mismatch"
    DOMAIN_NOT_ALLOWED = "domain_not_allowed"
    IDP_UNAVAILABLE = "idp_unavailable"
    SLACK_UNAVAILABLE = "slack_unavailable"
    OTHER_WORKSPACE = "other_workspace"


class LinkRefused(Exception):
    """A link step was refused; `failure` is the kind, `reason` a short text safe to show."""

    def __init__(self, failure: Failure, reason: str = "") -> None:
        super().__init__(failure.value)
        self.failure = failure
        self.reason = reason


@dataclass(frozen=True)
class LinkStart:
    """Where to send the browser, and the cookie value that binds it to the attempt."""

    redirect_url: str
    cookie: str

    def __repr__(self) -> str:
        return "LinkStart(<redacted>)"


@dataclass(frozen=True)
class LinkResult:
    """The outcome of a callback: the linked identity, or a failure kind and a safe reason."""

    identity: Identity | None = None
    failure: Failure | None = None
    reason: str = ""
    relinked: bool = False

    @property
    def ok(self) -> bool:
        """True when the link was stored."""
        return self.identity is not None


@dataclass(frozen=True)
class UnlinkResult:
    """What unlinking did: `idp_revoked` is True (revoked), False (nothing to revoke there) or None (failed)."""

    identity: Identity
    idp_revoked: bool | None
    idp_error: str = ""


@dataclass(frozen=True)
class LinkInfo:
    """A link as `/access whoami` shows it."""

    identity: Identity
    refresh_failures: int
    next_refresh_at: int | None


class LinkingService:
    """Links Slack users to IdP identities and unlinks them."""

    def __init__(
        self,
        *,
        tx: Transactions,
        links: LinkStore,
        attempts: LoginAttemptStore,
        idp: IdentityProvider,
        sealer: Sealer,
        notifier: Notifier,
        audit: AuditLog,
        outbox: Outbox,
        refusals: Refusals,
        offboarding: Offboarding,
        clock: Clock,
        public_url: str,
        login_ttl: int = 600,
        refresh_interval: int = 6 * 3600,
        require_email_match: bool = True,
        allowed_email_domains: Sequence[str] = (),
    ) -> None:
        self._tx = tx
        self._links = links
        self._attempts = attempts
        self._idp = idp
        self._sealer = sealer
        self._notifier = notifier
        self._audit = audit
        self._outbox = outbox
        self._refusals = refusals
        self._offboarding = offboarding
        self._clock = clock
        self.public_url = public_url.rstrip("/")
        self.login_ttl = int(login_ttl)
        self._refresh_interval = int(refresh_interval)
        self._require_email_match = require_email_match
        self._domains = tuple(d.lower().lstrip("@") for d in allowed_email_domains)

    @property
    def secure_cookies(self) -> bool:
        """Whether the login cookie gets the Secure flag (public_url is https)."""
        return self.public_url.startswith("https://")

    # --- reading links ---------------------------------------------------------------------------------

    def is_linked(self, slack_user: str) -> bool:
        """True when the Slack user has an active link."""
        return self._active(slack_user) is not None

    def identity(self, slack_user: str) -> Identity:
        """The active identity of a Slack user, or NotLinked."""
        record = self._active(slack_user)
        if record is None:
            raise NotLinked("Your Slack account is not linked to your company identity.")
        return record.identity

    def whoami(self, slack_user: str) -> LinkInfo:
        """The active link with its refresh bookkeeping, or NotLinked."""
        record = self._active(slack_user)
        if record is None:
            raise NotLinked("Your Slack account is not linked to your company identity.")
        return LinkInfo(record.identity, record.refresh_failures, record.next_refresh_at)

    def _active(self, slack_user: str) -> LinkRecord | None:
        record = self._links.get(slack_user)
        return record if record is not None and record.identity.status is LinkStatus.ACTIVE else None

    # --- the link flow -------------------------------------------------------------------------------

    def begin_link(self, slack_user: str, team_id: str) -> str:
        """Store a new login attempt and return its one-time start URL."""
        now = self._clock.now()
        self._attempts.purge(before=now - ATTEMPT_RETENTION)
        attempt = LoginAttempt(
            id=secrets.token_urlsafe(24),
            team_id=team_id,
            slack_user=slack_user,
            state=secrets.token_urlsafe(32),
            nonce=secrets.token_urlsafe(24),
            sealed_verifier=self._sealer.seal(secrets.token_urlsafe(48)),
            created_at=now,
            expires_at=now + self.login_ttl,
        )
        self._attempts.insert(attempt)
        return f"{self.public_url}/oauth/start?attempt={attempt.id}"

    async def start(self, attempt_id: str) -> LinkStart:
        """Bind the attempt to a fresh browser cookie (once) and return the IdP redirect; LinkRefused otherwise."""
        now = self._clock.now()
        attempt = self._attempts.get(attempt_id) if attempt_id else None
        if attempt is None or attempt.started_at is not None or attempt.expires_at <= now:
            raise LinkRefused(Failure.START_INVALID)
        try:
            url = await self._idp.authorization_url(
                attempt.state, attempt.nonce, self._sealer.unseal(attempt.sealed_verifier)
            )
        except TokenRejected as err:
            self._refusals.record(audit_actions.ID_TOKEN_REJECTED, attempt.slack_user, err.reason, notify=True)
            raise LinkRefused(Failure.TOKEN_REJECTED, err.reason) from None
        except UpstreamError as err:
            log.warning("identity provider unavailable at link start: %s", err)
            raise LinkRefused(Failure.IDP_UNAVAILABLE) from None
        cookie = secrets.token_urlsafe(32)
        if not self._attempts.start(attempt_id, _hash(cookie), self._clock.now()):
            raise LinkRefused(Failure.START_INVALID)  # another browser opened it meanwhile
        return LinkStart(redirect_url=url, cookie=cookie)

    async def complete(
        self, *, state: str | None, code: str | None, error: str | None, cookie: str | None
    ) -> LinkResult:
        """Finish a link from the IdP callback: every check, then store, audit, notify and DM."""
        try:
            return await self._complete(state or "", code or "", error, cookie or "")
        except LinkRefused as refused:
            return LinkResult(failure=refused.failure, reason=refused.reason)

    async def _complete(self, state: str, auth_code: str, error: str | None, cookie: str) -> LinkResult:
        now = self._clock.now()
        if not state:
            self._state_refused("", Failure.STATE_MISSING, "no state in the callback")
        attempt = self._attempts.by_state(state)
        if attempt is None:
            self._state_refused("", Failure.STATE_UNKNOWN, "unknown state")
        slack_user = attempt.slack_user
        if attempt.used_at is not None:
            self._state_refused(slack_user, Failure.STATE_REPLAYED, "state already used")
        if attempt.expires_at <= now:
            self._attempts.use(attempt.id, now)
            self._state_refused(slack_user, Failure.STATE_EXPIRED, "state expired", notify=False)
        if not self._attempts.use(attempt.id, now):
            self._state_refused(slack_user, Failure.STATE_REPLAYED, "state already used")
        if not cookie:
            self._state_refused(slack_user, Failure.COOKIE_MISSING, "login cookie missing")
        if not attempt.cookie_hash or not hmac.compare_digest(_hash(cookie), attempt.cookie_hash):
            self._state_refused(slack_user, Failure.COOKIE_MISMATCH, "login cookie mismatch")
        if error is not None:
            shown = error if _ERROR_CODE.fullmatch(error) else "invalid_error"
            self._refusals.record(audit_actions.LOGIN_REFUSED, slack_user, f"identity provider error {shown}")
            raise LinkRefused(Failure.IDP_ERROR, shown)
        if not auth_code:
            self._refusals.record(audit_actions.LOGIN_REFUSED, slack_user, "no code in the callback")
            raise LinkRefused(Failure.CODE_MISSING)
        login = await self._exchange(attempt, auth_code)
        await self._guard(slack_user, login)
        return await self._store_link(slack_user, attempt.team_id, login)

    async def _exchange(self, attempt: LoginAttempt, auth_code: str) -> VerifiedLogin:
        slack_user = attempt.slack_user
        try:
            verifier = self._sealer.unseal(attempt.sealed_verifier)
            return await self._idp.exchange_code(auth_code, verifier, attempt.nonce)
        except TokenRejected as err:
            self._refusals.record(audit_actions.ID_TOKEN_REJECTED, slack_user, err.reason, notify=True)
            raise LinkRefused(Failure.TOKEN_REJECTED, err.reason) from None
        except InvalidGrantError:
            self._refusals.record(audit_actions.LOGIN_REFUSED, slack_user, "authorization code rejected")
            raise LinkRefused(Failure.CODE_REJECTED) from None
        except UpstreamError as err:
            log.warning("code exchange failed: %s", err)
            self._refusals.record(audit_actions.LOGIN_REFUSED, slack_user, "identity provider unavailable")
            raise LinkRefused(Failure.IDP_UNAVAILABLE) from None

    async def _guard(self, slack_user: str, login: VerifiedLogin) -> None:
        """The account-takeover guard: verified IdP email equal to the Slack profile email; allowed domains."""
        email = login.email.strip()
        failure: Failure | None = None
        why = ""
        if (self._require_email_match or self._domains) and not email:
            failure, why = Failure.EMAIL_MISSING, "identity has no email"
        elif login.email_verified is False and (self._require_email_match or self._domains):
            failure, why = Failure.EMAIL_UNVERIFIED, "email not verified at the identity provider"
        elif self._domains and email.rpartition("@")[2].lower() not in self._domains:
            failure, why = Failure.DOMAIN_NOT_ALLOWED, "email domain not allowed"
        elif self._require_email_match:
            try:
                slack_email = await self._notifier.user_email(slack_user)
            except UpstreamError as err:
                log.warning("cannot read the Slack profile email: %s", err)
                await discard_token(self._idp, login.refresh_token)
                if err.code in ("user_not_found", "user_not_visible"):  # a member of another workspace (users.info)
                    self._refusals.record(audit_actions.LOGIN_REFUSED, slack_user, "Slack user of another workspace")
                    raise LinkRefused(Failure.OTHER_WORKSPACE) from None
                raise LinkRefused(Failure.SLACK_UNAVAILABLE) from None
            if not slack_email or slack_email.strip().casefold() != email.casefold():
                failure, why = Failure.EMAIL_MISMATCH, "email does not match the Slack profile"
        if failure is None:
            return
        await discard_token(self._idp, login.refresh_token)
        self._refusals.record(
            audit_actions.LOGIN_REFUSED,
            slack_user,
            why,
            notify=True,
            extra={"subject": login.subject, "email": login.email},
        )
        raise LinkRefused(failure)

    async def _store_link(self, slack_user: str, team_id: str, login: VerifiedLogin) -> LinkResult:
        now = self._clock.now()
        previous_record = self._active(slack_user)
        previous = previous_record.identity if previous_record is not None else None
        moved = self._links.active_by_subject(login.issuer, login.subject)
        other = moved.identity if moved is not None and moved.identity.slack_user != slack_user else None
        identity = Identity(
            slack_user=slack_user,
            team_id=team_id,
            issuer=login.issuer,
            subject=login.subject,
            email=login.email,
            name=login.name,
            groups=login.groups,
            linked_at=now,
            refreshed_at=now,
            token_expires_at=login.access_token_expires_at,
        )
        record = LinkRecord(
            identity=identity,
            sealed_refresh_token=self._sealer.seal(login.refresh_token) if login.refresh_token else None,
            next_refresh_at=now + self._refresh_interval,
        )
        offboard: list[tuple[str, str]] = []
        relinked = previous is not None or other is not None
        with self._tx.atomic():
            if other is not None:
                why = "identity linked to another Slack user"
                self._links.revoke(other.slack_user, now, why)
                self._audit.record(
                    audit_actions.LINK_REPLACED,
                    actor=slack_user,
                    target=other.slack_user,
                    outcome="ok",
                    reason=why,
                    details={
                        "slack_user": other.slack_user,
                        "issuer": other.issuer,
                        "subject": other.subject,
                        "email": other.email,
                        "new_slack_user": slack_user,
                    },
                )
                self._outbox.dm(
                    other.slack_user,
                    identity_key("moved", other.slack_user, now),
                    LinkMovedAway(other.email or other.subject),
                )
                offboard.append((other.slack_user, why))
            if previous is not None and previous.subject != login.subject:
                offboard.append((slack_user, "linked to a different identity"))
            self._links.save(record)
            details: dict[str, object] = {
                "slack_user": slack_user,
                "issuer": login.issuer,
                "subject": login.subject,
                "email": login.email,
                "groups": list(login.groups),
            }
            if previous is not None:
                details["previous_subject"] = previous.subject
            if other is not None:
                details["previous_slack_user"] = other.slack_user
            action = audit_actions.LINK_REPLACED if relinked else audit_actions.LINK_CREATED
            self._audit.record(action, actor=slack_user, target=slack_user, details=details)
            who = login.email or login.subject
            made = LinkMade(
                slack_user,
                who,
                login.groups,
                previous=(previous.email or previous.subject) if previous is not None else None,
                moved_from=other.slack_user if other is not None else None,
            )
            self._outbox.post("security", identity_key("linked", slack_user, now), made)
            self._outbox.dm(
                slack_user,
                identity_key("linked-dm", slack_user, now),
                LinkConfirmed(slack_user, login.name or login.email, who, login.groups),
            )
        # Revoke a replaced token only when it belonged to another IdP subject: revoking a token of the same
        # subject can end the very IdP session the new link was just issued in (e.g. Keycloak).
        old_token = previous_record.sealed_refresh_token if previous_record is not None else None
        if previous is not None and previous.subject != login.subject and old_token:
            await self._discard_sealed(old_token)
        for who_user, why in offboard:
            await self._offboarding.offboard(who_user, why)
        return LinkResult(identity=identity, relinked=relinked)

    # --- unlink ----------------------------------------------------------------------------------------

    async def unlink(self, slack_user: str, *, actor: str | None = None) -> UnlinkResult:
        """Revoke the refresh token at the IdP (failure reported), drop stored tokens, revoke grants, audit."""
        record = self._active(slack_user)
        if record is None:
            raise NotLinked("Your Slack account is not linked to your company identity.")
        identity = record.identity
        idp_revoked: bool | None = False
        idp_error = ""
        if record.sealed_refresh_token:
            try:
                idp_revoked = await self._idp.revoke(self._sealer.unseal(record.sealed_refresh_token))
            except TokenRejected as err:
                idp_revoked, idp_error = None, err.reason
            except UpstreamError as err:
                idp_revoked, idp_error = None, err.message
        now = self._clock.now()
        with self._tx.atomic():
            self._links.revoke(slack_user, now, "unlinked")
            self._audit.record(
                audit_actions.LINK_REMOVED,
                actor=actor or slack_user,
                target=slack_user,
                outcome="ok" if idp_revoked is not None else "failed",
                reason="" if idp_revoked is not None else f"revocation at the identity provider failed: {idp_error}",
                details={
                    "slack_user": slack_user,
                    "issuer": identity.issuer,
                    "subject": identity.subject,
                    "email": identity.email,
                    "idp_revoked": idp_revoked,
                },
            )
            removed = LinkRemoved(
                slack_user, identity.email or identity.subject, idp_error if idp_revoked is None else None
            )
            self._outbox.post("security", identity_key("unlinked", slack_user, now), removed)
        await self._offboarding.offboard(slack_user, "unlinked")
        return UnlinkResult(identity=identity, idp_revoked=idp_revoked, idp_error=idp_error)

    # --- helpers -------------------------------------------------------------------------------------

    def _state_refused(self, slack_user: str, failure: Failure, why: str, *, notify: bool = True) -> NoReturn:
        self._refusals.record(audit_actions.LOGIN_STATE_MISMATCH, slack_user, why, notify=notify)
        raise LinkRefused(failure)

    async def _discard_sealed(self, sealed: str) -> None:
        try:
            await discard_token(self._idp, self._sealer.unseal(sealed))
        except TokenRejected:
            log.warning("a replaced refresh token could not be unsealed for revocation")
