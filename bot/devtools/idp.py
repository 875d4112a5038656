"""Dev OpenID Connect provider (authlib server side, joserfc signing) for tests and `accessbot demo`.

Built on authlib's server classes: an ``AuthorizationServer`` with a small Starlette integration, the
``AuthorizationCodeGrant`` with PKCE (S256 only, always required) and the ``OpenIDCode`` extension, a
``RefreshTokenGrant`` with rotation and reuse detection, and the RFC 7009 ``RevocationEndpoint``. ID tokens are
signed with joserfc (RS256), never with the deprecated ``authlib.jose``. Everything lives in memory.

Test/demo controls live under ``/_admin/`` and need the ``X-Admin-Token`` header (see :class:`DevIdP`).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import hmac
import html
import json
import os
import secrets
import socket
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from ipaddress import ip_address
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlencode, urljoin, urlsplit

import httpx
import uvicorn
import yaml
from authlib.oauth2 import AuthorizationServer, OAuth2Error, OAuth2Request
from authlib.oauth2.rfc6749 import (
    AuthorizationCodeGrant,
    InvalidGrantError,
    InvalidRequestError,
    JsonPayload,
    JsonRequest,
    OAuth2Payload,
    RefreshTokenGrant,
    scope_to_list,
)
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core.grants import OpenIDCode
from authlib.oidc.core.util import create_half_hash
from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

__all__ = [
    "FAILABLE_ENDPOINTS",
    "SIGN_MODES",
    "SUPPORTED_SCOPES",
    "Account",
    "AccountsFile",
    "Client",
    "DevIdP",
    "LoginFailedError",
    "complete_login",
    "load_accounts",
    "main",
    "run_in_thread",
    "running",
    "serve",
]

SUPPORTED_SCOPES = ("openid", "email", "profile", "groups", "offline_access")
#: ``sign`` values accepted by ``/_admin/next-id-token``.
SIGN_MODES = ("rs256", "none", "hs256-public-key", "unknown-kid", "bad-signature")
#: ``endpoint`` values accepted by ``/_admin/fail-next``.
FAILABLE_ENDPOINTS = ("discovery", "jwks", "authorize", "token", "userinfo", "revoke")
_SUB_NAMESPACE = uuid.UUID("8f1e5c1a-6c1b-4d39-9a53-2f5d8f0b7a11")
_LOGIN_FIELDS = ("username", "password", "action")
_CLAIMS_SUPPORTED = "iss sub aud exp iat auth_time nonce at_hash email email_verified name preferred_username groups"


# ---------------------------------------------------------------------------------------------------------------
# Accounts file


@dataclass
class Account:
    """One login account of the dev IdP (mutable: admin endpoints disable it or change its groups)."""

    username: str
    password: str
    sub: str
    email: str | None = None
    email_verified: bool | None = None
    name: str | None = None
    groups: list[str] = field(default_factory=list)
    disabled: bool = False

    def claims(self) -> dict[str, Any]:
        """Return the identity claims shared by the ID token and userinfo."""
        out: dict[str, Any] = {"sub": self.sub, "preferred_username": self.username, "groups": list(self.groups)}
        if self.email is not None:
            out["email"] = self.email
        if self.email_verified is not None:
            out["email_verified"] = self.email_verified
        if self.name is not None:
            out["name"] = self.name
        return out


def _is_loopback_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Client:
    """A registered relying party; implements authlib's ``ClientMixin`` duck type."""

    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...]
    auth_methods: tuple[str, ...] = ("client_secret_basic", "client_secret_post")

    def get_client_id(self) -> str:
        """Return the client id."""
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        """Return the first concrete registered redirect URI, if any."""
        return next((uri for uri in self.redirect_uris if uri != "*"), None)

    def get_allowed_scope(self, scope: str | None) -> str:
        """Return the requested scopes this server knows (``openid`` when none were asked for)."""
        if not scope:
            return "openid"
        return " ".join(s for s in scope_to_list(scope) if s in SUPPORTED_SCOPES)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        """Exact match against the registered URIs; a ``*`` entry admits any loopback URL."""
        if redirect_uri in self.redirect_uris:
            return True
        return "*" in self.redirect_uris and _is_loopback_url(redirect_uri)

    def check_client_secret(self, client_secret: str) -> bool:
        """Compare the secret in constant time."""
        return hmac.compare_digest(client_secret.encode(), self.client_secret.encode())

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        """Confidential client: secret in Basic auth or in the POST body, as registered (a strict IdP allows one)."""
        return method in self.auth_methods

    def check_response_type(self, response_type: str) -> bool:
        """Only the code flow."""
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        """Authorization code and refresh token grants."""
        return grant_type in ("authorization_code", "refresh_token")


def _str_list(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{where}: expected a list of strings")
    return list(value)


@dataclass
class AccountsFile:
    """A parsed accounts file: optional fixed issuer, clients by id, accounts by username."""

    issuer: str | None
    clients: dict[str, Client]
    accounts: dict[str, Account]


def load_accounts(source: Mapping[str, Any] | str | os.PathLike[str]) -> AccountsFile:
    """Parse and validate an accounts mapping or YAML file; errors name the offending field."""
    if isinstance(source, Mapping):
        raw: Any = dict(source)
    else:
        raw = yaml.safe_load(Path(source).read_text(encoding="utf-8"))
    if not isinstance(raw, dict):
        raise ValueError("accounts file: expected a mapping with 'clients' and 'accounts'")
    unknown = set(raw) - {"issuer", "clients", "accounts"}
    if unknown:
        raise ValueError(f"accounts file: unknown keys {sorted(unknown)}")
    issuer = raw.get("issuer")
    if issuer is not None and (not isinstance(issuer, str) or not issuer.startswith(("http://", "https://"))):
        raise ValueError("issuer: expected an http(s) URL")
    clients: dict[str, Client] = {}
    raw_clients = raw.get("clients")
    if not isinstance(raw_clients, list) or not raw_clients:
        raise ValueError("clients: expected a non-empty list")
    for i, item in enumerate(raw_clients):
        where = f"clients[{i}]"
        if not isinstance(item, dict):
            raise ValueError(f"{where}: expected a mapping")
        cid, secret = item.get("client_id"), item.get("client_secret")
        if not isinstance(cid, str) or not cid:
            raise ValueError(f"{where}.client_id: expected a non-empty string")
        if not isinstance(secret, str) or not secret:
            raise ValueError(f"{where}.client_secret: expected a non-empty string")
        uris = _str_list(item.get("redirect_uris"), f"{where}.redirect_uris")
        methods = item.get("token_endpoint_auth_methods", ["client_secret_basic", "client_secret_post"])
        methods = _str_list(methods, f"{where}.token_endpoint_auth_methods")
        if not set(methods) <= {"client_secret_basic", "client_secret_post"} or not methods:
            raise ValueError(
                f"{where}.token_endpoint_auth_methods: expected client_secret_basic and/or client_secret_post"
            )
        clients[cid] = Client(cid, secret, tuple(uris), tuple(methods))
    accounts: dict[str, Account] = {}
    raw_accounts = raw.get("accounts")
    if not isinstance(raw_accounts, dict) or not raw_accounts:
        raise ValueError("accounts: expected a non-empty mapping of username to account")
    allowed = {"password", "sub", "email", "email_verified", "name", "groups", "disabled"}
    for username, item in raw_accounts.items():
        where = f"accounts.{username}"
        if not isinstance(item, dict):
            raise ValueError(f"{where}: expected a mapping")
        extra = set(item) - allowed
        if extra:
            raise ValueError(f"{where}: unknown keys {sorted(extra)}")
        password = item.get("password")
        if not isinstance(password, str) or not password:
            raise ValueError(f"{where}.password: expected a non-empty string")
        sub = item.get("sub") or str(uuid.uuid5(_SUB_NAMESPACE, str(username)))
        for key in ("sub", "email", "name"):
            if key in item and item[key] is not None and not isinstance(item[key], str):
                raise ValueError(f"{where}.{key}: expected a string")
        for key in ("email_verified", "disabled"):
            if key in item and not isinstance(item[key], bool):
                raise ValueError(f"{where}.{key}: expected true or false")
        accounts[str(username)] = Account(
            username=str(username),
            password=password,
            sub=str(sub),
            email=item.get("email"),
            email_verified=item.get("email_verified"),
            name=item.get("name"),
            groups=_str_list(item.get("groups", []), f"{where}.groups"),
            disabled=bool(item.get("disabled", False)),
        )
    return AccountsFile(issuer=issuer, clients=clients, accounts=accounts)


# ---------------------------------------------------------------------------------------------------------------
# Stored grants


@dataclass
class _AuthCode:
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

    def get_redirect_uri(self) -> str | None:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> None:
        return None

    def get_amr(self) -> None:
        return None


@dataclass
class _Family:
    """All tokens descending from one login (one authorization code)."""

    family_id: str
    client_id: str
    username: str
    scope: str
    auth_time: int
    revoked: bool = False


@dataclass
class _TokenRecord:
    """One token response: an access token and (maybe) a refresh token; implements ``TokenMixin``."""

    access_token: str
    refresh_token: str | None
    family: _Family
    access_expires_at: float
    access_revoked: bool = False
    refresh_state: str = "active"  # active | rotated | revoked
    hint: str | None = None  # which token of the record a revocation query matched

    def check_client(self, client: Client) -> bool:
        return client.client_id == self.family.client_id

    def get_scope(self) -> str:
        return self.family.scope

    def get_expires_in(self) -> int:
        return max(0, int(self.access_expires_at - time.time()))

    def is_expired(self) -> bool:
        return time.time() >= self.access_expires_at

    def is_revoked(self) -> bool:
        return self.access_revoked or self.family.revoked


@dataclass
class _IdTokenOverride:
    claims: dict[str, Any]
    exp_offset: int | None
    iat_offset: int | None
    sign: str


# ---------------------------------------------------------------------------------------------------------------
# authlib server integration (Starlette)


class _Payload(OAuth2Payload):  # type: ignore[misc]
    def __init__(self, datalist: dict[str, list[str]]) -> None:
        self._datalist = datalist
        self._data = {k: v[0] for k, v in datalist.items() if v}

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> dict[str, list[str]]:
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
class _ReadRequest:
    """A Starlette request whose body has already been read (authlib's server API is synchronous)."""

    method: str
    url: str
    headers: Mapping[str, str]
    query: list[tuple[str, str]]
    form: list[tuple[str, str]]
    json: Any = None
    dropped: dict[str, str] = field(default_factory=dict)


async def _read(request: Request, *, drop: tuple[str, ...] = ()) -> _ReadRequest:
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
    return _ReadRequest(request.method, str(request.url), request.headers, query, form, data, dropped)


class _Server(AuthorizationServer):  # type: ignore[misc]
    """authlib ``AuthorizationServer`` wired to the in-memory store of a :class:`DevIdP`."""

    def __init__(self, idp: DevIdP) -> None:
        super().__init__(scopes_supported=list(SUPPORTED_SCOPES))
        self.idp = idp
        self.register_token_generator("default", idp._generate_token)

    def query_client(self, client_id: str) -> Client | None:
        return self.idp._clients.get(client_id)

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        self.idp._save_token(token, request)

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        if isinstance(request, OAuth2Request):
            return request
        if not isinstance(request, _ReadRequest):
            raise TypeError("expected a request read by the dev IdP")
        return _StarletteOAuth2Request(request.method, request.url, request.headers, request.query, request.form)

    def create_json_request(self, request: Any) -> JsonRequest:
        if not isinstance(request, _ReadRequest):
            raise TypeError("expected a request read by the dev IdP")
        return _StarletteJsonRequest(request.method, request.url, request.headers, request.json)

    def handle_response(self, status: int, body: Any, headers: list[tuple[str, str]]) -> Response:
        hdrs = dict(headers or [])
        if isinstance(body, dict):
            hdrs.pop("Content-Type", None)
            return JSONResponse(body, status_code=status, headers=hdrs)
        return Response(body or b"", status_code=status, headers=hdrs)

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        self.idp._signals[name] = self.idp._signals.get(name, 0) + 1


class _S256CodeChallenge(CodeChallenge):  # type: ignore[misc]
    """PKCE with S256 only, required from every client (confidential ones too)."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]  # noqa: RUF012 - authlib class attribute
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("Missing 'code_challenge' (PKCE is required).")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("'code_challenge_method' must be S256.")
        super().validate_code_challenge(grant, redirect_uri)

    def validate_code_verifier(self, grant: Any, result: Any) -> None:
        if not grant.request.form.get("code_verifier"):
            raise InvalidRequestError("Missing 'code_verifier'")
        super().validate_code_verifier(grant, result)


class _OpenIDCode(OpenIDCode):  # type: ignore[misc]
    """OIDC extension for both grants; the ID token is built here and signed by the IdP (joserfc)."""

    def __init__(self, idp: DevIdP) -> None:
        super().__init__(require_nonce=False)
        self.idp = idp

    def exists_nonce(self, nonce: str, request: OAuth2Request) -> bool:
        return (request.payload.client_id, nonce) in self.idp._used_nonces

    def generate_user_info(self, user: Account, scope: str) -> dict[str, Any]:
        return user.claims()

    def get_client_claims(self, client: Client) -> dict[str, Any]:
        now = int(time.time())
        return {"iss": self.idp.issuer, "aud": client.client_id, "iat": now, "exp": now + self.idp.id_token_ttl}

    def encode_id_token(self, token: dict[str, Any], request: OAuth2Request) -> str:
        claims = self.get_compatible_claims(request)
        if request.authorization_code is not None:
            claims.update(self.get_authorization_code_claims(request.authorization_code))
        elif isinstance(request.refresh_token, _TokenRecord):
            claims["auth_time"] = request.refresh_token.family.auth_time
        if access_token := token.get("access_token"):
            at_hash = create_half_hash(access_token, "RS256")
            if at_hash is not None:
                claims["at_hash"] = at_hash.decode("ascii")
        claims.update(self.generate_user_info(request.user, token["scope"]))
        return self.idp._sign_id_token(claims)


class _CodeGrant(AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]  # noqa: RUF012

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        idp: DevIdP = self.server.idp
        user: Account = request.user
        data = request.payload.data
        nonce = data.get("nonce")
        idp._codes[code] = _AuthCode(
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
        )
        if nonce:
            idp._used_nonces.add((request.client.client_id, nonce))

    def query_authorization_code(self, code: str, client: Client) -> _AuthCode | None:
        idp: DevIdP = self.server.idp
        if code in idp._spent_codes:
            # RFC 6749 §4.1.2: a code used twice revokes what it produced.
            family_id = idp._spent_codes[code]
            idp._revoke_family(family_id, reason="code_reuse")
            raise InvalidGrantError("Authorization code was already used.")
        item = idp._codes.get(code)
        if item is None or item.client_id != client.client_id or item.expires_at < time.time():
            return None
        return item

    def delete_authorization_code(self, authorization_code: _AuthCode) -> None:
        idp: DevIdP = self.server.idp
        idp._codes.pop(authorization_code.code, None)

    def authenticate_user(self, authorization_code: _AuthCode) -> Account | None:
        idp: DevIdP = self.server.idp
        account = idp._accounts.get(authorization_code.username)
        if account is None or account.disabled:
            return None
        return account


class _RefreshGrant(RefreshTokenGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]  # noqa: RUF012
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> _TokenRecord | None:
        idp: DevIdP = self.server.idp
        record = idp._refresh_tokens.get(refresh_token)
        if record is None:
            return None
        if record.family.revoked or record.refresh_state == "revoked":
            raise InvalidGrantError("Refresh token was revoked.")
        if record.refresh_state == "rotated":
            idp._revoke_family(record.family.family_id, reason="reuse")
            idp._reuse_detected += 1
            raise InvalidGrantError("Refresh token reuse detected; the token family is revoked.")
        account = idp._accounts.get(record.family.username)
        if account is None or account.disabled:
            raise InvalidGrantError("The account is disabled.")
        return record

    def authenticate_user(self, refresh_token: _TokenRecord) -> Account | None:
        idp: DevIdP = self.server.idp
        return idp._accounts.get(refresh_token.family.username)

    def revoke_old_credential(self, refresh_token: _TokenRecord) -> None:
        refresh_token.refresh_state = "rotated"


class _Revocation(RevocationEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]  # noqa: RUF012

    def query_token(self, token_string: str, token_type_hint: str | None) -> _TokenRecord | None:
        idp: DevIdP = self.server.idp
        order = ("access", "refresh") if token_type_hint == "access_token" else ("refresh", "access")
        for kind in order:
            table = idp._access_tokens if kind == "access" else idp._refresh_tokens
            if (record := table.get(token_string)) is not None:
                record.hint = kind
                return record
        return None

    def revoke_token(self, token: _TokenRecord, request: OAuth2Request) -> None:
        idp: DevIdP = self.server.idp
        if token.hint == "refresh":
            idp._revoke_family(token.family.family_id, reason="revocation")
        else:
            token.access_revoked = True


# ---------------------------------------------------------------------------------------------------------------
# The provider


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64json(obj: Mapping[str, Any]) -> str:
    return _b64(json.dumps(obj, separators=(",", ":")).encode())


def _new_key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"use": "sig", "alg": "RS256"}, private=True, auto_kid=True)


_Handler = Callable[[Request], Awaitable[Response]]


class DevIdP:
    """In-memory OpenID provider; ``.app`` is the Starlette ASGI app, ``.admin_token`` guards ``/_admin/``.

    ``source`` is a parsed accounts mapping or a path to the YAML accounts file. The issuer comes from the
    ``issuer`` argument, else the file, else it is bound to the real URL when served (:func:`run_in_thread`,
    :func:`running`, :func:`serve`).

    Behaviour worth knowing in tests:
    - Codes live ``code_ttl`` seconds and are single use; replaying one revokes the tokens it produced. A nonce
      already used for a code is refused (``invalid_request``) on the next authorization request.
    - Every refresh returns a new refresh token and ID token; the refreshed ID token keeps the original
      ``auth_time`` and carries no ``nonce``. A rotated refresh token presented again revokes its whole family.
    - Disabling an account makes login, refresh (``invalid_grant``) and userinfo (401) fail; enabling restores them.
    - ``set_next_id_token``/``/_admin/next-id-token``: ``claims`` are merged into the next ID token (``None``
      removes a claim); ``exp_offset``/``iat_offset`` set ``exp``/``iat`` to now plus the offset; ``sign`` is
      ``none`` (alg none, empty signature), ``hs256-public-key`` (HS256 keyed with the current public key's
      SubjectPublicKeyInfo PEM bytes), ``unknown-kid`` (RS256 with a fresh key that is never published) or
      ``bad-signature`` (a valid token whose signature bytes are altered).
    """

    def __init__(
        self,
        source: Mapping[str, Any] | str | os.PathLike[str],
        *,
        issuer: str | None = None,
        admin_token: str | None = None,
        access_token_ttl: int = 3600,
        id_token_ttl: int = 600,
        code_ttl: int = 600,
    ) -> None:
        parsed = load_accounts(source)
        configured = issuer or parsed.issuer
        self._issuer = configured.rstrip("/") if configured else None
        self._clients = parsed.clients
        self._accounts = parsed.accounts
        self.admin_token = admin_token or secrets.token_urlsafe(32)
        self.access_token_ttl = access_token_ttl
        self.id_token_ttl = id_token_ttl
        self.code_ttl = code_ttl
        self._lock = threading.RLock()
        self._keys: list[RSAKey] = [_new_key()]
        self._codes: dict[str, _AuthCode] = {}
        self._spent_codes: dict[str, str] = {}
        self._used_nonces: set[tuple[str, str]] = set()
        self._families: dict[str, _Family] = {}
        self._access_tokens: dict[str, _TokenRecord] = {}
        self._refresh_tokens: dict[str, _TokenRecord] = {}
        self._override: _IdTokenOverride | None = None
        self._failures: dict[str, tuple[int, int]] = {}
        self._signals: dict[str, int] = {}
        self._reuse_detected = 0
        self._id_tokens_issued = 0
        self._server = _Server(self)
        self._server.register_grant(_CodeGrant, [_S256CodeChallenge(required=True), _OpenIDCode(self)])
        self._server.register_grant(_RefreshGrant, [_OpenIDCode(self)])
        self._server.register_endpoint(_Revocation)
        self.app = self._build_app()

    # -- issuer ---------------------------------------------------------------------------------------------

    @property
    def issuer(self) -> str:
        """The issuer identifier (equal to the base URL the IdP is served on)."""
        if self._issuer is None:
            raise RuntimeError("issuer not known yet: serve the IdP (run_in_thread/serve) or pass issuer=")
        return self._issuer

    def bind_issuer(self, base_url: str) -> str:
        """Set the issuer to ``base_url`` unless one was configured; return the issuer in effect."""
        with self._lock:
            if self._issuer is None:
                self._issuer = base_url.rstrip("/")
            return self._issuer

    # -- controls (also reachable over /_admin/) -----------------------------------------------------------

    def _account(self, username: str) -> Account:
        account = self._accounts.get(username)
        if account is None:
            raise KeyError(username)
        return account

    def set_disabled(self, username: str, disabled: bool) -> None:
        """Disable or enable an account (disabled: no login, refresh → invalid_grant, userinfo → 401)."""
        with self._lock:
            self._account(username).disabled = disabled

    def set_groups(self, username: str, groups: list[str]) -> None:
        """Replace an account's groups (seen in the next ID token and userinfo)."""
        with self._lock:
            self._account(username).groups = list(groups)

    def rotate_keys(self) -> str:
        """Start signing with a new key; the previous public key stays in the JWKS. Return the new kid."""
        key = _new_key()
        with self._lock:
            self._keys = [*self._keys[-1:], key]
            return str(key.kid)

    def set_next_id_token(
        self,
        *,
        claims: Mapping[str, Any] | None = None,
        exp_offset: int | None = None,
        iat_offset: int | None = None,
        sign: str = "rs256",
    ) -> None:
        """Tamper with the next issued ID token only (claims: None removes; offsets are seconds from now)."""
        if sign not in SIGN_MODES:
            raise ValueError(f"sign: expected one of {', '.join(SIGN_MODES)}")
        with self._lock:
            self._override = _IdTokenOverride(dict(claims or {}), exp_offset, iat_offset, sign)

    def fail_next(self, endpoint: str, status: int = 503, count: int = 1) -> None:
        """Make the next ``count`` requests to ``endpoint`` fail with ``status``."""
        if endpoint not in FAILABLE_ENDPOINTS:
            raise ValueError(f"endpoint: expected one of {', '.join(FAILABLE_ENDPOINTS)}")
        with self._lock:
            self._failures[endpoint] = (status, count)

    def clear_pending(self) -> None:
        """Drop a pending ID-token override and injected failures (test isolation on a shared server)."""
        with self._lock:
            self._override = None
            self._failures.clear()

    def state(self) -> dict[str, Any]:
        """Counts for test assertions."""
        with self._lock:
            active = [f for f in self._families.values() if not f.revoked]
            return {
                "issuer": self._issuer,
                "kids": [str(k.kid) for k in self._keys],
                "accounts": {
                    a.username: {"sub": a.sub, "disabled": a.disabled, "groups": list(a.groups)}
                    for a in self._accounts.values()
                },
                "active_refresh_families": len(active),
                "revoked_refresh_families": len(self._families) - len(active),
                "active_refresh_tokens": sum(
                    1 for r in self._refresh_tokens.values() if r.refresh_state == "active" and not r.family.revoked
                ),
                "reuse_detected": self._reuse_detected,
                "outstanding_codes": len(self._codes),
                "id_tokens_issued": self._id_tokens_issued,
                "pending_id_token_override": self._override is not None,
                "pending_failures": {k: v[1] for k, v in self._failures.items()},
                "signals": dict(self._signals),
            }

    # -- storage hooks used by the authlib classes ---------------------------------------------------------

    def _generate_token(
        self,
        *,
        grant_type: str,
        client: Client,
        user: Account | None = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        token: dict[str, Any] = {
            "token_type": "Bearer",
            "access_token": secrets.token_urlsafe(32),
            "expires_in": expires_in or self.access_token_ttl,
            "scope": client.get_allowed_scope(scope),
        }
        if include_refresh_token:
            token["refresh_token"] = secrets.token_urlsafe(48)
        return token

    def _save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        old = request.refresh_token
        if isinstance(old, _TokenRecord):
            family = old.family
        else:
            code: _AuthCode = request.authorization_code
            family = _Family(
                family_id=uuid.uuid4().hex,
                client_id=request.client.client_id,
                username=code.username,
                scope=token.get("scope", code.scope),
                auth_time=code.auth_time,
            )
            self._families[family.family_id] = family
            self._spent_codes[code.code] = family.family_id
        record = _TokenRecord(
            access_token=token["access_token"],
            refresh_token=token.get("refresh_token"),
            family=family,
            access_expires_at=time.time() + int(token.get("expires_in", self.access_token_ttl)),
        )
        self._access_tokens[record.access_token] = record
        if record.refresh_token:
            self._refresh_tokens[record.refresh_token] = record

    def _revoke_family(self, family_id: str, *, reason: str) -> None:
        family = self._families.get(family_id)
        if family is None:
            return
        family.revoked = True
        for record in [*self._refresh_tokens.values(), *self._access_tokens.values()]:
            if record.family is family:
                record.access_revoked = True
                record.refresh_state = "revoked" if record.refresh_state == "active" else record.refresh_state
        self._signals[f"family_revoked:{reason}"] = self._signals.get(f"family_revoked:{reason}", 0) + 1

    def _sign_id_token(self, claims: dict[str, Any]) -> str:
        override, self._override = self._override, None
        self._id_tokens_issued += 1
        key = self._keys[-1]
        sign = "rs256"
        if override is not None:
            now = int(time.time())
            if override.iat_offset is not None:
                claims["iat"] = now + override.iat_offset
            if override.exp_offset is not None:
                claims["exp"] = now + override.exp_offset
            for name, value in override.claims.items():
                if value is None:
                    claims.pop(name, None)
                else:
                    claims[name] = value
            sign = override.sign
        header = {"typ": "JWT", "alg": "RS256", "kid": str(key.kid)}
        if sign == "none":
            return f"{_b64json({'typ': 'JWT', 'alg': 'none'})}.{_b64json(claims)}."
        if sign == "hs256-public-key":
            header["alg"] = "HS256"
            signing_input = f"{_b64json(header)}.{_b64json(claims)}"
            secret = key.as_pem(private=False)
            mac = hmac.new(secret, signing_input.encode("ascii"), hashlib.sha256).digest()
            return f"{signing_input}.{_b64(mac)}"
        if sign == "unknown-kid":
            key = _new_key()
            header["kid"] = str(key.kid)
        token = jwt.encode(header, claims, key, algorithms=["RS256"])
        if sign == "bad-signature":
            head, body, sig = token.split(".")
            raw = bytearray(base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)))
            raw[0] ^= 0xFF
            token = f"{head}.{body}.{_b64(bytes(raw))}"
        return token

    # -- HTTP -----------------------------------------------------------------------------------------------

    def _injected_failure(self, endpoint: str) -> Response | None:
        with self._lock:
            pending = self._failures.get(endpoint)
            if pending is None:
                return None
            status, count = pending
            if count <= 1:
                del self._failures[endpoint]
            else:
                self._failures[endpoint] = (status, count - 1)
        return JSONResponse(
            {"error": "temporarily_unavailable", "error_description": "injected failure"}, status_code=status
        )

    def _failable(self, endpoint: str, handler: _Handler) -> _Handler:
        async def wrapped(request: Request) -> Response:
            failure = self._injected_failure(endpoint)
            return failure if failure is not None else await handler(request)

        return wrapped

    def _build_app(self) -> Starlette:
        routes = [
            Route("/.well-known/openid-configuration", self._failable("discovery", self._discovery)),
            Route("/jwks", self._failable("jwks", self._jwks)),
            Route("/authorize", self._failable("authorize", self._authorize), methods=["GET", "POST"]),
            Route("/token", self._failable("token", self._token), methods=["POST"]),
            Route("/userinfo", self._failable("userinfo", self._userinfo), methods=["GET", "POST"]),
            Route("/revoke", self._failable("revoke", self._revoke), methods=["POST"]),
            Route("/_admin/disable", self._admin(self._admin_disable), methods=["POST"]),
            Route("/_admin/enable", self._admin(self._admin_enable), methods=["POST"]),
            Route("/_admin/groups", self._admin(self._admin_groups), methods=["POST"]),
            Route("/_admin/rotate-keys", self._admin(self._admin_rotate), methods=["POST"]),
            Route("/_admin/next-id-token", self._admin(self._admin_next_id_token), methods=["POST"]),
            Route("/_admin/fail-next", self._admin(self._admin_fail_next), methods=["POST"]),
            Route("/_admin/state", self._admin(self._admin_state), methods=["GET"]),
        ]
        return Starlette(routes=routes)

    def _auth_methods(self) -> list[str]:
        """Client authentication methods the token and revocation endpoints accept (union over clients)."""
        methods = {m for client in self._clients.values() for m in client.auth_methods}
        return sorted(methods, key=["client_secret_basic", "client_secret_post"].index)

    async def _discovery(self, request: Request) -> Response:
        iss = self.issuer
        return JSONResponse(
            {
                "issuer": iss,
                "authorization_endpoint": f"{iss}/authorize",
                "token_endpoint": f"{iss}/token",
                "jwks_uri": f"{iss}/jwks",
                "userinfo_endpoint": f"{iss}/userinfo",
                "revocation_endpoint": f"{iss}/revoke",
                "scopes_supported": list(SUPPORTED_SCOPES),
                "response_types_supported": ["code"],
                "response_modes_supported": ["query"],
                "grant_types_supported": ["authorization_code", "refresh_token"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": self._auth_methods(),
                "revocation_endpoint_auth_methods_supported": self._auth_methods(),
                "claims_supported": _CLAIMS_SUPPORTED.split(),
            }
        )

    async def _jwks(self, request: Request) -> Response:
        with self._lock:
            keys = [k.as_dict(private=False, kid=str(k.kid)) for k in self._keys]
        return JSONResponse({"keys": keys}, headers={"Cache-Control": "no-store"})

    async def _authorize(self, request: Request) -> Response:
        read = await _read(request, drop=_LOGIN_FIELDS)
        if request.method == "GET":
            return self._authorize_get(read)
        return self._authorize_post(read, read.dropped)

    def _authorize_get(self, read: _ReadRequest) -> Response:
        with self._lock:
            try:
                self._server.get_consent_grant(read, end_user=None)
            except OAuth2Error as error:
                return self._authorize_error(error)
        return self._login_form(read.query)

    def _authorize_post(self, read: _ReadRequest, fields: dict[str, str]) -> Response:
        with self._lock:
            oauth_request = self._server.create_oauth2_request(read)
            try:
                grant = self._server.get_consent_grant(oauth_request, end_user=None)
            except OAuth2Error as error:
                return self._authorize_error(error)
            if fields.get("action") == "deny":
                response: Response = self._server.create_authorization_response(
                    oauth_request, grant_user=None, grant=grant
                )
                return response
            account = self._accounts.get(fields.get("username", ""))
            password = fields.get("password", "")
            if account is None or not hmac.compare_digest(password.encode(), account.password.encode()):
                return self._login_form(read.form, error="Unknown username or wrong password.", status=401)
            if account.disabled:
                return self._login_form(read.form, error="This account is disabled.", status=403)
            return cast(
                Response, self._server.create_authorization_response(oauth_request, grant_user=account, grant=grant)
            )

    def _authorize_error(self, error: OAuth2Error) -> Response:
        if error.redirect_uri:
            # Only set by authlib after the client and its redirect_uri were validated (RFC 6749 §4.1.2.1).
            response: Response = self._server.handle_error_response(None, error)
            return response
        text = html.escape(f"{error.error}: {error.description or ''}")
        body = f"<!doctype html><title>Sign-in error</title><h1>Sign-in error</h1><p id='error'>{text}</p>"
        return HTMLResponse(body, status_code=400)

    def _login_form(self, params: list[tuple[str, str]], *, error: str | None = None, status: int = 200) -> Response:
        hidden = "\n".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
            for k, v in params
            if k not in _LOGIN_FIELDS
        )
        err = f'<p class="error" id="error">{html.escape(error)}</p>' if error else ""
        body = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Dev IdP sign-in</title>
<style>body{{font-family:sans-serif;max-width:22rem;margin:4rem auto}}label{{display:block;margin:.5rem 0}}
.error{{color:#b00}}</style></head>
<body><h1>Dev IdP sign-in</h1>{err}
<form method="post" action="authorize" id="login">
{hidden}
<label>Username <input name="username" autocomplete="username" autofocus></label>
<label>Password <input name="password" type="password" autocomplete="current-password"></label>
<button type="submit" name="action" value="login">Sign in</button>
<button type="submit" name="action" value="deny">Deny</button>
</form></body></html>"""
        return HTMLResponse(body, status_code=status, headers={"Cache-Control": "no-store"})

    async def _token(self, request: Request) -> Response:
        read = await _read(request)
        with self._lock:
            response: Response = self._server.create_token_response(read)
        return response

    async def _revoke(self, request: Request) -> Response:
        read = await _read(request)
        with self._lock:
            response: Response = self._server.create_endpoint_response("revocation", read)
        return response

    async def _userinfo(self, request: Request) -> Response:
        auth = request.headers.get("authorization", "")
        scheme, _, value = auth.partition(" ")
        with self._lock:
            record = self._access_tokens.get(value.strip()) if scheme.lower() == "bearer" else None
            account = self._accounts.get(record.family.username) if record else None
            if record is None or record.is_revoked() or record.is_expired() or account is None or account.disabled:
                return JSONResponse(
                    {"error": "invalid_token"},
                    status_code=401,
                    headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
                )
            return JSONResponse(account.claims(), headers={"Cache-Control": "no-store"})

    # -- admin ----------------------------------------------------------------------------------------------

    def _admin(self, handler: Callable[[Any], Mapping[str, Any]]) -> _Handler:
        async def wrapped(request: Request) -> Response:
            given = request.headers.get("x-admin-token", "")
            if not hmac.compare_digest(given.encode(), self.admin_token.encode()):
                return JSONResponse({"error": "forbidden"}, status_code=403)
            body: Any = {}
            if request.method == "POST" and await request.body():
                try:
                    body = await request.json()
                except ValueError:
                    return JSONResponse({"error": "body must be JSON"}, status_code=400)
            if not isinstance(body, dict):
                return JSONResponse({"error": "body must be a JSON object"}, status_code=400)
            try:
                result = handler(body)
            except KeyError as exc:
                return JSONResponse({"error": f"unknown account {exc.args[0]!r}"}, status_code=404)
            except (ValueError, TypeError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            return JSONResponse(dict(result))

        return wrapped

    @staticmethod
    def _username(body: Mapping[str, Any]) -> str:
        username = body.get("username")
        if not isinstance(username, str):
            raise ValueError("username: expected a string")
        return username

    def _admin_disable(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        self.set_disabled(self._username(body), True)
        return {"ok": True}

    def _admin_enable(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        self.set_disabled(self._username(body), False)
        return {"ok": True}

    def _admin_groups(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        self.set_groups(self._username(body), _str_list(body.get("groups"), "groups"))
        return {"ok": True}

    def _admin_rotate(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        return {"ok": True, "kid": self.rotate_keys()}

    def _admin_next_id_token(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        claims = body.get("claims", {})
        if not isinstance(claims, dict):
            raise ValueError("claims: expected an object")
        offsets: dict[str, int | None] = {}
        for name in ("exp_offset", "iat_offset"):
            value = body.get(name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                raise ValueError(f"{name}: expected an integer")
            offsets[name] = value
        sign = body.get("sign", "rs256")
        if not isinstance(sign, str):
            raise ValueError("sign: expected a string")
        self.set_next_id_token(
            claims=claims, exp_offset=offsets["exp_offset"], iat_offset=offsets["iat_offset"], sign=sign
        )
        return {"ok": True}

    def _admin_fail_next(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        endpoint, status, count = body.get("endpoint"), body.get("status", 503), body.get("count", 1)
        if not isinstance(endpoint, str):
            raise ValueError("endpoint: expected a string")
        if not isinstance(status, int) or not 400 <= status <= 599:
            raise ValueError("status: expected an HTTP error status")
        if not isinstance(count, int) or count < 1:
            raise ValueError("count: expected a positive integer")
        self.fail_next(endpoint, status, count)
        return {"ok": True}

    def _admin_state(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        return self.state()


# ---------------------------------------------------------------------------------------------------------------
# Serving


def _bind(host: str, port: int) -> tuple[socket.socket, str]:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted sockets inherit this; without it, Nagle plus delayed ACK adds ~40 ms to every response.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    real_port = sock.getsockname()[1]
    shown = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    if ":" in shown:
        shown = f"[{shown}]"
    return sock, f"http://{shown}:{real_port}"


def _uvicorn_server(idp: DevIdP) -> uvicorn.Server:
    config = uvicorn.Config(
        idp.app, log_level="warning", access_log=False, lifespan="off", ws="none", http="h11", loop="asyncio"
    )
    return uvicorn.Server(config)


@contextlib.contextmanager
def run_in_thread(idp: DevIdP, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve ``idp`` with uvicorn on a background thread; yield its base URL (the issuer when not configured)."""
    sock, base_url = _bind(host, port)
    idp.bind_issuer(base_url)
    server = _uvicorn_server(idp)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="dev-idp", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("dev IdP did not start")
            time.sleep(0.01)
        yield base_url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@contextlib.asynccontextmanager
async def running(idp: DevIdP, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """Serve ``idp`` on the current event loop; yield its base URL, stop on exit (for the demo and async tests).

    uvicorn captures SIGINT/SIGTERM while it serves on the main thread and re-raises them when it stops.
    """
    sock, base_url = _bind(host, port)
    idp.bind_issuer(base_url)
    server = _uvicorn_server(idp)
    task = asyncio.create_task(server.serve(sockets=[sock]), name="dev-idp")
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if task.done() or time.monotonic() > deadline:
                raise RuntimeError("dev IdP did not start")
            await asyncio.sleep(0.01)
        yield base_url
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=10)
        sock.close()


async def serve(
    source: DevIdP | str | os.PathLike[str],
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    admin_token: str | None = None,
) -> None:
    """Serve the dev IdP (an accounts file path, or a built :class:`DevIdP`) until cancelled or interrupted."""
    idp = source if isinstance(source, DevIdP) else DevIdP(source, admin_token=admin_token)
    sock, base_url = _bind(host, port)
    issuer = idp.bind_issuer(base_url)
    print(f"dev IdP listening on {base_url} (issuer {issuer})", file=sys.stderr, flush=True)
    try:
        await _uvicorn_server(idp).serve(sockets=[sock])
    finally:
        sock.close()


def main(argv: list[str] | None = None) -> int:
    """CLI: ``accessbot dev-idp --accounts FILE --port N [--host 127.0.0.1]``."""
    parser = argparse.ArgumentParser(prog="accessbot dev-idp", description="Run the dev OpenID Connect provider.")
    parser.add_argument("--accounts", required=True, help="YAML accounts file (clients and accounts)")
    parser.add_argument("--port", type=int, default=9000, help="port to listen on (0 picks a free one)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument(
        "--admin-token",
        default=os.environ.get("ACCESSBOT_DEV_IDP_ADMIN_TOKEN"),
        help="value of X-Admin-Token for /_admin/ (default: $ACCESSBOT_DEV_IDP_ADMIN_TOKEN, else random and unused)",
    )
    args = parser.parse_args(argv)
    try:
        load_accounts(args.accounts)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        print(f"dev-idp: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(serve(args.accounts, args.host, args.port, admin_token=args.admin_token))
    except KeyboardInterrupt:
        return 0
    except OSError as exc:
        print(f"dev-idp: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 1
    return 0


# ---------------------------------------------------------------------------------------------------------------
# Client-side convenience for tests and the demo


class LoginFailedError(Exception):
    """The dev IdP's login form did not redirect (wrong credentials, disabled account, bad request)."""


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.hidden: list[tuple[str, str]] = []
        self.error: str | None = None
        self._in_error = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form" and self.action is None:
            self.action = a.get("action") or ""
        elif tag == "input" and a.get("type") == "hidden" and a.get("name"):
            self.hidden.append((a["name"] or "", a.get("value") or ""))
        elif a.get("id") == "error":
            self._in_error = True

    def handle_data(self, data: str) -> None:
        if self._in_error:
            self.error = (self.error or "") + data

    def handle_endtag(self, tag: str) -> None:
        self._in_error = False


async def complete_login(
    client: httpx.AsyncClient, authorize_url: str, username: str, password: str, *, deny: bool = False
) -> str:
    """Open the login form, submit the credentials (or Deny), and return the redirect Location unfollowed."""
    page = await client.get(authorize_url, follow_redirects=False)
    if page.is_redirect:
        return page.headers["location"]
    parser = _FormParser()
    parser.feed(page.text)
    if page.status_code != 200 or parser.action is None:
        raise LoginFailedError(f"authorization request refused ({page.status_code}): {parser.error or ''}".strip())
    fields = [*parser.hidden, ("username", username), ("password", password), ("action", "deny" if deny else "login")]
    result = await client.post(
        urljoin(str(page.url), parser.action),
        content=urlencode(fields),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        follow_redirects=False,
    )
    if not result.is_redirect:
        failed = _FormParser()
        failed.feed(result.text)
        raise LoginFailedError(f"login refused ({result.status_code}): {failed.error or ''}".strip())
    return result.headers["location"]
