"""What the provider keeps in memory: clients, accounts, signing keys, codes, token families, and their moves.

The moves are the ones authlib's hooks make (issue and save tokens, revoke a family) and the signing of ID tokens.
"""

from __future__ import annotations

import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any

from authlib.oauth2 import OAuth2Request
from authlib.oauth2.rfc6749 import scope_to_list
from joserfc.jwk import RSAKey

from accessbot_emulators.idp.accounts import Account, Client
from accessbot_emulators.idp.personalities import GENERIC, Personality
from accessbot_emulators.idp.signing import IdTokenOverride, new_key, sign_id_token


@dataclass
class AuthCode:
    """An issued authorization code; implements authlib's OIDC ``AuthorizationCodeMixin`` duck type."""

    code: str
    client_id: str
    redirect_uri: str | None
    scope: str
    username: str
    nonce: str | None
    auth_time: int
    code_challenge: str
    code_challenge_method: str
    expires_at: float
    access_type: str = ""
    prompt: str = ""

    def get_redirect_uri(self) -> str | None:
        """The redirect URI the code was issued for."""
        return self.redirect_uri

    def get_scope(self) -> str:
        """The granted scope."""
        return self.scope

    def get_nonce(self) -> str | None:
        """The nonce of the authorization request."""
        return self.nonce

    def get_auth_time(self) -> int:
        """When the user signed in."""
        return self.auth_time

    def get_acr(self) -> None:
        """No authentication context class."""

    def get_amr(self) -> None:
        """No authentication methods reference."""


@dataclass
class Family:
    """All tokens descending from one login (one authorization code)."""

    family_id: str
    client_id: str
    username: str
    scope: str
    auth_time: int
    revoked: bool = False
    issued_at: float = 0.0  # when the login happened (account events after it refuse its refresh tokens)
    offline: bool = True  # Keycloak: an offline_access token outlives the SSO session


@dataclass
class TokenRecord:
    """One token response: an access token and (maybe) a refresh token; implements ``TokenMixin``."""

    access_token: str
    refresh_token: str | None
    family: Family
    access_expires_at: float
    access_revoked: bool = False
    refresh_state: str = "active"  # active | rotated | revoked
    hint: str | None = None  # which token of the record a revocation query matched

    def check_client(self, client: Client) -> bool:
        """Whether `client` owns the token."""
        return client.client_id == self.family.client_id

    def get_scope(self) -> str:
        """The scope of the login."""
        return self.family.scope

    def get_expires_in(self) -> int:
        """Seconds the access token has left."""
        return max(0, int(self.access_expires_at - time.time()))

    def is_expired(self) -> bool:
        """Whether the access token expired."""
        return time.time() >= self.access_expires_at

    def is_revoked(self) -> bool:
        """Whether the access token or its family was revoked."""
        return self.access_revoked or self.family.revoked


class ProviderStore:
    """The provider's in-memory state; the provider holds its lock around every use."""

    def __init__(
        self,
        clients: dict[str, Client],
        accounts: dict[str, Account],
        *,
        access_token_ttl: int,
        personality: Personality = GENERIC,
    ) -> None:
        """Start with these clients and accounts, one signing key, and nothing issued."""
        self.personality = personality
        self.app_tokens: dict[str, tuple[str, float]] = {}  # Graph / Directory bearer token → (who, expiry)
        self.clients = clients
        self.accounts = accounts
        self.access_token_ttl = access_token_ttl
        self.keys: list[RSAKey] = [new_key()]
        self.codes: dict[str, AuthCode] = {}
        self.spent_codes: dict[str, str] = {}
        self.used_nonces: set[tuple[str, str]] = set()
        self.families: dict[str, Family] = {}
        self.access_tokens: dict[str, TokenRecord] = {}
        self.refresh_tokens: dict[str, TokenRecord] = {}
        self.override: IdTokenOverride | None = None
        self.signals: dict[str, int] = {}
        self.reuse_detected = 0
        self.id_tokens_issued = 0

    def account(self, username: str) -> Account:
        """The account `username`; KeyError when unknown."""
        account = self.accounts.get(username)
        if account is None:
            raise KeyError(username)
        return account

    def generate_token(
        self,
        *,
        grant_type: str,
        client: Client,
        user: Account | None = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        """authlib's token generator: a bearer access token, and a refresh token when asked for."""
        granted = [s for s in scope_to_list(client.get_allowed_scope(scope)) if s in self.personality.scopes_supported]
        token: dict[str, Any] = {
            "token_type": "Bearer",
            "access_token": secrets.token_urlsafe(32),
            "expires_in": expires_in or self.access_token_ttl,
            "scope": " ".join(granted) or "openid",
        }
        if include_refresh_token:
            token["refresh_token"] = secrets.token_urlsafe(48)
        return token

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        """Record an issued token response in the family of its code (or of the refresh token it replaces)."""
        old = request.refresh_token
        if isinstance(old, TokenRecord):
            family = old.family
            if not self.personality.rotates:
                token.pop("refresh_token", None)  # the same refresh token keeps working (no new one is sent)
        else:
            code: AuthCode = request.authorization_code
            scopes = scope_to_list(token.get("scope", code.scope))
            family = Family(
                family_id=uuid.uuid4().hex,
                client_id=request.client.client_id,
                username=code.username,
                scope=token.get("scope", code.scope),
                auth_time=code.auth_time,
                issued_at=time.time(),
                offline="offline_access" in scopes,
            )
            self.families[family.family_id] = family
            self.spent_codes[code.code] = family.family_id
            if not self._issues_refresh_token(code, scopes):
                token.pop("refresh_token", None)
        record = TokenRecord(
            access_token=token["access_token"],
            refresh_token=token.get("refresh_token"),
            family=family,
            access_expires_at=time.time() + int(token.get("expires_in", self.access_token_ttl)),
        )
        self.access_tokens[record.access_token] = record
        if record.refresh_token:
            self.refresh_tokens[record.refresh_token] = record

    def _issues_refresh_token(self, code: AuthCode, scopes: list[str]) -> bool:
        """Whether this login gets a refresh token (personalities.Personality.issues_refresh)."""
        rule = self.personality.issues_refresh
        if rule == "offline_access":
            return "offline_access" in scopes
        if rule == "access_type":
            # Google: access_type=offline, and after the first offline consent only with prompt=consent.
            account = self.accounts.get(code.username)
            if code.access_type != "offline" or account is None:
                return False
            first = code.client_id not in account.consented
            account.consented.add(code.client_id)
            return first or "consent" in code.prompt.split()
        return True

    def revoke_family(self, family_id: str, *, reason: str) -> None:
        """Revoke every access and refresh token descending from one login."""
        family = self.families.get(family_id)
        if family is None:
            return
        family.revoked = True
        for record in [*self.refresh_tokens.values(), *self.access_tokens.values()]:
            if record.family is family:
                record.access_revoked = True
                record.refresh_state = "revoked" if record.refresh_state == "active" else record.refresh_state
        self.signals[f"family_revoked:{reason}"] = self.signals.get(f"family_revoked:{reason}", 0) + 1

    def sign_id_token(self, claims: dict[str, Any]) -> str:
        """Sign an ID token with the newest key, applying (and consuming) a pending override."""
        override, self.override = self.override, None
        self.id_tokens_issued += 1
        return sign_id_token(claims, self.keys[-1], override)
