"""The OpenID Connect client: discovery, JWKS, authorization URL, code exchange, strict ID-token checks, refresh.

HTTP goes through a plain httpx.AsyncClient and JWS verification through joserfc; every claim is checked
explicitly (validation.py). A refused token request is classified by core.token_refusals (re-authentication,
deactivation, reuse). Implements core.ports.IdentityProvider.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import JWKRegistry, KeySet

from bot.adapters.oidc import validation
from bot.adapters.oidc.claims import ClaimNames, build_login, groups_value, parse_refusal
from bot.adapters.oidc.discovery import SERVICE, Metadata, choose_scopes, parse_metadata
from bot.core.errors import InvalidGrantError, PermanentUpstreamError, TokenRejected, TransientUpstreamError
from bot.core.model import VerifiedLogin
from bot.core.ports import RefreshedTokens
from bot.core.token_refusals import classify

log = logging.getLogger(__name__)

GENERIC_SCOPES = ("openid", "email", "profile", "groups", "offline_access")


def code_challenge(verifier: str) -> str:
    """The PKCE S256 challenge of a verifier (RFC 7636 §4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class OidcClient:
    """One relying party at one issuer; safe to share (caches are per instance, refreshed by TTL).

    `scopes` set: requested as they are. `scopes` None: `wanted_scopes` filtered by discovery's
    `scopes_supported` (discovery.choose_scopes). `issuer_aliases` are further accepted `iss` values (Google).
    """

    def __init__(
        self,
        *,
        issuer: str,
        client_id: str,
        client_secret: str,
        redirect_uri: str,
        scopes: Sequence[str] | None = None,
        wanted_scopes: Sequence[str] = GENERIC_SCOPES,
        extra_auth_params: Mapping[str, str] | None = None,
        allowed_algorithms: Sequence[str] = ("RS256",),
        groups_claim: str = "groups",
        claim_names: ClaimNames | None = None,
        issuer_aliases: Sequence[str] = (),
        timeout: float = 10.0,
        metadata_ttl: float = 3600.0,
        jwks_ttl: float = 3600.0,
        jwks_refetch_interval: float = 30.0,
        http: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._issuer = issuer
        self._issuers = frozenset({issuer, *issuer_aliases})
        self._client_id = client_id
        self.__secret = client_secret
        self._redirect_uri = redirect_uri
        self._scopes = tuple(scopes) if scopes is not None else None
        self._wanted = tuple(wanted_scopes)
        self._auth_params = dict(extra_auth_params or {})
        self._algorithms = tuple(a for a in allowed_algorithms if a != "none" and not a.startswith("HS"))
        self._names = claim_names or ClaimNames(groups=groups_claim)
        self._metadata_ttl = metadata_ttl
        self._jwks_ttl = jwks_ttl
        self._jwks_refetch_interval = jwks_refetch_interval
        self._clock = clock
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient(timeout=timeout, follow_redirects=False)
        self._metadata: Metadata | None = None
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

    @property
    def client_id(self) -> str:
        """The bot's client id at the provider."""
        return self._client_id

    @property
    def allowed_algorithms(self) -> tuple[str, ...]:
        """The asymmetric algorithms an ID token may be signed with."""
        return self._algorithms

    @property
    def extra_auth_params(self) -> dict[str, str]:
        """The extra authorization parameters sent with every sign-in."""
        return dict(self._auth_params)

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
        except (ValueError, RecursionError):
            raise PermanentUpstreamError(SERVICE, f"{what} is not JSON", status=response.status_code) from None
        if not isinstance(data, dict):
            raise PermanentUpstreamError(SERVICE, f"{what} is not a JSON object", status=response.status_code)
        return data

    def client_credentials(self) -> tuple[str, str]:
        """(client_id, client_secret): for adapters acting as the same app (Microsoft Graph)."""
        return self._client_id, self.__secret

    def _authenticated(self, meta: Metadata, form: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
        """Form and headers carrying the client's credentials the way the IdP says it accepts them."""
        if meta.post_auth:
            return {**form, "client_id": self._client_id, "client_secret": self.__secret}, {}
        # RFC 6749 §2.3.1: form-encode both parts before Basic encoding.
        raw = f"{quote(self._client_id, safe='')}:{quote(self.__secret, safe='')}".encode()
        return dict(form), {"Authorization": "Basic " + base64.b64encode(raw).decode("ascii")}

    # --- discovery and keys ------------------------------------------------------------------------------

    async def metadata(self) -> Metadata:
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
        meta = parse_metadata(data)
        self._metadata, self._metadata_at = meta, now
        return meta

    async def token_endpoint(self) -> str:
        """The provider's token endpoint (from discovery)."""
        return (await self.metadata()).token_endpoint

    async def scopes(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(requested, dropped): the configured scopes, else the wished ones discovery lists."""
        if self._scopes is not None:
            return self._scopes, ()
        return choose_scopes(self._wanted, (await self.metadata()).scopes_supported)

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

    # --- authorization and tokens ------------------------------------------------------------------------

    async def authorization_url(self, state: str, nonce: str, code_verifier: str) -> str:
        """The authorization endpoint URL for a code flow with PKCE (S256), state, nonce and the extra parameters."""
        meta = await self.metadata()
        requested, _ = await self.scopes()
        params = {
            **self._auth_params,
            "response_type": "code",
            "client_id": self._client_id,
            "redirect_uri": self._redirect_uri,
            "scope": " ".join(requested),
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
        refusal = parse_refusal(response.status_code, response.content)
        kind = classify(refusal)
        if kind is not None:
            raise InvalidGrantError(refusal.summary(), kind=kind, refusal=refusal)
        raise PermanentUpstreamError(
            SERVICE,
            f"token endpoint refused ({refusal.error or 'HTTP ' + str(response.status_code)})",
            status=response.status_code,
            code=refusal.error,
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
        header = validation.header(raw)
        alg = validation.check_algorithm(header.get("alg"), self._algorithms)
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
        validation.check_claims(
            claims, issuers=self._issuers, client_id=self._client_id, nonce=nonce, now=self._clock()
        )
        at_hash = claims.get("at_hash")
        if at_hash is not None and access_token is not None and at_hash != validation.half_hash(access_token, alg):
            raise TokenRejected("at_hash mismatch")
        return claims

    def _expires_at(self, token: Mapping[str, Any]) -> int | None:
        expires_at, expires_in = validation.number(token.get("expires_at")), validation.number(token.get("expires_in"))
        if expires_at is not None:
            return int(expires_at)
        if expires_in is not None:
            return int(self._clock() + expires_in)
        return None

    async def _login(
        self, claims: Mapping[str, Any], token: Mapping[str, Any], access_token: str | None
    ) -> VerifiedLogin:
        """The login: ID-token claims, completed from userinfo (missing names, email, or the groups source)."""
        names = self._names
        merged = dict(claims)
        wanted = (names.groups, names.email, "email_verified", "name")
        needs_userinfo = names.groups_from == "userinfo" or any(n not in merged for n in (names.groups, names.email))
        info: dict[str, Any] = {}
        if needs_userinfo and access_token:
            try:
                info = await self.userinfo(access_token)
            except PermanentUpstreamError:
                info = {}
            if info and info.get("sub") != merged.get("sub"):
                raise TokenRejected("userinfo subject mismatch")
            for name in wanted:
                if name not in merged and name in info and name != names.groups:
                    merged[name] = info[name]
            if names.groups_from == "id_token" and names.groups not in merged and names.groups in info:
                merged[names.groups] = info[names.groups]
        refresh_token = token.get("refresh_token")
        return build_login(
            issuer=self._issuer,
            claims=merged,
            names=names,
            refresh_token=refresh_token if isinstance(refresh_token, str) and refresh_token else None,
            access_token_expires_at=self._expires_at(token),
            userinfo_groups=groups_value(info.get(names.groups)) if info else None,
        )
