"""The OpenID Connect client: discovery, JWKS, authorization URL, code exchange, strict ID-token checks, refresh.

HTTP goes through a plain httpx.AsyncClient and JWS verification through joserfc; every claim is checked here
explicitly (libraries.md §2.4: authlib's defaults skip `aud`). Implements core.ports.IdentityProvider.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import JWKRegistry, KeySet

from bot.core.errors import (
    InvalidGrantError,
    PermanentUpstreamError,
    TokenRejected,
    TransientUpstreamError,
)
from bot.core.model import VerifiedLogin
from bot.core.ports import RefreshedTokens

log = logging.getLogger(__name__)

SERVICE = "identity provider"
LEEWAY = 60
_HASHES = {"256": hashlib.sha256, "384": hashlib.sha384, "512": hashlib.sha512}
_MAX_TOKEN = 16_384


def code_challenge(verifier: str) -> str:
    """The PKCE S256 challenge of a verifier (RFC 7636 §4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _wants_post_auth(methods: object) -> bool:
    """True when discovery lists client_secret_post but not client_secret_basic (the default when unlisted)."""
    if not isinstance(methods, list) or not methods:
        return False
    return "client_secret_basic" not in methods and "client_secret_post" in methods


@dataclass(frozen=True)
class _Metadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    revocation_endpoint: str | None
    post_auth: bool = False  # the IdP accepts only client_secret_post at its token endpoint


class OidcClient:
    """One relying party at one issuer; safe to share (caches are per instance, refreshed by TTL)."""

    def __init__(
        self,
        *,
        issuer: str,
        client_id: str,
        client_secret: str,
        redirect_uri: str,
        scopes: Sequence[str] = ("openid", "email", "profile"),
        allowed_algorithms: Sequence[str] = ("RS256",),
        groups_claim: str = "groups",
        timeout: float = 10.0,
        metadata_ttl: float = 3600.0,
        jwks_ttl: float = 3600.0,
        jwks_refetch_interval: float = 30.0,
        http: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._issuer = issuer
        self._client_id = client_id
        self.__secret = client_secret
        self._redirect_uri = redirect_uri
        self._scopes = tuple(scopes)
        self._algorithms = tuple(a for a in allowed_algorithms if a != "none" and not a.startswith("HS"))
        self._groups_claim = groups_claim
        self._metadata_ttl = metadata_ttl
        self._jwks_ttl = jwks_ttl
        self._jwks_refetch_interval = jwks_refetch_interval
        self._clock = clock
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient(timeout=timeout, follow_redirects=False)
        self._metadata: _Metadata | None = None
        self._metadata_at = 0.0
        self._keys: KeySet | None = None
        self._keys_at = 0.0
        self._last_refetch = float("-inf")
        self._lock = asyncio.Lock()
        self.jwks_fetches = 0  # how often the key set was downloaded (tests assert on it)

    def __repr__(self) -> str:
        return f"OidcClient(issuer={self._issuer!r}, client_id={self._client_id!r}, client_secret=<redacted>)"

    @property
    def issuer(self) -> str:
        """The configured issuer identifier."""
        return self._issuer

    async def aclose(self) -> None:
        """Close the HTTP client if this instance created it."""
        if self._owns_http:
            await self._http.aclose()

    # --- HTTP ------------------------------------------------------------------------------------------

    async def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self._http.request(method, url, **kwargs)
        except httpx.TimeoutException:
            raise TransientUpstreamError(SERVICE, "timed out") from None
        except httpx.HTTPError as err:
            raise TransientUpstreamError(SERVICE, f"cannot be reached ({type(err).__name__})") from None
        if response.status_code == 429 or response.status_code >= 500:
            raise TransientUpstreamError(SERVICE, f"answered HTTP {response.status_code}", status=response.status_code)
        return response

    @staticmethod
    def _json(response: httpx.Response, what: str) -> dict[str, Any]:
        try:
            data = response.json()
        except ValueError:
            raise PermanentUpstreamError(SERVICE, f"{what} is not JSON", status=response.status_code) from None
        if not isinstance(data, dict):
            raise PermanentUpstreamError(SERVICE, f"{what} is not a JSON object", status=response.status_code)
        return data

    def _client_auth(self) -> dict[str, str]:
        # RFC 6749 §2.3.1: form-encode both parts before Basic encoding.
        raw = f"{quote(self._client_id, safe='')}:{quote(self.__secret, safe='')}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode("ascii")}

    def _authenticated(self, meta: _Metadata, form: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
        """Form and headers carrying the client's credentials the way the IdP says it accepts them."""
        if meta.post_auth:
            return {**form, "client_id": self._client_id, "client_secret": self.__secret}, {}
        return dict(form), self._client_auth()

    # --- discovery and keys ------------------------------------------------------------------------------

    async def metadata(self) -> _Metadata:
        """The discovery document (cached for metadata_ttl); its `issuer` must equal the configured one."""
        now = self._clock()
        if self._metadata is not None and now - self._metadata_at < self._metadata_ttl:
            return self._metadata
        url = self._issuer.rstrip("/") + "/.well-known/openid-configuration"
        response = await self._request("GET", url, headers={"Accept": "application/json"})
        if response.status_code != 200:
            raise PermanentUpstreamError(
                SERVICE, f"discovery answered HTTP {response.status_code}", status=response.status_code
            )
        data = self._json(response, "discovery document")
        if data.get("issuer") != self._issuer:
            raise TokenRejected("discovery issuer mismatch")
        try:
            meta = _Metadata(
                issuer=str(data["issuer"]),
                authorization_endpoint=str(data["authorization_endpoint"]),
                token_endpoint=str(data["token_endpoint"]),
                jwks_uri=str(data["jwks_uri"]),
                userinfo_endpoint=str(data["userinfo_endpoint"]) if data.get("userinfo_endpoint") else None,
                revocation_endpoint=str(data["revocation_endpoint"]) if data.get("revocation_endpoint") else None,
                post_auth=_wants_post_auth(data.get("token_endpoint_auth_methods_supported")),
            )
        except KeyError as err:
            raise PermanentUpstreamError(SERVICE, f"discovery document lacks {err.args[0]}") from None
        self._metadata, self._metadata_at = meta, now
        return meta

    async def _fetch_keys(self) -> KeySet:
        meta = await self.metadata()
        response = await self._request("GET", meta.jwks_uri, headers={"Accept": "application/json"})
        if response.status_code != 200:
            raise PermanentUpstreamError(SERVICE, f"JWKS answered HTTP {response.status_code}")
        data = self._json(response, "JWKS")
        keys = []
        for item in data.get("keys") or []:
            if not isinstance(item, dict) or item.get("use", "sig") != "sig" or item.get("kty") == "oct":
                continue
            try:
                keys.append(JWKRegistry.import_key(item))
            except (JoseError, ValueError, TypeError):
                log.warning("ignoring a JWKS entry that cannot be imported (kid %r)", item.get("kid"))
        self.jwks_fetches += 1
        self._keys, self._keys_at = KeySet(keys), self._clock()
        return self._keys

    async def _key_for(self, kid: str | None) -> Any:
        """The published key for `kid`: cached, refetched on TTL expiry, and once (rate-limited) when unknown."""
        async with self._lock:
            fresh = False
            if self._keys is None or self._clock() - self._keys_at >= self._jwks_ttl:
                await self._fetch_keys()
                fresh = True
            key = self._find_key(kid)
            if key is None and not fresh and self._clock() - self._last_refetch >= self._jwks_refetch_interval:
                self._last_refetch = self._clock()
                await self._fetch_keys()
                key = self._find_key(kid)
        if key is None:
            raise TokenRejected("unknown signing key" if kid else "signing key not identified")
        return key

    def _find_key(self, kid: str | None) -> Any:
        assert self._keys is not None
        if kid is None:
            return self._keys.keys[0] if len(self._keys.keys) == 1 else None
        return next((k for k in self._keys.keys if k.kid == kid), None)

    # --- authorization ---------------------------------------------------------------------------------

    async def authorization_url(self, state: str, nonce: str, code_verifier: str) -> str:
        """The authorization endpoint URL for a code flow with PKCE (S256), state and nonce."""
        meta = await self.metadata()
        params = {
            "response_type": "code",
            "client_id": self._client_id,
            "redirect_uri": self._redirect_uri,
            "scope": " ".join(self._scopes),
            "state": state,
            "nonce": nonce,
            "code_challenge": code_challenge(code_verifier),
            "code_challenge_method": "S256",
        }
        parts = urlsplit(meta.authorization_endpoint)
        query = f"{parts.query}&{urlencode(params)}" if parts.query else urlencode(params)
        return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))

    async def _token_request(self, form: Mapping[str, str]) -> dict[str, Any]:
        meta = await self.metadata()
        data, auth = self._authenticated(meta, form)
        response = await self._request(
            "POST",
            meta.token_endpoint,
            data=data,
            headers={**auth, "Accept": "application/json"},
        )
        if response.status_code == 200:
            return self._json(response, "token response")
        error, description = "", ""
        try:
            body = response.json()
            if isinstance(body, dict):
                error = str(body.get("error", ""))[:64]
                description = str(body.get("error_description", ""))[:200]
        except ValueError:
            pass
        if error == "invalid_grant":
            raise InvalidGrantError(f"invalid_grant: {description}" if description else "invalid_grant")
        raise PermanentUpstreamError(
            SERVICE,
            f"token endpoint refused ({error or 'HTTP ' + str(response.status_code)})",
            status=response.status_code,
            code=error,
        )

    async def exchange_code(self, code: str, code_verifier: str, expected_nonce: str) -> VerifiedLogin:
        """Redeem an authorization code and return the strictly validated login."""
        token = await self._token_request(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": self._redirect_uri,
                "code_verifier": code_verifier,
            }
        )
        id_token = token.get("id_token")
        if not isinstance(id_token, str) or not id_token:
            raise TokenRejected("no ID token in the answer")
        access_token = token.get("access_token") if isinstance(token.get("access_token"), str) else None
        claims = await self.validate_id_token(id_token, nonce=expected_nonce, access_token=access_token)
        return await self._login(claims, token, access_token)

    async def refresh_tokens(self, refresh_token: str) -> RefreshedTokens:
        """Use a refresh token; return the raw answer (new refresh token first, nothing verified yet)."""
        token = await self._token_request({"grant_type": "refresh_token", "refresh_token": refresh_token})
        access = token.get("access_token")
        new_refresh = token.get("refresh_token")
        id_token = token.get("id_token")
        return RefreshedTokens(
            refresh_token=new_refresh if isinstance(new_refresh, str) and new_refresh else refresh_token,
            id_token=id_token if isinstance(id_token, str) and id_token else None,
            access_token=access if isinstance(access, str) and access else None,
            access_token_expires_at=self._expires_at(token),
        )

    async def verify_refresh(self, tokens: RefreshedTokens, expected_subject: str) -> VerifiedLogin:
        """Validate a refresh answer (ID token without nonce, else userinfo) for the linked subject."""
        answer: dict[str, Any] = {"refresh_token": tokens.refresh_token}
        if tokens.access_token_expires_at is not None:
            answer["expires_at"] = tokens.access_token_expires_at
        if tokens.id_token:
            claims = await self.validate_id_token(tokens.id_token, nonce=None, access_token=tokens.access_token)
        elif tokens.access_token:
            claims = await self.userinfo(tokens.access_token)
            claims["iss"] = self._issuer
        else:
            raise TokenRejected("no ID token and no access token in the answer")
        if claims.get("sub") != expected_subject:
            raise TokenRejected("subject changed")
        return await self._login(claims, answer, tokens.access_token)

    async def refresh(self, refresh_token: str) -> VerifiedLogin:
        """Refresh and validate in one step (no nonce on refresh; the subject is not pinned here)."""
        tokens = await self.refresh_tokens(refresh_token)
        if tokens.id_token:
            claims = await self.validate_id_token(tokens.id_token, nonce=None, access_token=tokens.access_token)
            subject = str(claims["sub"])
        elif tokens.access_token:
            subject = str((await self.userinfo(tokens.access_token)).get("sub", ""))
        else:
            raise TokenRejected("no ID token and no access token in the answer")
        return await self.verify_refresh(tokens, subject)

    async def revoke(self, refresh_token: str) -> bool:
        """Revoke a refresh token (RFC 7009); False when the IdP has no revocation endpoint; raise on failure."""
        meta = await self.metadata()
        if not meta.revocation_endpoint:
            return False
        data, auth = self._authenticated(meta, {"token": refresh_token, "token_type_hint": "refresh_token"})
        response = await self._request("POST", meta.revocation_endpoint, data=data, headers=auth)
        if response.status_code != 200:
            raise PermanentUpstreamError(
                SERVICE, f"revocation answered HTTP {response.status_code}", status=response.status_code
            )
        return True

    async def userinfo(self, access_token: str) -> dict[str, Any]:
        """The userinfo claims for an access token."""
        meta = await self.metadata()
        if not meta.userinfo_endpoint:
            raise PermanentUpstreamError(SERVICE, "has no userinfo endpoint")
        response = await self._request(
            "GET",
            meta.userinfo_endpoint,
            headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
        )
        if response.status_code != 200:
            raise PermanentUpstreamError(
                SERVICE, f"userinfo answered HTTP {response.status_code}", status=response.status_code
            )
        return self._json(response, "userinfo")

    # --- ID token ------------------------------------------------------------------------------------

    async def validate_id_token(
        self, raw: str, *, nonce: str | None, access_token: str | None = None
    ) -> dict[str, Any]:
        """Verify signature and claims; `nonce=None` means a refresh (no nonce expected). Raise TokenRejected."""
        header = self._header(raw)
        alg = header.get("alg")
        if not isinstance(alg, str) or not alg:
            raise TokenRejected("algorithm missing")
        if alg.lower() == "none":
            raise TokenRejected("algorithm none not allowed")
        if alg not in self._algorithms:
            raise TokenRejected(f"algorithm {alg[:16]} not allowed")
        kid = header.get("kid")
        key = await self._key_for(kid if isinstance(kid, str) else None)
        try:
            token = jwt.decode(raw, key, algorithms=[alg])
        except JoseError as err:
            name = type(err).__name__
            raise TokenRejected("bad signature" if "Signature" in name else "malformed token") from None
        except (ValueError, TypeError):
            raise TokenRejected("malformed token") from None
        claims = dict(token.claims)
        self._check_claims(claims, nonce)
        at_hash = claims.get("at_hash")
        if at_hash is not None and access_token is not None and at_hash != self._half_hash(access_token, alg):
            raise TokenRejected("at_hash mismatch")
        return claims

    @staticmethod
    def _header(raw: str) -> dict[str, Any]:
        if len(raw) > _MAX_TOKEN or raw.count(".") != 2:
            raise TokenRejected("malformed token")
        try:
            header = json.loads(_b64decode(raw.split(".", 1)[0]))
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise TokenRejected("malformed token") from None
        if not isinstance(header, dict):
            raise TokenRejected("malformed token")
        return header

    def _check_claims(self, claims: Mapping[str, Any], nonce: str | None) -> None:
        if claims.get("iss") != self._issuer:
            raise TokenRejected("issuer mismatch")
        aud = claims.get("aud")
        audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        if self._client_id not in audiences:
            raise TokenRejected("audience mismatch")
        azp = claims.get("azp")
        if (len(audiences) > 1 or azp is not None) and azp != self._client_id:
            raise TokenRejected("azp mismatch")
        now = self._clock()
        exp, iat, nbf = _number(claims.get("exp")), _number(claims.get("iat")), _number(claims.get("nbf"))
        if exp is None:
            raise TokenRejected("expiry missing")
        if now > exp + LEEWAY:
            raise TokenRejected("token expired")
        if iat is None:
            raise TokenRejected("issue time missing")
        if iat > now + LEEWAY:
            raise TokenRejected("issued in the future")
        if nbf is not None and nbf > now + LEEWAY:
            raise TokenRejected("not valid yet")
        if nonce is not None:
            got = claims.get("nonce")
            if not got:
                raise TokenRejected("nonce missing")
            if got != nonce:
                raise TokenRejected("nonce mismatch")
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise TokenRejected("subject missing")

    @staticmethod
    def _half_hash(value: str, alg: str) -> str:
        hasher = _HASHES.get(alg[-3:], hashlib.sha512 if alg == "EdDSA" else hashlib.sha256)
        digest = hasher(value.encode("ascii")).digest()
        return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode("ascii")

    def _expires_at(self, token: Mapping[str, Any]) -> int | None:
        expires_at, expires_in = _number(token.get("expires_at")), _number(token.get("expires_in"))
        if expires_at is not None:
            return int(expires_at)
        if expires_in is not None:
            return int(self._clock() + expires_in)
        return None

    async def _login(
        self, claims: Mapping[str, Any], token: Mapping[str, Any], access_token: str | None
    ) -> VerifiedLogin:
        merged = dict(claims)
        if (self._groups_claim not in merged or "email" not in merged) and access_token:
            try:
                info = await self.userinfo(access_token)
            except PermanentUpstreamError:
                info = {}
            if info and info.get("sub") != merged.get("sub"):
                raise TokenRejected("userinfo subject mismatch")
            for name in (self._groups_claim, "email", "email_verified", "name"):
                if name not in merged and name in info:
                    merged[name] = info[name]
        refresh_token = token.get("refresh_token")
        return VerifiedLogin(
            issuer=self._issuer,
            subject=str(merged["sub"]),
            email=str(merged.get("email") or ""),
            email_verified=claim_flag(merged.get("email_verified")),
            name=str(merged.get("name") or merged.get("preferred_username") or ""),
            groups=_groups(merged.get(self._groups_claim)),
            refresh_token=refresh_token if isinstance(refresh_token, str) and refresh_token else None,
            access_token_expires_at=self._expires_at(token),
        )


def claim_flag(value: object) -> bool | None:
    """A boolean claim as IdPs send it: None when absent; True only for `true`, `1`, `"true"` or `"1"`.

    OIDC Core 1.0 section 5.1 types `email_verified` as a JSON boolean, but claim-mapping layers that pass user
    attributes through send `"true"`/`"false"` strings or 1/0. Anything else that is present counts as false: an
    unreadable flag must not pass the email guard.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value == 1
    if isinstance(value, str):
        return value.strip().lower() in {"true", "1"}
    return False


def _number(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _groups(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,) if value else ()
    if isinstance(value, list):
        return tuple(dict.fromkeys(str(v) for v in value if isinstance(v, str) and v))
    return ()
