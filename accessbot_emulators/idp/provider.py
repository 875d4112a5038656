"""The dev OpenID provider: its endpoints and login form, its Python test controls, and serving it on loopback.

Discovery, JWKS, authorize (the login form), token, userinfo and revocation; accounts, keys and tokens live in
the store (store.py), the authlib wiring in oauth.py, the `/_admin/*` controls in admin.py.
"""

from __future__ import annotations

import contextlib
import hmac
import html
import os
import secrets
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from typing import Any, cast
from urllib.parse import urlencode

from authlib.oauth2 import OAuth2Error
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route

from accessbot_emulators.idp.accounts import load_accounts
from accessbot_emulators.idp.admin import AdminApi
from accessbot_emulators.idp.claims import claims_for
from accessbot_emulators.idp.discovery import discovery_document, scope_refusal
from accessbot_emulators.idp.google import GoogleWorkspace
from accessbot_emulators.idp.graph import GraphApi
from accessbot_emulators.idp.oauth import (
    AuthServer,
    CodeGrant,
    OpenIDCodeExtension,
    ReadRequest,
    RefreshGrant,
    Revocation,
    S256CodeChallenge,
    read_request,
)
from accessbot_emulators.idp.personalities import EVENTS, GENERIC_REFUSALS, PERSONALITIES, Personality, Refusal
from accessbot_emulators.idp.signing import SIGN_MODES, IdTokenOverride, new_key
from accessbot_emulators.idp.store import Family, ProviderStore
from accessbot_emulators.serving import bind, serve_in_loop, serve_in_thread

#: ``endpoint`` values accepted by ``/_admin/fail-next``.
FAILABLE_ENDPOINTS = ("discovery", "jwks", "authorize", "token", "userinfo", "revoke")
_LOGIN_FIELDS = ("username", "password", "action")

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
        personality: str | Personality = "generic",
        issuer: str | None = None,
        admin_token: str | None = None,
        access_token_ttl: int = 3600,
        id_token_ttl: int = 600,
        code_ttl: int = 600,
    ) -> None:
        """Load the accounts; nothing is served until `run_in_thread`, `running` or `serve`."""
        parsed = load_accounts(source)
        if isinstance(personality, str):
            if personality not in PERSONALITIES:
                raise ValueError(f"personality: expected one of {', '.join(PERSONALITIES)}")
            personality = PERSONALITIES[personality]
        self.personality = personality
        configured = issuer or parsed.issuer
        self._issuer = self._with_path(configured.rstrip("/")) if configured else None
        self.base_url: str | None = configured.rstrip("/") if configured else None
        self._id_tokens = 0
        self.store = ProviderStore(
            parsed.clients, parsed.accounts, access_token_ttl=access_token_ttl, personality=personality
        )
        self.graph = GraphApi(self)
        self.google = GoogleWorkspace(self)
        self.admin_token = admin_token or secrets.token_urlsafe(32)
        self.id_token_ttl = id_token_ttl
        self.code_ttl = code_ttl
        self._lock = threading.RLock()
        self._failures: dict[str, tuple[int, int]] = {}
        self._server = AuthServer(self)
        self._server.register_grant(CodeGrant, [S256CodeChallenge(required=True), OpenIDCodeExtension(self)])
        self._server.register_grant(RefreshGrant, [OpenIDCodeExtension(self)])
        self._server.register_endpoint(Revocation)
        self.app = self._build_app()

    @property
    def access_token_ttl(self) -> int:
        """Seconds an access token lives."""
        return self.store.access_token_ttl

    # -- issuer ---------------------------------------------------------------------------------------------

    @property
    def issuer(self) -> str:
        """The issuer identifier (equal to the base URL the IdP is served on)."""
        if self._issuer is None:
            raise RuntimeError("issuer not known yet: serve the IdP (run_in_thread/serve) or pass issuer=")
        return self._issuer

    def bind_issuer(self, base_url: str) -> str:
        """Set the issuer to ``base_url`` plus the personality's path unless one was configured; return it."""
        with self._lock:
            if self._issuer is None:
                self._issuer = self._with_path(base_url.rstrip("/"))
            if self.base_url is None:
                self.base_url = base_url.rstrip("/")
            return self._issuer

    def _with_path(self, base: str) -> str:
        """The issuer for a server base URL: the personality's path appended (Auth0 and authentik keep the `/`)."""
        path = self.personality.issuer_path
        return base + path if path and path != "/" else base + ("/" if path == "/" else "")

    @property
    def lock(self) -> threading.RLock:
        """The lock guarding the store (held around every use)."""
        return self._lock

    def id_token_issuer(self) -> str:
        """The `iss` of the next ID token: Google alternates `accounts.google.com` and `https://accounts.google.com`."""
        self._id_tokens += 1
        issuer = self.issuer
        if self.personality.iss_without_scheme and self._id_tokens % 2 == 0:
            return issuer.split("://", 1)[1]
        return issuer

    def refresh_refusal(self, family: Family) -> Refusal | None:
        """What a refresh of a token from `family` answers given the account's events (personalities.EVENTS)."""
        personality = self.personality
        account = self.store.accounts.get(family.username)
        if account is None or account.deleted:
            return personality.refusals.get("deleted") or GENERIC_REFUSALS["deleted"]
        if account.disabled:
            return personality.refusals.get("disabled") or GENERIC_REFUSALS["disabled"]
        for event in EVENTS:
            happened = account.events.get(event)
            refusal = personality.refusals.get(event)
            if happened is not None and happened >= family.issued_at and refusal is not None:
                return refusal
        max_age = personality.session_max
        if max_age is not None and not family.offline and time.time() - family.issued_at > max_age:
            return Refusal(400, "invalid_grant", "Session not active")
        return None

    def account_event(self, username: str, event: str) -> None:
        """Something happens to an account at the IdP (personalities.EVENTS; `enabled`/`restored` undo)."""
        with self._lock:
            account = self.store.account(username)
            if event == "disabled":
                account.disabled = True
            elif event == "deleted":
                account.deleted = True
            elif event == "enabled":
                account.disabled = False
            elif event == "restored":
                account.deleted = False
            elif event in EVENTS:
                account.events[event] = time.time()
            else:
                raise ValueError(f"event: expected one of {', '.join((*EVENTS, 'enabled', 'restored'))}")

    # -- controls (also reachable over /_admin/) -----------------------------------------------------------

    def set_disabled(self, username: str, disabled: bool) -> None:
        """Disable or enable an account (disabled: no login, refresh → invalid_grant, userinfo → 401)."""
        with self._lock:
            self.store.account(username).disabled = disabled

    def set_groups(self, username: str, groups: list[str]) -> None:
        """Replace an account's groups (seen in the next ID token and userinfo)."""
        with self._lock:
            self.store.account(username).groups = list(groups)

    def rotate_keys(self) -> str:
        """Start signing with a new key; the previous public key stays in the JWKS. Return the new kid."""
        key = new_key()
        with self._lock:
            self.store.keys = [*self.store.keys[-1:], key]
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
            self.store.override = IdTokenOverride(dict(claims or {}), exp_offset, iat_offset, sign)

    def fail_next(self, endpoint: str, status: int = 503, count: int = 1) -> None:
        """Make the next ``count`` requests to ``endpoint`` fail with ``status``."""
        if endpoint not in FAILABLE_ENDPOINTS:
            raise ValueError(f"endpoint: expected one of {', '.join(FAILABLE_ENDPOINTS)}")
        with self._lock:
            self._failures[endpoint] = (status, count)

    def clear_pending(self) -> None:
        """Drop a pending ID-token override and injected failures (test isolation on a shared server)."""
        with self._lock:
            self.store.override = None
            self._failures.clear()

    def state(self) -> dict[str, Any]:
        """Counts for test assertions."""
        with self._lock:
            active = [f for f in self.store.families.values() if not f.revoked]
            return {
                "issuer": self._issuer,
                "kids": [str(k.kid) for k in self.store.keys],
                "accounts": {
                    a.username: {"sub": a.sub, "disabled": a.disabled, "groups": list(a.groups)}
                    for a in self.store.accounts.values()
                },
                "active_refresh_families": len(active),
                "revoked_refresh_families": len(self.store.families) - len(active),
                "active_refresh_tokens": sum(
                    1
                    for r in self.store.refresh_tokens.values()
                    if r.refresh_state == "active" and not r.family.revoked
                ),
                "reuse_detected": self.store.reuse_detected,
                "outstanding_codes": len(self.store.codes),
                "id_tokens_issued": self.store.id_tokens_issued,
                "pending_id_token_override": self.store.override is not None,
                "pending_failures": {k: v[1] for k, v in self._failures.items()},
                "signals": dict(self.store.signals),
            }

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
        ]
        prefix = self.personality.issuer_path.rstrip("/")
        oidc: list[Route | Mount] = [Mount(prefix, routes=routes)] if prefix else list(routes)
        extra = [*(self.graph.routes() if self.personality.graph else [])]
        extra += self.google.routes() if self.personality.directory else []
        return Starlette(routes=[*oidc, *extra, *AdminApi(self).routes()])

    def _auth_methods(self) -> list[str]:
        """Client authentication methods the token and revocation endpoints accept (union over clients)."""
        methods = {m for client in self.store.clients.values() for m in client.auth_methods}
        return sorted(methods, key=["client_secret_basic", "client_secret_post"].index)

    async def _discovery(self, request: Request) -> Response:
        return JSONResponse(discovery_document(self.issuer, self.personality, self._auth_methods()))

    async def _jwks(self, request: Request) -> Response:
        with self._lock:
            keys = [k.as_dict(private=False, kid=str(k.kid)) for k in self.store.keys]
        return JSONResponse({"keys": keys}, headers={"Cache-Control": "no-store"})

    async def _authorize(self, request: Request) -> Response:
        read = await read_request(request, drop=_LOGIN_FIELDS)
        if request.method == "GET":
            return self._authorize_get(read)
        return self._authorize_post(read, read.dropped)

    def _authorize_get(self, read: ReadRequest) -> Response:
        with self._lock:
            try:
                grant = self._server.get_consent_grant(read, end_user=None)
            except OAuth2Error as error:
                return self._authorize_error(error)
        refused = self._scope_refused(grant)
        return refused if refused is not None else self._login_form(read.query)

    def _scope_refused(self, grant: Any) -> Response | None:
        """The personality's answer to unknown scopes: a redirect with the error, or (Google) an error page."""
        data = grant.request.payload.data
        refusal = scope_refusal(self.personality, data.get("scope"))
        if refusal is None:
            return None
        if self.personality.unknown_scope_page:
            text = html.escape(f"Error 400: {refusal.error}. {refusal.description}")
            body = f"<!doctype html><title>Sign-in error</title><h1>Access blocked</h1><p id='error'>{text}</p>"
            return HTMLResponse(body, status_code=400)
        params = {"error": refusal.error, "error_description": refusal.description}
        if data.get("state"):
            params["state"] = data["state"]
        target = grant.redirect_uri or grant.client.get_default_redirect_uri()
        return RedirectResponse(f"{target}{'&' if '?' in target else '?'}{urlencode(params)}", status_code=302)

    def _authorize_post(self, read: ReadRequest, fields: dict[str, str]) -> Response:
        with self._lock:
            oauth_request = self._server.create_oauth2_request(read)
            try:
                grant = self._server.get_consent_grant(oauth_request, end_user=None)
            except OAuth2Error as error:
                return self._authorize_error(error)
            refused = self._scope_refused(grant)
            if refused is not None:
                return refused
            if fields.get("action") == "deny":
                response: Response = self._server.create_authorization_response(
                    oauth_request, grant_user=None, grant=grant
                )
                return response
            account = self.store.accounts.get(fields.get("username", ""))
            password = fields.get("password", "")
            if (
                account is None
                or account.deleted
                or not hmac.compare_digest(password.encode(), account.password.encode())
            ):
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
        read = await read_request(request)
        form = dict(read.form)
        if form.get("grant_type") == "client_credentials" and self.personality.graph:
            return self.graph.client_credentials(request.headers, form)
        with self._lock:
            response: Response = self._server.create_token_response(read)
        return response

    async def _revoke(self, request: Request) -> Response:
        read = await read_request(request)
        with self._lock:
            response: Response = self._server.create_endpoint_response("revocation", read)
        return response

    async def _userinfo(self, request: Request) -> Response:
        auth = request.headers.get("authorization", "")
        scheme, _, value = auth.partition(" ")
        with self._lock:
            record = self.store.access_tokens.get(value.strip()) if scheme.lower() == "bearer" else None
            account = self.store.accounts.get(record.family.username) if record else None
            if (
                record is None
                or record.is_revoked()
                or record.is_expired()
                or account is None
                or account.disabled
                or account.deleted
            ):
                return JSONResponse(
                    {"error": "invalid_token"},
                    status_code=401,
                    headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
                )
            scopes = record.family.scope.split()
            claims = claims_for(account, self.personality, record.family.client_id, scopes, userinfo=True)
            return JSONResponse(claims, headers={"Cache-Control": "no-store"})


@contextlib.contextmanager
def run_in_thread(idp: DevIdP, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve ``idp`` with uvicorn on a background thread; yield its base URL (the issuer when not configured)."""
    sock, base_url = bind(host, port)
    idp.bind_issuer(base_url)
    with serve_in_thread(idp.app, sock=sock, lifespan="off", name="dev-idp"):
        yield base_url


@contextlib.asynccontextmanager
async def running(idp: DevIdP, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """Serve ``idp`` on the current event loop; yield its base URL, stop on exit (for the demo and async tests)."""
    sock, base_url = bind(host, port)
    idp.bind_issuer(base_url)
    async with serve_in_loop(idp.app, sock=sock, lifespan="off", name="dev-idp"):
        yield base_url
