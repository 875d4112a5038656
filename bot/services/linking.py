"""Identity links: the OIDC link flow, the takeover guard, unlinking, and the refresh that keeps links honest."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NoReturn

from bot.core import audit_actions
from bot.core.errors import (
    InvalidGrantError,
    NotLinked,
    TokenRejected,
    TransientUpstreamError,
    UpstreamError,
)
from bot.core.model import Identity, LinkStatus, VerifiedLogin
from bot.core.mrkdwn import code, escape, user
from bot.core.ports import Clock, IdentityProvider, Notifier, Sealer, Store
from bot.services.audit import AuditLog
from bot.services.notifications import Notifications

log = logging.getLogger(__name__)

OffboardHook = Callable[[str, str], Awaitable[object]]
"""Called with (slack_user, why) after a link is revoked: the grants feature revokes the user's active grants."""
GroupsChangedHook = Callable[[str, tuple[str, ...]], Awaitable[object]]
"""Called with (slack_user, removed_groups) after a refresh dropped groups."""

_ERROR_CODE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_REFRESH_LEASE_TTL = 120
_CIRCUIT_BREAK = 5  # consecutive failed refreshes that end a run early


async def _no_offboard(slack_user: str, why: str) -> None:
    return None


async def _no_groups_changed(slack_user: str, removed: tuple[str, ...]) -> None:
    return None


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


class LinkingService:
    """Links Slack users to IdP identities and keeps those links honest."""

    def __init__(
        self,
        *,
        store: Store,
        idp: IdentityProvider,
        sealer: Sealer,
        notifier: Notifier,
        audit: AuditLog,
        notifications: Notifications,
        clock: Clock,
        public_url: str,
        login_ttl: int = 600,
        refresh_interval: int = 6 * 3600,
        require_email_match: bool = True,
        allowed_email_domains: Sequence[str] = (),
        command: str = "/access",
        retry_delays: Sequence[float] = (0.5, 2.0),
        on_offboard: OffboardHook | None = None,
        on_groups_changed: GroupsChangedHook | None = None,
    ) -> None:
        self._store = store
        self._idp = idp
        self._sealer = sealer
        self._notifier = notifier
        self._audit = audit
        self._notifications = notifications
        self._clock = clock
        self.public_url = public_url.rstrip("/")
        self.login_ttl = int(login_ttl)
        self._refresh_interval = int(refresh_interval)
        self._require_email_match = require_email_match
        self._domains = tuple(d.lower().lstrip("@") for d in allowed_email_domains)
        self._command = command
        self._retry_delays = tuple(retry_delays)
        self._on_offboard: OffboardHook = on_offboard or _no_offboard
        self._on_groups_changed: GroupsChangedHook = on_groups_changed or _no_groups_changed

    def set_hooks(
        self, *, on_offboard: OffboardHook | None = None, on_groups_changed: GroupsChangedHook | None = None
    ) -> None:
        """Install the grants feature's hooks after construction (wiring builds linking first)."""
        if on_offboard is not None:
            self._on_offboard = on_offboard
        if on_groups_changed is not None:
            self._on_groups_changed = on_groups_changed

    @property
    def secure_cookies(self) -> bool:
        """Whether the login cookie gets the Secure flag (public_url is https)."""
        return self.public_url.startswith("https://")

    # --- reading links ---------------------------------------------------------------------------------

    def is_linked(self, slack_user: str) -> bool:
        """True when the Slack user has an active link."""
        link = self._store.link(slack_user)
        return link is not None and link.status is LinkStatus.ACTIVE

    def identity(self, slack_user: str) -> Identity:
        """The active identity of a Slack user, or NotLinked."""
        link = self._store.link(slack_user)
        if link is None or link.status is not LinkStatus.ACTIVE:
            raise NotLinked("Your Slack account is not linked to your company identity.")
        return link

    def whoami(self, slack_user: str) -> LinkInfo:
        """The active link with its refresh bookkeeping, or NotLinked."""
        identity = self.identity(slack_user)
        row = self._store.link_row(slack_user) or {}
        return LinkInfo(
            identity=identity,
            refresh_failures=int(row.get("refresh_failures") or 0),
            next_refresh_at=row.get("next_refresh_at"),
        )

    # --- the link flow -------------------------------------------------------------------------------

    def begin_link(self, slack_user: str, team_id: str) -> str:
        """Store a new login attempt and return its one-time start URL."""
        now = self._clock.now()
        self._store.purge_attempts(before=now - 86400)
        attempt_id = secrets.token_urlsafe(24)
        self._store.insert_attempt(
            {
                "id": attempt_id,
                "team_id": team_id,
                "slack_user": slack_user,
                "state": secrets.token_urlsafe(32),
                "nonce": secrets.token_urlsafe(24),
                "code_verifier": self._sealer.seal(secrets.token_urlsafe(48)),
                "created_at": now,
                "expires_at": now + self.login_ttl,
            }
        )
        return f"{self.public_url}/oauth/start?attempt={attempt_id}"

    async def start(self, attempt_id: str) -> LinkStart:
        """Bind the attempt to a fresh browser cookie (once) and return the IdP redirect; LinkRefused otherwise."""
        now = self._clock.now()
        attempt = self._store.attempt(attempt_id) if attempt_id else None
        if attempt is None or attempt["started_at"] is not None or attempt["expires_at"] <= now:
            raise LinkRefused(Failure.START_INVALID)
        try:
            url = await self._idp.authorization_url(
                attempt["state"], attempt["nonce"], self._sealer.unseal(attempt["code_verifier"])
            )
        except TokenRejected as err:
            self._refused(audit_actions.ID_TOKEN_REJECTED, attempt["slack_user"], err.reason, notify=True)
            raise LinkRefused(Failure.TOKEN_REJECTED, err.reason) from None
        except UpstreamError as err:
            log.warning("identity provider unavailable at link start: %s", err)
            raise LinkRefused(Failure.IDP_UNAVAILABLE) from None
        cookie = secrets.token_urlsafe(32)
        if not self._store.start_attempt(attempt_id, _hash(cookie), self._clock.now()):
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
        attempt = self._store.attempt_by_state(state)
        if attempt is None:
            self._state_refused("", Failure.STATE_UNKNOWN, "unknown state")
        slack_user = str(attempt["slack_user"])
        if attempt["used_at"] is not None:
            self._state_refused(slack_user, Failure.STATE_REPLAYED, "state already used")
        if attempt["expires_at"] <= now:
            self._store.use_attempt(attempt["id"], now)
            self._state_refused(slack_user, Failure.STATE_EXPIRED, "state expired", notify=False)
        if not self._store.use_attempt(attempt["id"], now):
            self._state_refused(slack_user, Failure.STATE_REPLAYED, "state already used")
        stored_cookie = attempt["cookie_hash"]
        if not cookie:
            self._state_refused(slack_user, Failure.COOKIE_MISSING, "login cookie missing")
        if not stored_cookie or not hmac.compare_digest(_hash(cookie), str(stored_cookie)):
            self._state_refused(slack_user, Failure.COOKIE_MISMATCH, "login cookie mismatch")
        if error is not None:
            shown = error if _ERROR_CODE.fullmatch(error) else "invalid_error"
            self._refused(audit_actions.LOGIN_REFUSED, slack_user, f"identity provider error {shown}")
            raise LinkRefused(Failure.IDP_ERROR, shown)
        if not auth_code:
            self._refused(audit_actions.LOGIN_REFUSED, slack_user, "no code in the callback")
            raise LinkRefused(Failure.CODE_MISSING)
        login = await self._exchange(slack_user, attempt, auth_code)
        await self._guard(slack_user, login)
        return await self._store_link(slack_user, str(attempt["team_id"]), login)

    async def _exchange(self, slack_user: str, attempt: Mapping[str, Any], auth_code: str) -> VerifiedLogin:
        try:
            verifier = self._sealer.unseal(str(attempt["code_verifier"]))
            return await self._idp.exchange_code(auth_code, verifier, str(attempt["nonce"]))
        except TokenRejected as err:
            self._refused(audit_actions.ID_TOKEN_REJECTED, slack_user, err.reason, notify=True)
            raise LinkRefused(Failure.TOKEN_REJECTED, err.reason) from None
        except InvalidGrantError:
            self._refused(audit_actions.LOGIN_REFUSED, slack_user, "authorization code rejected")
            raise LinkRefused(Failure.CODE_REJECTED) from None
        except UpstreamError as err:
            log.warning("code exchange failed: %s", err)
            self._refused(audit_actions.LOGIN_REFUSED, slack_user, "identity provider unavailable")
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
                await self._discard(login.refresh_token)
                raise LinkRefused(Failure.SLACK_UNAVAILABLE) from None
            if not slack_email or slack_email.strip().casefold() != email.casefold():
                failure, why = Failure.EMAIL_MISMATCH, "email does not match the Slack profile"
        if failure is None:
            return
        await self._discard(login.refresh_token)
        self._refused(
            audit_actions.LOGIN_REFUSED,
            slack_user,
            why,
            notify=True,
            extra={"subject": login.subject, "email": login.email},
        )
        raise LinkRefused(failure)

    async def _store_link(self, slack_user: str, team_id: str, login: VerifiedLogin) -> LinkResult:
        now = self._clock.now()
        previous = self._store.link(slack_user)
        if previous is not None and previous.status is not LinkStatus.ACTIVE:
            previous = None
        previous_row = self._store.link_row(slack_user) if previous else None
        other = self._store.link_by_subject(login.issuer, login.subject)
        if other is not None and other.slack_user == slack_user:
            other = None
        row = {
            "slack_user": slack_user,
            "team_id": team_id,
            "issuer": login.issuer,
            "subject": login.subject,
            "email": login.email,
            "name": login.name,
            "groups": json.dumps(list(login.groups)),
            "refresh_token": self._sealer.seal(login.refresh_token) if login.refresh_token else None,
            "token_expires_at": login.access_token_expires_at,
            "linked_at": now,
            "refreshed_at": now,
            "status": LinkStatus.ACTIVE.value,
            "revoked_at": None,
            "revoked_reason": None,
            "refresh_failures": 0,
            "next_refresh_at": now + self._refresh_interval,
        }
        offboard: list[tuple[str, str]] = []
        relinked = previous is not None or other is not None
        with self._store.atomic():
            if other is not None:
                why = "identity linked to another Slack user"
                self._store.update_link(other.slack_user, self._revoked_fields(now, why))
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
                self._notifications.dm(
                    other.slack_user,
                    self._key("moved", other.slack_user),
                    f":lock: Your identity {code(other.email or other.subject)} was linked to another Slack "
                    f"account, so this Slack account is no longer linked. Any access granted through this bot "
                    f"was revoked. If that was not you, tell your security team. Run `{self._command} link` "
                    f"to link again.",
                )
                offboard.append((other.slack_user, why))
            if previous is not None and previous.subject != login.subject:
                offboard.append((slack_user, "linked to a different identity"))
            self._store.save_link(row)
            identity = self._store.identity(row)
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
            groups = ", ".join(code(g) for g in login.groups) or "_none_"
            if relinked:
                was = []
                if previous is not None:
                    was.append(f"was {code(previous.email or previous.subject)}")
                if other is not None:
                    was.append(f"identity moved from {user(other.slack_user)}")
                text = f":link: {user(slack_user)} relinked to {code(login.email or login.subject)} ({'; '.join(was)})."
            else:
                text = f":link: {user(slack_user)} linked to {code(login.email or login.subject)}."
            self._notifications.to_channel("security", self._key("linked", slack_user), text + f" Groups: {groups}.")
            self._notifications.dm(
                slack_user,
                self._key("linked-dm", slack_user),
                f":white_check_mark: Your Slack account is now linked to *{escape(login.name or login.email)}* "
                f"({code(login.email or login.subject)}). Groups: {groups}.",
            )
        # Revoke a replaced token only when it belonged to another IdP subject: revoking a token of the same
        # subject can end the very IdP session the new link was just issued in (e.g. Keycloak).
        old_token = previous_row.get("refresh_token") if previous_row else None
        if previous is not None and previous.subject != login.subject and old_token:
            await self._discard_sealed(str(old_token))
        for who, why in offboard:
            await self._offboard_hook(who, why)
        return LinkResult(identity=identity, relinked=relinked)

    # --- unlink ----------------------------------------------------------------------------------------

    async def unlink(self, slack_user: str, *, actor: str | None = None) -> UnlinkResult:
        """Revoke the refresh token at the IdP (failure reported), drop stored tokens, revoke grants, audit."""
        identity = self.identity(slack_user)
        row = self._store.link_row(slack_user) or {}
        sealed = row.get("refresh_token")
        idp_revoked: bool | None = False
        idp_error = ""
        if sealed:
            try:
                idp_revoked = await self._idp.revoke(self._sealer.unseal(str(sealed)))
            except TokenRejected as err:
                idp_revoked, idp_error = None, err.reason
            except UpstreamError as err:
                idp_revoked, idp_error = None, err.message
        now = self._clock.now()
        with self._store.atomic():
            self._store.update_link(slack_user, self._revoked_fields(now, "unlinked"))
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
            text = f":broken_chain: {user(slack_user)} unlinked {code(identity.email or identity.subject)}."
            if idp_revoked is None:
                text += f" :warning: Revoking the refresh token at the identity provider failed ({escape(idp_error)})."
            self._notifications.to_channel("security", self._key("unlinked", slack_user), text)
        await self._offboard_hook(slack_user, "unlinked")
        return UnlinkResult(identity=identity, idp_revoked=idp_revoked, idp_error=idp_error)

    # --- keeping links honest ------------------------------------------------------------------------

    async def refresh_all(self, now: int | None = None) -> RefreshReport:
        """Refresh every active link that is due (the job body; schedule it often, links carry their own due time)."""
        now = self._clock.now() if now is None else now
        report = RefreshReport()
        failing = 0
        for row in self._store.active_link_rows():
            due = row.get("next_refresh_at")
            if due is not None and due > now:
                continue
            slack_user = str(row["slack_user"])
            try:
                outcome = await self.refresh_one(slack_user)
            except Exception:
                log.exception("refreshing the link of %s failed unexpectedly", slack_user)
                outcome = RefreshOutcome.RETRY
            report.outcomes[slack_user] = outcome
            failing = failing + 1 if outcome is RefreshOutcome.RETRY else 0
            if failing >= _CIRCUIT_BREAK:
                # The IdP looks down: stop here; the rest stay due and the next run tries them.
                log.warning("stopping the refresh run after %d failures in a row", failing)
                break
        return report

    async def refresh_one(self, slack_user: str) -> RefreshOutcome:
        """Refresh one link: rotate (compare-and-swap first), update groups, revoke on invalid_grant, back off."""
        row = self._store.link_row(slack_user)
        if row is None or row["status"] != LinkStatus.ACTIVE.value or not row.get("refresh_token"):
            return RefreshOutcome.SKIPPED
        lease, owner = f"link-refresh:{slack_user}", secrets.token_hex(8)
        if not self._store.try_lease(lease, owner, self._clock.now(), _REFRESH_LEASE_TTL):
            return RefreshOutcome.SKIPPED
        try:
            return await self._refresh_locked(slack_user, row)
        finally:
            self._store.release_lease(lease, owner)

    async def _refresh_locked(self, slack_user: str, row: Mapping[str, Any]) -> RefreshOutcome:
        sealed = str(row["refresh_token"])
        identity = self._store.identity(dict(row))
        try:
            refresh_token = self._sealer.unseal(sealed)
        except TokenRejected as err:
            return self._refresh_failed(slack_user, row, err.reason)
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
                    return self._refresh_failed(slack_user, row, err.message)
                await asyncio.sleep(self._retry_delays[attempt])
                attempt += 1
            except UpstreamError as err:
                return self._refresh_failed(slack_user, row, err.message)
        now = self._clock.now()
        new_sealed = self._sealer.seal(tokens.refresh_token) if tokens.refresh_token else None
        if tokens.refresh_token != refresh_token and not self._store.swap_refresh_token(
            slack_user, sealed, new_sealed, {"token_expires_at": tokens.access_token_expires_at}
        ):
            # The link changed while we refreshed (unlinked, relinked): the new token belongs to nobody. Revoke it
            # unless the same subject is linked again (its revocation could end the new link's IdP session).
            current = self._store.link(slack_user)
            if current is None or current.status is not LinkStatus.ACTIVE or current.subject != identity.subject:
                await self._discard(tokens.refresh_token)
            return RefreshOutcome.SKIPPED
        try:
            login = await self._idp.verify_refresh(tokens, identity.subject)
        except TokenRejected as err:
            self._refused(audit_actions.ID_TOKEN_REJECTED, slack_user, err.reason, notify=True, actor="idp")
            return self._refresh_failed(slack_user, row, f"ID token rejected: {err.reason}", audited=True)
        except UpstreamError as err:
            return self._refresh_failed(slack_user, row, err.message)
        removed = tuple(g for g in identity.groups if g not in login.groups)
        added = tuple(g for g in login.groups if g not in identity.groups)
        with self._store.atomic():
            self._store.update_link(
                slack_user,
                {
                    "email": login.email or identity.email,
                    "name": login.name or identity.name,
                    "groups": json.dumps(list(login.groups)),
                    "refreshed_at": now,
                    "token_expires_at": login.access_token_expires_at,
                    "refresh_failures": 0,
                    "next_refresh_at": now + self._refresh_interval,
                },
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
            try:
                await self._on_groups_changed(slack_user, removed)
            except Exception:
                log.exception("the groups-changed hook failed for %s", slack_user)
        return RefreshOutcome.REFRESHED

    def _refresh_failed(
        self, slack_user: str, row: Mapping[str, Any], why: str, *, audited: bool = False
    ) -> RefreshOutcome:
        """Count a failure and back off; never revoke (the IdP may be down)."""
        now = self._clock.now()
        failures = int(row.get("refresh_failures") or 0) + 1
        backoff = min(self._refresh_interval, 60 * 2 ** min(failures - 1, 16))
        with self._store.atomic():
            self._store.update_link(slack_user, {"refresh_failures": failures, "next_refresh_at": now + backoff})
            self._audit.record(
                audit_actions.TOKEN_REFRESH_FAILED,
                actor="system",
                target=slack_user,
                outcome="failed",
                reason=why,
                details={"slack_user": slack_user, "error": why, "failures": failures, "retry_in_s": backoff},
            )
            if failures in (1, 3) or failures % 10 == 0:
                self._notifications.to_channel(
                    "security",
                    self._key("refresh-failed", slack_user),
                    f":warning: Refreshing the identity link of {user(slack_user)} failed "
                    f"({escape(why)}; {failures} in a row). Retrying in {backoff // 60 or 1} min; nothing was revoked.",
                )
        return RefreshOutcome.RETRY

    async def _revoke_link(self, identity: Identity, message: str) -> None:
        """invalid_grant: the IdP no longer vouches for this user. Revoke the link and everything it granted."""
        slack_user = identity.slack_user
        now = self._clock.now()
        reuse = "reuse" in message.lower()
        why = "refresh token reuse detected" if reuse else "identity provider refused the refresh (invalid_grant)"
        with self._store.atomic():
            self._store.update_link(slack_user, self._revoked_fields(now, why))
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
            who = f"{user(slack_user)} ({code(identity.email or identity.subject)})"
            text = (
                f":rotating_light: Refresh token reuse detected for {who}: link revoked, grants being revoked."
                if reuse
                else f":lock: {who} is no longer accepted by the identity provider: link revoked, grants being revoked."
            )
            self._notifications.to_channel("security", self._key("deactivated", slack_user), text)
            self._notifications.dm(
                slack_user,
                self._key("deactivated-dm", slack_user),
                ":lock: Your identity link was revoked because your identity provider no longer accepts it "
                "(account disabled, session ended, or a security check). Any access granted through this bot "
                f"has been revoked. If you still need access, run `{self._command} link` again.",
            )
        await self._offboard_hook(slack_user, why)

    # --- helpers -------------------------------------------------------------------------------------

    @staticmethod
    def _revoked_fields(now: int, why: str) -> dict[str, object]:
        return {
            "status": LinkStatus.REVOKED.value,
            "refresh_token": None,
            "revoked_at": now,
            "revoked_reason": why,
            "next_refresh_at": None,
        }

    def _key(self, kind: str, slack_user: str) -> str:
        return f"identity:{kind}:{slack_user}:{self._clock.now()}:{secrets.token_hex(4)}"

    def _state_refused(self, slack_user: str, failure: Failure, why: str, *, notify: bool = True) -> NoReturn:
        self._refused(audit_actions.LOGIN_STATE_MISMATCH, slack_user, why, notify=notify)
        raise LinkRefused(failure)

    def _refused(
        self,
        action: str,
        slack_user: str,
        why: str,
        *,
        notify: bool = False,
        actor: str | None = None,
        extra: Mapping[str, object] | None = None,
    ) -> None:
        """Audit a refusal (and post it to the security channel when it smells of an attack)."""
        with self._store.atomic():
            self._audit.record(
                action,
                actor=actor or slack_user or "anonymous",
                target=slack_user,
                outcome="refused",
                reason=why,
                details={"slack_user": slack_user, "why": why, **(extra or {})},
            )
            if notify:
                label = {
                    audit_actions.ID_TOKEN_REJECTED: "ID token rejected",
                    audit_actions.LOGIN_STATE_MISMATCH: "Sign-in callback refused",
                }.get(action, "Link refused")
                text = f":no_entry: {label} for {user(slack_user)}: {escape(why)}."
                key = self._key("refused", slack_user)
                if not slack_user:
                    # Anyone can call the callback: anonymous refusals post at most once per 5 minutes (all audited).
                    key = f"identity:refused:anonymous:{action}:{self._clock.now() // 300}"
                    text = f":no_entry: {label}: {escape(why)} (repeats within 5 minutes are only audited)."
                self._notifications.to_channel("security", key, text)

    async def _discard(self, refresh_token: str | None) -> None:
        """Best-effort revocation of a refresh token the bot will not keep."""
        if not refresh_token:
            return
        try:
            await self._idp.revoke(refresh_token)
        except (UpstreamError, TokenRejected) as err:
            log.warning("could not revoke a discarded refresh token: %s", err)

    async def _discard_sealed(self, sealed: str) -> None:
        try:
            await self._discard(self._sealer.unseal(sealed))
        except TokenRejected:
            log.warning("a replaced refresh token could not be unsealed for revocation")

    async def _offboard_hook(self, slack_user: str, why: str) -> None:
        try:
            await self._on_offboard(slack_user, why)
        except Exception:
            log.exception("the offboarding hook failed for %s (grants may still be active)", slack_user)
