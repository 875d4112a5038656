"""Logins held for the signed-in person's confirmation (only when `oidc.require_email_match` is false).

Without the email guard, whoever opens someone's link button would complete that person's link. The verified login
is therefore sealed on its login attempt, and the page asks the person which Slack user they are linking; the
answer must come from the same browser (the login cookie), once (compare-and-set), within CONFIRM_TTL. A login
nobody confirmed, or one declined, is dropped and its refresh token revoked at the IdP.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import asdict
from typing import NoReturn

from bot.core import audit_actions
from bot.core.model import LoginAttempt, VerifiedLogin
from bot.core.ports import Clock, IdentityProvider, Sealer
from bot.core.storage import LoginAttemptStore
from bot.services.link_outcomes import Failure, LinkRefused
from bot.services.offboarding import discard_token
from bot.services.refusals import Refusals

CONFIRM_TTL = 300
"""Seconds a signed-in person has to confirm a link when the email guard is off; then the login is discarded."""
MAX_TOKEN_CHARS = 256
"""Longest confirmation token looked up at all (ours are 43 characters)."""


def token_hash(value: str) -> str:
    """How tokens and cookies are kept: their SHA-256, never the value."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


class HeldLogins:
    """Seals verified logins on their attempts and releases each once, to the browser that started it."""

    def __init__(
        self, *, attempts: LoginAttemptStore, sealer: Sealer, idp: IdentityProvider, refusals: Refusals, clock: Clock
    ) -> None:
        self._attempts = attempts
        self._sealer = sealer
        self._idp = idp
        self._refusals = refusals
        self._clock = clock

    def hold(self, attempt: LoginAttempt, login: VerifiedLogin) -> str:
        """Seal the login on its attempt; return the one-time token the confirmation page carries."""
        token = secrets.token_urlsafe(32)
        sealed = self._sealer.seal(json.dumps(asdict(login)))
        self._attempts.hold(attempt.id, sealed, token_hash(token), self._clock.now() + CONFIRM_TTL)
        return token

    async def release(self, token: str, cookie: str, source: str) -> tuple[LoginAttempt, VerifiedLogin]:
        """The held login of a confirmation token, taken once; LinkRefused (audited) when unknown, from another
        browser, already answered or late (a late one's refresh token is revoked)."""
        attempt = self._attempts.by_confirm(token_hash(token)) if token and len(token) <= MAX_TOKEN_CHARS else None
        if attempt is None or attempt.sealed_pending is None:
            self._refused("", Failure.CONFIRM_INVALID, "unknown or used link confirmation", source=source)
        slack_user = attempt.slack_user
        if not cookie or not attempt.cookie_hash or not hmac.compare_digest(token_hash(cookie), attempt.cookie_hash):
            self._refused(slack_user, Failure.COOKIE_MISMATCH, "login cookie mismatch at confirmation")
        sealed = attempt.sealed_pending
        if not self._attempts.take(attempt.id, sealed):
            self._refused(slack_user, Failure.CONFIRM_INVALID, "link confirmation already used")
        login = self._unseal(sealed)
        if attempt.pending_until is None or attempt.pending_until <= self._clock.now():
            await discard_token(self._idp, login.refresh_token)
            self._refused(slack_user, Failure.CONFIRM_EXPIRED, "link confirmation expired", notify=False)
        return attempt, login

    async def discard_unconfirmed(self, now: int) -> int:
        """Drop logins nobody confirmed in time and revoke their refresh tokens; return how many."""
        dropped = 0
        for attempt in self._attempts.unconfirmed(now):
            sealed = attempt.sealed_pending
            if sealed is None or not self._attempts.take(attempt.id, sealed):
                continue
            dropped += 1
            await discard_token(self._idp, self._unseal(sealed).refresh_token)
        return dropped

    def _unseal(self, sealed: str) -> VerifiedLogin:
        fields = json.loads(self._sealer.unseal(sealed))
        groups = fields["groups"]
        fields["groups"] = tuple(groups) if groups is not None else None
        return VerifiedLogin(**fields)

    def _refused(
        self, slack_user: str, failure: Failure, why: str, *, notify: bool = True, source: str = ""
    ) -> NoReturn:
        self._refusals.record(audit_actions.LOGIN_STATE_MISMATCH, slack_user, why, notify=notify, source=source)
        raise LinkRefused(failure)
