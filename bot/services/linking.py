"""Identity links: the OIDC link flow with its takeover guard, unlinking, and what `whoami` shows.

Keeping links honest afterwards (refresh, groups, offboarding) is services.identity_sync.
"""

from __future__ import annotations

import hmac
import logging
import re
import secrets
from collections.abc import Sequence
from typing import NoReturn

from bot.core import audit_actions
from bot.core.errors import InvalidGrantError, NotLinked, TokenRejected, TransientUpstreamError, UpstreamError
from bot.core.groups import GroupsAnswer, label
from bot.core.link_rules import email_unverified
from bot.core.model import Identity, LinkRecord, LinkStatus, LoginAttempt, VerifiedLogin
from bot.core.notices import LinkConfirmed, LinkMade, LinkMovedAway, LinkRemoved
from bot.core.ports import Clock, GroupSource, IdentityProvider, Notifier, Sealer
from bot.core.storage import LinkStore, LoginAttemptStore, Transactions
from bot.services.audit import AuditLog
from bot.services.group_sources import ClaimGroups, unknown_reason, warn_unknown
from bot.services.held_logins import HeldLogins, token_hash
from bot.services.link_outcomes import Failure, LinkInfo, LinkRefused, LinkResult, LinkStart, PendingLink, UnlinkResult
from bot.services.offboarding import Offboarding, discard_token
from bot.services.outbox import Outbox
from bot.services.refusals import Refusals, identity_key

log = logging.getLogger(__name__)

_ERROR_CODE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
ATTEMPT_RETENTION = 86400
"""Seconds expired login attempts are kept before they are purged."""
MAX_STATE_CHARS = 256
"""Longest OAuth `state` or attempt id looked up at all (ours are 43 and 32 characters)."""


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
        email_verified: str = "if_present",
        require_refresh_token: bool = True,
        group_source: GroupSource | None = None,
        principal_claim: str = "sub",
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
        self._email_verified = email_verified  # required | if_present | ignore
        self._require_refresh_token = require_refresh_token
        self._groups: GroupSource = group_source or ClaimGroups()
        self._principal_claim = principal_claim
        self._held = HeldLogins(attempts=attempts, sealer=sealer, idp=idp, refusals=refusals, clock=clock)

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
        """The link (active, or waiting for a new sign-in) with its refresh bookkeeping, or NotLinked."""
        record = self._live(slack_user)
        if record is None:
            raise NotLinked("Your Slack account is not linked to your company identity.")
        return LinkInfo(
            record.identity, record.refresh_failures, record.next_refresh_at, record.monitored, record.relink_by
        )

    def _active(self, slack_user: str) -> LinkRecord | None:
        record = self._links.get(slack_user)
        return record if record is not None and record.identity.status is LinkStatus.ACTIVE else None

    def _live(self, slack_user: str) -> LinkRecord | None:
        """The active link, or one waiting for the user to sign in again."""
        record = self._links.get(slack_user)
        live = (LinkStatus.ACTIVE, LinkStatus.RELINK)
        return record if record is not None and record.identity.status in live else None

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
        attempt = self._attempts.get(attempt_id) if attempt_id and len(attempt_id) <= MAX_STATE_CHARS else None
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
        if not self._attempts.start(attempt_id, token_hash(cookie), self._clock.now()):
            raise LinkRefused(Failure.START_INVALID)  # another browser opened it meanwhile
        return LinkStart(redirect_url=url, cookie=cookie)

    async def complete(
        self,
        *,
        state: str | None,
        code: str | None,
        error: str | None,
        cookie: str | None,
        source: str = "",
    ) -> LinkResult:
        """Finish a link from the IdP callback: every check, then store, audit, notify and DM.

        `source` (the browser's address) only tallies refusals nobody can be named for.
        """
        try:
            return await self._complete(state or "", code or "", error, cookie or "", source)
        except LinkRefused as refused:
            return LinkResult(failure=refused.failure, reason=refused.reason)

    async def _complete(self, state: str, auth_code: str, error: str | None, cookie: str, source: str) -> LinkResult:
        now = self._clock.now()
        if not state:
            self._state_refused("", Failure.STATE_MISSING, "no state in the callback", source=source)
        attempt = self._attempts.by_state(state) if len(state) <= MAX_STATE_CHARS else None
        if attempt is None:
            self._state_refused("", Failure.STATE_UNKNOWN, "unknown state", source=source)
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
        if not attempt.cookie_hash or not hmac.compare_digest(token_hash(cookie), attempt.cookie_hash):
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
        await self._require_monitoring(slack_user, login)
        if not self._require_email_match:
            return await self._hold(attempt, login)  # groups are read when the person confirms
        answer = await self._link_groups(slack_user, login)
        return await self._store_link(slack_user, attempt.team_id, login, answer)

    async def _require_monitoring(self, slack_user: str, login: VerifiedLogin) -> None:
        """Refuse a link the bot could never re-check (no refresh token) or never name in Rancher."""
        if not login.principal_subject:
            await discard_token(self._idp, login.refresh_token)
            why = f"the identity provider sent no `{self._principal_claim}` claim (rancher.user_principal_claim)"
            self._refusals.record(audit_actions.LOGIN_REFUSED, slack_user, why, notify=True)
            raise LinkRefused(Failure.PRINCIPAL_MISSING, self._principal_claim)
        if self._require_refresh_token and not login.refresh_token:
            why = "the identity provider issued no refresh token, so offboarding there would go unnoticed"
            self._refusals.record(audit_actions.LOGIN_REFUSED, slack_user, why, notify=True)
            raise LinkRefused(Failure.NO_REFRESH_TOKEN)

    async def _link_groups(self, slack_user: str, login: VerifiedLogin) -> GroupsAnswer | None:
        """The groups to link with; a directory that is down refuses the link (try again), one that refuses is
        "cannot tell"."""
        try:
            return await self._groups.groups(login)
        except TransientUpstreamError as err:
            log.warning("group source unavailable at link time: %s", err)
            await discard_token(self._idp, login.refresh_token)
            self._refusals.record(audit_actions.LOGIN_REFUSED, slack_user, "group source unavailable")
            raise LinkRefused(Failure.IDP_UNAVAILABLE) from None
        except UpstreamError as err:
            log.warning("group source refused at link time: %s", err)
            return None

    # --- confirmation when the email guard is off ------------------------------------------------------

    async def _hold(self, attempt: LoginAttempt, login: VerifiedLogin) -> LinkResult:
        """Hold the verified login and ask the person which Slack user they are linking (services.held_logins)."""
        try:
            slack_name = await self._notifier.user_name(attempt.slack_user) or ""
        except UpstreamError as err:
            log.warning("cannot read the Slack profile name: %s", err)
            await discard_token(self._idp, login.refresh_token)
            raise LinkRefused(Failure.SLACK_UNAVAILABLE) from None
        token = self._held.hold(attempt, login)
        return LinkResult(pending=PendingLink(token, attempt.slack_user, slack_name, login.email, login.name))

    async def confirm(self, *, token: str | None, cookie: str | None, accept: bool, source: str = "") -> LinkResult:
        """The person's answer to the confirmation page: link, or discard the login (and its refresh token)."""
        try:
            attempt, login = await self._held.release(token or "", cookie or "", source)
            if not accept:
                await discard_token(self._idp, login.refresh_token)
                why = "the person who signed in declined to link this Slack user"
                extra = {"subject": login.subject, "email": login.email}
                self._refusals.record(audit_actions.LOGIN_REFUSED, attempt.slack_user, why, notify=True, extra=extra)
                raise LinkRefused(Failure.LINK_DECLINED)
            answer = await self._link_groups(attempt.slack_user, login)
            return await self._store_link(attempt.slack_user, attempt.team_id, login, answer)
        except LinkRefused as refused:
            return LinkResult(failure=refused.failure, reason=refused.reason)

    async def discard_unconfirmed(self, now: int) -> int:
        """Drop logins nobody confirmed in time and revoke their refresh tokens; return how many."""
        return await self._held.discard_unconfirmed(now)

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
        elif email_unverified(self._email_verified, login.email_verified) and (
            self._require_email_match or self._domains
        ):
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

    async def _store_link(
        self, slack_user: str, team_id: str, login: VerifiedLogin, answer: GroupsAnswer | None
    ) -> LinkResult:
        now = self._clock.now()
        previous_record = self._live(slack_user)
        previous = previous_record.identity if previous_record is not None else None
        moved = self._links.active_by_subject(login.issuer, login.subject)
        other = moved.identity if moved is not None and moved.identity.slack_user != slack_user else None
        ids = answer.ids if answer is not None else ()
        names = dict(answer.names) if answer is not None else {}
        identity = Identity(
            slack_user=slack_user,
            team_id=team_id,
            issuer=login.issuer,
            subject=login.subject,
            email=login.email,
            name=login.name,
            groups=ids,
            linked_at=now,
            refreshed_at=now,
            token_expires_at=login.access_token_expires_at,
            principal_subject=login.principal_subject if login.principal_subject != login.subject else "",
            group_names=tuple((g, names[g]) for g in ids if g in names),
        )
        labels = tuple(label(g, names) for g in ids)
        record = LinkRecord(
            identity=identity,
            sealed_refresh_token=self._sealer.seal(login.refresh_token) if login.refresh_token else None,
            next_refresh_at=now + self._refresh_interval,
        )
        offboard: list[tuple[str, str]] = []
        relinked = previous is not None or other is not None
        moved_names = await self._offboarding.request_names(other.slack_user) if other is not None else {}
        own_names = await self._offboarding.request_names(slack_user) if previous is not None else {}
        with self._tx.atomic():  # no await inside: nothing else may write in this transaction
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
                # In the same transaction as the move: the old account's requests can never meet its twin's approval.
                self._offboarding.withdraw_requests(other.slack_user, why, moved_names)
                offboard.append((other.slack_user, why))
            if previous is not None and previous.subject != login.subject:
                self._offboarding.withdraw_requests(slack_user, "linked to a different identity", own_names)
                offboard.append((slack_user, "linked to a different identity"))
            self._links.save(record)
            details: dict[str, object] = {
                "slack_user": slack_user,
                "issuer": login.issuer,
                "subject": login.subject,
                "email": login.email,
                "groups": list(ids),
                "monitored": record.monitored,
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
                labels,
                previous=(previous.email or previous.subject) if previous is not None else None,
                moved_from=other.slack_user if other is not None else None,
                monitored=record.monitored,
                groups_known=answer is not None,
            )
            self._outbox.post("security", identity_key("linked", slack_user, now), made)
            self._outbox.dm(
                slack_user,
                identity_key("linked-dm", slack_user, now),
                LinkConfirmed(slack_user, login.name or login.email, who, labels, monitored=record.monitored),
            )
            if answer is None:
                warn_unknown(
                    self._audit, self._outbox, slack_user, unknown_reason(login), now=now, at_link=True, kept=()
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

    def _state_refused(
        self, slack_user: str, failure: Failure, why: str, *, notify: bool = True, source: str = ""
    ) -> NoReturn:
        self._refusals.record(audit_actions.LOGIN_STATE_MISMATCH, slack_user, why, notify=notify, source=source)
        raise LinkRefused(failure)

    async def _discard_sealed(self, sealed: str) -> None:
        try:
            await discard_token(self._idp, self._sealer.unseal(sealed))
        except TokenRejected:
            log.warning("a replaced refresh token could not be unsealed for revocation")
