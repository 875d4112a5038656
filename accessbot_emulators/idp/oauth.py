"""The OAuth 2.0 / OpenID Connect server on authlib, wired to the provider's in-memory store.

A small Starlette integration, PKCE (S256, always required), the code and refresh grants with rotation and reuse
detection, the OIDC extension, and RFC 7009 revocation.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from authlib.oauth2 import AuthorizationServer, OAuth2Error, OAuth2Request
from authlib.oauth2.rfc6749 import (
    AuthorizationCodeGrant,
    InvalidGrantError,
    InvalidRequestError,
    JsonPayload,
    JsonRequest,
    OAuth2Payload,
    RefreshTokenGrant,
)
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core.grants import OpenIDCode
from authlib.oidc.core.util import create_half_hash
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from accessbot_emulators.idp.accounts import Account, Client
from accessbot_emulators.idp.claims import claims_for
from accessbot_emulators.idp.personalities import Refusal
from accessbot_emulators.idp.store import AuthCode, TokenRecord

if TYPE_CHECKING:
    from accessbot_emulators.idp.provider import DevIdP


class _Payload(OAuth2Payload):  # type: ignore[misc]
    """authlib's payload over form and query fields (first value per name, and all of them)."""

    def __init__(self, datalist: dict[str, list[str]]) -> None:
        self._datalist = datalist
        self._data = {k: v[0] for k, v in datalist.items() if v}

    @property
    def data(self) -> dict[str, str]:
        """The first value of each field."""
        return self._data

    @property
    def datalist(self) -> dict[str, list[str]]:
        """Every value of each field."""
        return self._datalist


class _StarletteOAuth2Request(OAuth2Request):  # type: ignore[misc]
    """An ``OAuth2Request`` built from an already-read Starlette request (query and form as lists)."""

    def __init__(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        query: list[tuple[str, str]],
        form: list[tuple[str, str]],
    ) -> None:
        # The dev IdP serves plain HTTP on whatever host the demo uses; authlib's https check guards production
        # servers, so it is satisfied with a placeholder and the real URL is set afterwards.
        super().__init__(method=method, uri="https://dev-idp.localhost/", headers=headers)
        self.uri = url
        self._args = dict(reversed(query))
        self._form = dict(reversed(form))
        datalist: dict[str, list[str]] = {}
        for key, value in [*query, *form]:
            datalist.setdefault(key, []).append(value)
        self.payload = _Payload(datalist)

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form


class _StarletteJsonPayload(JsonPayload):  # type: ignore[misc]
    def __init__(self, data: Any) -> None:
        self._data = data

    @property
    def data(self) -> Any:
        return self._data


class _StarletteJsonRequest(JsonRequest):  # type: ignore[misc]
    def __init__(self, method: str, url: str, headers: Mapping[str, str], data: Any) -> None:
        super().__init__(method, url, headers)
        self.payload = _StarletteJsonPayload(data)


@dataclass
class ReadRequest:
    """A Starlette request whose body has already been read (authlib's server API is synchronous)."""

    method: str
    url: str
    headers: Mapping[str, str]
    query: list[tuple[str, str]]
    form: list[tuple[str, str]]
    json: Any = None
    dropped: dict[str, str] = field(default_factory=dict)


async def read_request(request: Request, *, drop: tuple[str, ...] = ()) -> ReadRequest:
    """Read query and body; fields named in ``drop`` go to ``dropped`` instead of the OAuth2 payload."""
    form: list[tuple[str, str]] = []
    dropped: dict[str, str] = {}
    data: Any = None
    ctype = request.headers.get("content-type", "")
    if request.method == "POST" and ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        async with request.form() as parsed:
            for key, value in parsed.multi_items():
                if isinstance(value, str) and key in drop:
                    dropped.setdefault(key, value)
                elif isinstance(value, str):
                    form.append((key, value))
    elif request.method == "POST" and ctype.startswith("application/json"):
        with contextlib.suppress(ValueError):
            data = await request.json()
    query = [(k, v) for k, v in request.query_params.multi_items() if k not in drop]
    return ReadRequest(request.method, str(request.url), request.headers, query, form, data, dropped)


class ProviderRefusal(OAuth2Error):  # type: ignore[misc]
    """A token endpoint refusal exactly as the personality's provider sends it (status and JSON body)."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(status_code=refusal.status, error=refusal.error)
        self.refusal = refusal

    def __call__(self, uri: str | None = None) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        return self.refusal.status, self.refusal.body(), [("Content-Type", "application/json")]


class AuthServer(AuthorizationServer):  # type: ignore[misc]
    """authlib ``AuthorizationServer`` wired to the in-memory store of a :class:`DevIdP`."""

    def __init__(self, idp: DevIdP) -> None:
        """Serve `idp`'s clients and tokens; scopes are checked by the provider (its personality), not authlib."""
        super().__init__(scopes_supported=None)
        self.idp = idp
        self.register_token_generator("default", idp.store.generate_token)

    def query_client(self, client_id: str) -> Client | None:
        """The registered client, or None."""
        return self.idp.store.clients.get(client_id)

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        """Record an issued token response in the store."""
        self.idp.store.save_token(token, request)

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        """authlib's request from one the provider has already read."""
        if isinstance(request, OAuth2Request):
            return request
        if not isinstance(request, ReadRequest):
            raise TypeError("expected a request read by the dev IdP")
        return _StarletteOAuth2Request(request.method, request.url, request.headers, request.query, request.form)

    def create_json_request(self, request: Any) -> JsonRequest:
        """authlib's JSON request from one the provider has already read."""
        if not isinstance(request, ReadRequest):
            raise TypeError("expected a request read by the dev IdP")
        return _StarletteJsonRequest(request.method, request.url, request.headers, request.json)

    def handle_response(self, status: int, body: Any, headers: list[tuple[str, str]]) -> Response:
        """A Starlette response for authlib's (status, body, headers)."""
        hdrs = dict(headers or [])
        if isinstance(body, dict):
            hdrs.pop("Content-Type", None)
            return JSONResponse(body, status_code=status, headers=hdrs)
        return Response(body or b"", status_code=status, headers=hdrs)

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """Count authlib's signals (the state shows them)."""
        self.idp.store.signals[name] = self.idp.store.signals.get(name, 0) + 1


class S256CodeChallenge(CodeChallenge):  # type: ignore[misc]
    """PKCE with S256 only, required from every client (confidential ones too)."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]  # noqa: RUF012 - authlib class attribute
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        """Refuse an authorization request without an S256 code challenge."""
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("Missing 'code_challenge' (PKCE is required).")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("'code_challenge_method' must be S256.")
        super().validate_code_challenge(grant, redirect_uri)

    def validate_code_verifier(self, grant: Any, result: Any) -> None:
        """Refuse a token request without a code verifier, then check it."""
        if not grant.request.form.get("code_verifier"):
            raise InvalidRequestError("Missing 'code_verifier'")
        super().validate_code_verifier(grant, result)


class OpenIDCodeExtension(OpenIDCode):  # type: ignore[misc]
    """OIDC extension for both grants; the ID token is built here and signed by the IdP (joserfc)."""

    def __init__(self, idp: DevIdP) -> None:
        """Build ID tokens for `idp`; a nonce is optional."""
        super().__init__(require_nonce=False)
        self.idp = idp

    def exists_nonce(self, nonce: str, request: OAuth2Request) -> bool:
        """Whether this client already used this nonce for a code."""
        return (request.payload.client_id, nonce) in self.idp.store.used_nonces

    def generate_user_info(self, user: Account, scope: str) -> dict[str, Any]:
        """The account's identity claims (the generic personality's; encode_id_token uses the client's view)."""
        return user.claims()

    def get_client_claims(self, client: Client) -> dict[str, Any]:
        """iss, aud, iat and exp of an ID token for `client` (Google: every other `iss` without its scheme)."""
        now = int(time.time())
        iss = self.idp.id_token_issuer()
        return {"iss": iss, "aud": client.client_id, "iat": now, "exp": now + self.idp.id_token_ttl}

    def encode_id_token(self, token: dict[str, Any], request: OAuth2Request) -> str:
        """Build the ID token's claims (auth_time, at_hash, identity) and have the store sign it."""
        claims = self.get_compatible_claims(request)
        if request.authorization_code is not None:
            claims.update(self.get_authorization_code_claims(request.authorization_code))
        elif isinstance(request.refresh_token, TokenRecord):
            claims["auth_time"] = request.refresh_token.family.auth_time
        if access_token := token.get("access_token"):
            at_hash = create_half_hash(access_token, "RS256")
            if at_hash is not None:
                claims["at_hash"] = at_hash.decode("ascii")
        scopes = str(token.get("scope") or "").split()
        claims.update(claims_for(request.user, self.idp.personality, request.client.client_id, scopes))
        return self.idp.store.sign_id_token(claims)


class CodeGrant(AuthorizationCodeGrant):  # type: ignore[misc]
    """The authorization code grant on the store (client secret in Basic auth or the body)."""

    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]  # noqa: RUF012

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        """Store an issued code with its PKCE challenge, nonce and expiry."""
        idp: DevIdP = self.server.idp
        user: Account = request.user
        data = request.payload.data
        nonce = data.get("nonce")
        idp.store.codes[code] = AuthCode(
            code=code,
            client_id=request.client.client_id,
            redirect_uri=request.payload.redirect_uri,
            scope=request.scope,
            username=user.username,
            nonce=nonce,
            auth_time=int(time.time()),
            code_challenge=data["code_challenge"],
            code_challenge_method=data["code_challenge_method"],
            expires_at=time.time() + idp.code_ttl,
            access_type=str(data.get("access_type") or ""),
            prompt=str(data.get("prompt") or ""),
        )
        if nonce:
            idp.store.used_nonces.add((request.client.client_id, nonce))

    def query_authorization_code(self, code: str, client: Client) -> AuthCode | None:
        """The live code of this client; a code presented twice revokes what it produced."""
        idp: DevIdP = self.server.idp
        if code in idp.store.spent_codes:
            # RFC 6749 §4.1.2: a code used twice revokes what it produced.
            family_id = idp.store.spent_codes[code]
            idp.store.revoke_family(family_id, reason="code_reuse")
            raise InvalidGrantError("Authorization code was already used.")
        item = idp.store.codes.get(code)
        if item is None or item.client_id != client.client_id or item.expires_at < time.time():
            return None
        return item

    def delete_authorization_code(self, authorization_code: AuthCode) -> None:
        """Spend a code."""
        idp: DevIdP = self.server.idp
        idp.store.codes.pop(authorization_code.code, None)

    def authenticate_user(self, authorization_code: AuthCode) -> Account | None:
        """The code's account, unless it was disabled since."""
        idp: DevIdP = self.server.idp
        account = idp.store.accounts.get(authorization_code.username)
        if account is None or account.disabled:
            return None
        return account


class RefreshGrant(RefreshTokenGrant):  # type: ignore[misc]
    """The refresh token grant: every refresh rotates the refresh token."""

    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]  # noqa: RUF012
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> TokenRecord | None:
        """The refresh token's record; a rotated one presented again revokes its family."""
        idp: DevIdP = self.server.idp
        record = idp.store.refresh_tokens.get(refresh_token)
        if record is None:
            return None
        personality = idp.personality
        if record.family.revoked or record.refresh_state == "revoked":
            refused = personality.refusals.get("sessions_revoked")
            raise ProviderRefusal(refused) if refused else InvalidGrantError("Refresh token was revoked.")
        if record.refresh_state == "rotated":
            idp.store.reuse_detected += 1
            if personality.reuse_refusal is not None:
                raise ProviderRefusal(personality.reuse_refusal)
            idp.store.revoke_family(record.family.family_id, reason="reuse")
            raise InvalidGrantError("Refresh token reuse detected; the token family is revoked.")
        refusal = idp.refresh_refusal(record.family)
        if refusal is not None:
            raise ProviderRefusal(refusal)
        return record

    def authenticate_user(self, refresh_token: TokenRecord) -> Account | None:
        """The account the refresh token was issued to."""
        idp: DevIdP = self.server.idp
        return idp.store.accounts.get(refresh_token.family.username)

    def revoke_old_credential(self, refresh_token: TokenRecord) -> None:
        """Mark a refresh token rotated once its replacement is issued (where the provider refuses reuse)."""
        personality = self.server.idp.personality
        if personality.rotates and personality.reuse_detection:
            refresh_token.refresh_state = "rotated"


class Revocation(RevocationEndpoint):  # type: ignore[misc]
    """RFC 7009 token revocation."""

    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]  # noqa: RUF012

    def query_token(self, token_string: str, token_type_hint: str | None) -> TokenRecord | None:
        """The record holding this token, trying the hinted kind first."""
        idp: DevIdP = self.server.idp
        order = ("access", "refresh") if token_type_hint == "access_token" else ("refresh", "access")
        for kind in order:
            table = idp.store.access_tokens if kind == "access" else idp.store.refresh_tokens
            if (record := table.get(token_string)) is not None:
                record.hint = kind
                return record
        return None

    def revoke_token(self, token: TokenRecord, request: OAuth2Request) -> None:
        """Revoking a refresh token revokes its family; an access token only itself."""
        idp: DevIdP = self.server.idp
        if token.hint == "refresh":
            idp.store.revoke_family(token.family.family_id, reason="revocation")
        else:
            token.access_revoked = True
