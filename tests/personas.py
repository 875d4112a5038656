"""Dev IdP personalities for tests: one loopback server for the session, a fresh provider per test, a browser.

Each test gets a new `DevIdP` with the personality it names (new keys, tokens and account state) behind the same
URL, like tests/conftest.py's `idp` fixture does for the generic one.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from accessbot_emulators.idp import DevIdP, complete_login
from accessbot_emulators.serving import serve_in_thread

CLIENT_ID = "accessbot"
CLIENT_SECRET = "dev-client-secret"
ADMIN_TOKEN = "test-persona-admin"
CALLBACK = "http://127.0.0.1:9/oauth/callback"
NAMES = ("entra", "google", "okta", "keycloak", "auth0", "dex", "authentik")
MANY_GROUPS = [f"team-{i:03d}" for i in range(201)]
"""Carol's groups: one more than Entra puts in a JWT (how-to-connect-fed-group-claims: 200 for JWT)."""

ACCOUNTS: dict[str, Any] = {
    "clients": [{"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "redirect_uris": ["*"]}],
    "accounts": {
        "alice": {
            "password": "alice-pw",
            "email": "alice@example.com",
            "email_verified": True,
            "name": "Alice Example",
            "groups": ["engineering", "sre"],
        },
        "bob": {
            "password": "bob-pw",
            "email": "bob@example.com",
            "email_verified": True,
            "name": "Bob Example",
            "groups": ["engineering"],
        },
        "carol": {
            "password": "carol-pw",
            "email": "carol@example.com",
            "email_verified": True,
            "name": "Carol Example",
            "groups": ["engineering", *MANY_GROUPS],
        },
        "admin": {"password": "admin-pw", "email": "admin@example.com", "email_verified": True, "admin": True},
    },
}
PASSWORDS = {name: str(a["password"]) for name, a in ACCOUNTS["accounts"].items()}


class _Switch:
    """An ASGI app forwarding to the current test's DevIdP."""

    def __init__(self) -> None:
        self.current: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.current.app(scope, receive, send)


@pytest.fixture(scope="session")
def persona_server() -> Iterator[tuple[_Switch, str]]:
    """One uvicorn server on 127.0.0.1 for every personality of the session."""
    switch = _Switch()
    with serve_in_thread(switch, lifespan="off") as url:
        yield switch, url


def start(server: tuple[_Switch, str], name: str, accounts: dict[str, Any] | None = None) -> DevIdP:
    """A fresh provider with personality `name` behind the session's URL (issuer = URL + the personality's path)."""
    switch, url = server
    idp = DevIdP(copy.deepcopy(accounts or ACCOUNTS), personality=name, admin_token=ADMIN_TOKEN)
    idp.bind_issuer(url)
    switch.current = idp
    return idp


def service_account_file(idp: DevIdP, tmp_path: Path) -> Path:
    """The google personality's service account key, written where the bot's config can point."""
    assert idp.base_url is not None
    path = tmp_path / "google-sa.json"
    path.write_text(json.dumps(idp.google.service_account(idp.base_url)), encoding="utf-8")
    return path


@dataclass
class Browser:
    """A user agent and a relying party doing the code flow against one provider by hand."""

    idp: DevIdP
    http: httpx.AsyncClient
    nonce: str = ""
    state: str = "state-1"

    @property
    def base(self) -> str:
        """Where the OIDC endpoints live (the issuer without a trailing slash)."""
        return self.idp.issuer.rstrip("/")

    def authorize_url(self, scope: str, verifier: str, **extra: str) -> str:
        """A code+PKCE authorization URL."""
        self.nonce = f"nonce-{secrets.token_hex(6)}"
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        params = {
            "response_type": "code",
            "client_id": CLIENT_ID,
            "redirect_uri": CALLBACK,
            "scope": scope,
            "state": self.state,
            "nonce": self.nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            **extra,
        }
        return f"{self.base}/authorize?{urlencode(params)}"

    async def callback(self, scope: str, user: str = "alice", **extra: str) -> tuple[dict[str, str], str]:
        """Sign in; return the callback's query parameters and the PKCE verifier."""
        verifier = secrets.token_urlsafe(48)
        location = await complete_login(self.http, self.authorize_url(scope, verifier, **extra), user, PASSWORDS[user])
        return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}, verifier

    async def tokens(self, scope: str, user: str = "alice", **extra: str) -> dict[str, Any]:
        """Sign in and redeem the code; return the token response."""
        params, verifier = await self.callback(scope, user, **extra)
        assert "code" in params, params
        response = await self.token(
            grant_type="authorization_code", code=params["code"], redirect_uri=CALLBACK, code_verifier=verifier
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def token(self, **form: str) -> httpx.Response:
        """POST the token endpoint with client_secret_basic."""
        return await self.http.post(f"{self.base}/token", data=form, auth=(CLIENT_ID, CLIENT_SECRET))

    async def refresh(self, refresh_token: str) -> httpx.Response:
        """Use a refresh token."""
        return await self.token(grant_type="refresh_token", refresh_token=refresh_token)


def claims_of(id_token: str) -> dict[str, Any]:
    """The payload of a JWT (unverified: the emulator tests check content, the bot's tests check signatures)."""
    body = id_token.split(".")[1]
    data: dict[str, Any] = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return data


# --- the bot configured for a personality ------------------------------------------------------------------


def bot_config_data(
    name: str, idp: DevIdP, tmp_path: Path, *, slack_api_url: str, rancher_url: str = "http://127.0.0.1:9"
) -> dict[str, Any]:
    """Configuration data with only the preset, the issuer and the client credentials set for the IdP
    (plus the Directory credentials for google and Graph's URL for entra, which are other hosts in reality)."""
    from bot.demo import botconfig

    data = botconfig.config_data(
        database=tmp_path / f"{name}.db",
        public_url="http://127.0.0.1:9",
        slack_api_url=slack_api_url,
        oidc_issuer=idp.issuer,
        rancher_url=rancher_url,
        rancher_token="token-b9t4n:2jpfw5dxczjt4wr7nsxspmk8h57kdxmvtn6smzdfvrh7ngtrc4d7wx",
    )
    oidc = {"provider": name, "issuer": idp.issuer, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    data["oidc"] = {**oidc, "timeout": "5s"}
    if name == "entra":
        data["oidc"]["graph"] = {"url": idp.base_url}
    if name == "google":
        key = service_account_file(idp, tmp_path)
        data["oidc"]["google_directory"] = {
            "credentials_file": str(key),
            "admin_email": "admin@example.com",
            "url": idp.base_url,
        }
    return data
