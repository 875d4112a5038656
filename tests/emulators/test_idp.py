"""The dev OpenID provider, driven over real HTTP on loopback."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.errors import BadSignatureError, InvalidKeyIdError, UnsupportedAlgorithmError
from joserfc.jwk import KeySet, RSAKey

from accessbot_emulators.idp import (
    DevIdP,
    LoginFailedError,
    complete_login,
    load_accounts,
    main,
    run_in_thread,
    running,
)

CLIENT_ID = "accessbot"
CLIENT_SECRET = "dev-secret"
CALLBACK = "http://127.0.0.1:3000/oauth/callback"
ADMIN = "test-admin-token"
ALICE_PASSWORD = "alice-pw"
ACCOUNTS: dict[str, Any] = {
    "clients": [{"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "redirect_uris": [CALLBACK, "*"]}],
    "accounts": {
        "alice": {
            "password": ALICE_PASSWORD,
            "sub": "sub-alice",
            "email": "alice@example.com",
            "email_verified": True,
            "name": "Alice Example",
            "groups": ["engineering"],
        },
        "bob": {"password": "bob-pw", "email": "bob@example.com", "groups": []},
    },
}
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "idp-accounts.yaml"


@dataclass
class IdP:
    """A running dev IdP and an HTTP client pointed at it."""

    idp: DevIdP
    base: str
    http: httpx.AsyncClient
    nonce: str = ""

    async def admin(self, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        """Call an /_admin/ endpoint with the admin token."""
        headers = {"X-Admin-Token": ADMIN}
        if body is None:
            return await self.http.get(f"{self.base}/_admin/{path}", headers=headers)
        return await self.http.post(f"{self.base}/_admin/{path}", json=body, headers=headers)

    async def jwks(self) -> KeySet:
        """Fetch the published key set."""
        return KeySet.import_key_set((await self.http.get(f"{self.base}/jwks")).json())

    def authorize_url(self, verifier: str, **extra: str) -> str:
        """Build a code+PKCE authorization URL with a fresh nonce (kept in ``self.nonce``)."""
        self.nonce = f"nonce-{secrets.token_hex(8)}"
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        params = {
            "response_type": "code",
            "client_id": CLIENT_ID,
            "redirect_uri": CALLBACK,
            "scope": "openid email profile groups",
            "state": "state-123",
            "nonce": self.nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            **extra,
        }
        return f"{self.base}/authorize?{urlencode(params)}"

    async def login(self, username: str = "alice", password: str = ALICE_PASSWORD, **extra: str) -> tuple[str, str]:
        """Log in through the form; return (code, verifier)."""
        verifier = secrets.token_urlsafe(48)
        location = await complete_login(self.http, self.authorize_url(verifier, **extra), username, password)
        query = parse_qs(urlsplit(location).query)
        assert query["state"] == ["state-123"]
        return query["code"][0], verifier

    async def token(self, **form: str) -> httpx.Response:
        """POST to the token endpoint with client_secret_basic."""
        return await self.http.post(f"{self.base}/token", data=form, auth=(CLIENT_ID, CLIENT_SECRET))

    async def exchange(self, code: str, verifier: str) -> httpx.Response:
        """Exchange a code with its PKCE verifier."""
        return await self.token(
            grant_type="authorization_code", code=code, redirect_uri=CALLBACK, code_verifier=verifier
        )

    async def tokens(self, username: str = "alice", password: str = ALICE_PASSWORD) -> dict[str, Any]:
        """Log in and exchange the code; return the token response."""
        code, verifier = await self.login(username, password)
        response = await self.exchange(code, verifier)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def refresh(self, refresh_token: str) -> httpx.Response:
        """Use a refresh token."""
        return await self.token(grant_type="refresh_token", refresh_token=refresh_token)


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[DevIdP, str]]:
    """One dev IdP for the module, served on a random loopback port (starting one per test is slow)."""
    idp = DevIdP(ACCOUNTS, admin_token=ADMIN)
    with run_in_thread(idp) as base:
        yield idp, base


@pytest.fixture
async def op(server: tuple[DevIdP, str]) -> AsyncIterator[IdP]:
    """The running IdP, with accounts and pending controls reset, and an HTTP client."""
    idp, base = server
    idp.clear_pending()
    for username, account in ACCOUNTS["accounts"].items():
        idp.set_disabled(username, False)
        idp.set_groups(username, account.get("groups", []))
    async with httpx.AsyncClient(timeout=10) as http:
        yield IdP(idp, base, http)


def _segments(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes]:
    head, body, sig = token.split(".")

    def dec(part: str) -> bytes:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))

    return json.loads(dec(head)), json.loads(dec(body)), dec(sig) if sig else b""


async def test_discovery_document_describes_the_provider(op: IdP) -> None:
    """The discovery document names the real base URL as issuer and advertises code+PKCE with RS256."""
    meta = (await op.http.get(f"{op.base}/.well-known/openid-configuration")).json()
    assert meta["issuer"] == op.base == op.idp.issuer
    for key, path in [
        ("authorization_endpoint", "/authorize"),
        ("token_endpoint", "/token"),
        ("jwks_uri", "/jwks"),
        ("userinfo_endpoint", "/userinfo"),
        ("revocation_endpoint", "/revoke"),
    ]:
        assert meta[key] == op.base + path
    assert meta["response_types_supported"] == ["code"]
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["id_token_signing_alg_values_supported"] == ["RS256"]
    assert set(meta["grant_types_supported"]) == {"authorization_code", "refresh_token"}
    assert set(meta["token_endpoint_auth_methods_supported"]) == {"client_secret_basic", "client_secret_post"}
    assert "openid" in meta["scopes_supported"]


async def test_code_flow_issues_id_token_that_verifies_against_jwks(op: IdP) -> None:
    """A full code+PKCE login yields an RS256 ID token with every identity claim, verifiable with the JWKS."""
    before = int(time.time())
    tokens = await op.tokens()
    decoded = jwt.decode(tokens["id_token"], await op.jwks(), algorithms=["RS256"])
    claims = decoded.claims
    assert decoded.header["kid"] in op.idp.state()["kids"]
    assert claims["iss"] == op.base
    assert claims["aud"] == CLIENT_ID
    assert claims["sub"] == "sub-alice"
    assert claims["nonce"] == op.nonce
    assert before - 1 <= claims["iat"] <= claims["auth_time"] + 1
    assert claims["exp"] > claims["iat"]
    assert claims["email"] == "alice@example.com"
    assert claims["email_verified"] is True
    assert claims["name"] == "Alice Example"
    assert claims["preferred_username"] == "alice"
    assert claims["groups"] == ["engineering"]
    assert tokens["token_type"] == "Bearer"
    assert tokens["access_token"].count(".") == 0  # opaque, not a JWT
    assert tokens["refresh_token"]


async def test_client_secret_post_is_accepted_at_the_token_endpoint(op: IdP) -> None:
    """The client may send its secret in the form body instead of Basic auth."""
    code, verifier = await op.login()
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": CALLBACK,
        "code_verifier": verifier,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
    }
    response = await op.http.post(f"{op.base}/token", data=form)
    assert response.status_code == 200
    assert "id_token" in response.json()


async def test_wrong_pkce_verifier_is_refused(op: IdP) -> None:
    """A code exchanged with a verifier that does not match the challenge gets invalid_grant."""
    code, _ = await op.login()
    response = await op.exchange(code, secrets.token_urlsafe(48))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


async def test_authorization_request_without_pkce_is_sent_back_as_invalid_request(op: IdP) -> None:
    """PKCE is mandatory: a request without code_challenge is redirected back with invalid_request."""
    url = f"{op.base}/authorize?" + urlencode(
        {"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": CALLBACK, "scope": "openid", "state": "s1"}
    )
    response = await op.http.get(url)
    assert response.status_code == 302
    query = parse_qs(urlsplit(response.headers["location"]).query)
    assert response.headers["location"].startswith(CALLBACK)
    assert query["error"] == ["invalid_request"]
    assert query["state"] == ["s1"]


async def test_authorization_code_is_single_use(op: IdP) -> None:
    """Replaying a code is refused and revokes the tokens it produced."""
    code, verifier = await op.login()
    first = await op.exchange(code, verifier)
    assert first.status_code == 200
    second = await op.exchange(code, verifier)
    assert second.json()["error"] == "invalid_grant"
    assert (await op.refresh(first.json()["refresh_token"])).json()["error"] == "invalid_grant"


async def test_refresh_rotates_and_refuses_the_old_token(op: IdP) -> None:
    """Each refresh returns a new refresh token and a new ID token; the previous refresh token stops working."""
    tokens = await op.tokens()
    refreshed = await op.refresh(tokens["refresh_token"])
    assert refreshed.status_code == 200
    body = refreshed.json()
    assert body["refresh_token"] != tokens["refresh_token"]
    claims = jwt.decode(body["id_token"], await op.jwks(), algorithms=["RS256"]).claims
    assert claims["sub"] == "sub-alice"
    again = await op.refresh(tokens["refresh_token"])
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


async def test_refresh_token_reuse_revokes_the_whole_family(op: IdP) -> None:
    """Presenting a rotated refresh token revokes the family, so the newest refresh token is refused too."""
    before = (await op.admin("state")).json()
    tokens = await op.tokens()
    newest = (await op.refresh(tokens["refresh_token"])).json()["refresh_token"]
    assert (await op.admin("state")).json()["active_refresh_families"] == before["active_refresh_families"] + 1
    reuse = await op.refresh(tokens["refresh_token"])
    assert reuse.json()["error"] == "invalid_grant"
    after = await op.refresh(newest)
    assert after.status_code == 400
    assert after.json()["error"] == "invalid_grant"
    state = (await op.admin("state")).json()
    assert state["active_refresh_families"] == before["active_refresh_families"]
    assert state["reuse_detected"] == before["reuse_detected"] + 1


async def test_disabled_account_cannot_refresh_or_log_in(op: IdP) -> None:
    """After /_admin/disable the account's refresh gets invalid_grant and the login form refuses it."""
    tokens = await op.tokens()
    assert (await op.admin("disable", {"username": "alice"})).status_code == 200
    response = await op.refresh(tokens["refresh_token"])
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    with pytest.raises(LoginFailedError, match="disabled"):
        await op.login()
    assert (await op.admin("enable", {"username": "alice"})).status_code == 200
    assert (await op.refresh(tokens["refresh_token"])).status_code == 200


async def test_group_change_shows_in_the_next_refreshed_id_token(op: IdP) -> None:
    """/_admin/groups replaces the groups seen in the next ID token."""
    tokens = await op.tokens()
    await op.admin("groups", {"username": "alice", "groups": ["sre", "oncall"]})
    body = (await op.refresh(tokens["refresh_token"])).json()
    assert jwt.decode(body["id_token"], await op.jwks(), algorithms=["RS256"]).claims["groups"] == ["sre", "oncall"]


async def test_revoking_a_refresh_token_revokes_its_family(op: IdP) -> None:
    """RFC 7009 revocation of a refresh token answers 200 and kills the refresh and access tokens."""
    tokens = await op.tokens()
    response = await op.http.post(
        f"{op.base}/revoke",
        data={"token": tokens["refresh_token"], "token_type_hint": "refresh_token"},
        auth=(CLIENT_ID, CLIENT_SECRET),
    )
    assert response.status_code == 200
    assert (await op.refresh(tokens["refresh_token"])).json()["error"] == "invalid_grant"
    userinfo = await op.http.get(f"{op.base}/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert userinfo.status_code == 401


async def test_revocation_answers_200_for_unknown_tokens_but_requires_client_auth(op: IdP) -> None:
    """An unknown token is acknowledged with 200; a wrong client secret is invalid_client."""
    ok = await op.http.post(f"{op.base}/revoke", data={"token": "nope"}, auth=(CLIENT_ID, CLIENT_SECRET))
    assert ok.status_code == 200
    bad = await op.http.post(f"{op.base}/revoke", data={"token": "nope"}, auth=(CLIENT_ID, "wrong"))
    assert bad.status_code == 401
    assert bad.json()["error"] == "invalid_client"


async def test_userinfo_returns_identity_for_a_bearer_token(op: IdP) -> None:
    """GET and POST /userinfo return the account's claims; no or a bad token is 401 with WWW-Authenticate."""
    tokens = await op.tokens()
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    for response in [
        await op.http.get(f"{op.base}/userinfo", headers=headers),
        await op.http.post(f"{op.base}/userinfo", headers=headers),
    ]:
        assert response.status_code == 200
        assert response.json() == {
            "sub": "sub-alice",
            "email": "alice@example.com",
            "email_verified": True,
            "name": "Alice Example",
            "preferred_username": "alice",
            "groups": ["engineering"],
        }
    missing = await op.http.get(f"{op.base}/userinfo")
    assert missing.status_code == 401
    assert "invalid_token" in missing.headers["www-authenticate"]


async def test_deny_button_redirects_with_access_denied_and_state(op: IdP) -> None:
    """Choosing Deny on the form sends the browser back with error=access_denied and the original state."""
    location = await complete_login(op.http, op.authorize_url(secrets.token_urlsafe(48)), "", "", deny=True)
    assert location.startswith(CALLBACK)
    query = parse_qs(urlsplit(location).query)
    assert query["error"] == ["access_denied"]
    assert query["state"] == ["state-123"]
    assert "code" not in query


async def test_wrong_password_shows_the_form_again(op: IdP) -> None:
    """Bad credentials re-show the login form with an error instead of redirecting."""
    with pytest.raises(LoginFailedError, match="wrong password"):
        await op.login(password="nope")


async def test_prompt_none_redirects_with_login_required(op: IdP) -> None:
    """Without a session, prompt=none is answered with error=login_required at the redirect URI."""
    response = await op.http.get(op.authorize_url(secrets.token_urlsafe(48), prompt="none"))
    assert response.status_code == 302
    query = parse_qs(urlsplit(response.headers["location"]).query)
    assert query["error"] == ["login_required"]
    assert query["state"] == ["state-123"]


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"redirect_uri": "https://evil.example/cb"}, "Redirect URI"),
        ({"client_id": "unknown"}, "invalid_client"),
    ],
)
async def test_bad_client_or_redirect_uri_gets_an_error_page_not_a_redirect(
    op: IdP, params: dict[str, str], fragment: str
) -> None:
    """An unregistered redirect URI or unknown client is shown an error page, never redirected to."""
    response = await op.http.get(op.authorize_url(secrets.token_urlsafe(48), **params))
    assert response.status_code == 400
    assert "location" not in response.headers
    assert fragment in response.text


async def test_reused_nonce_is_refused(op: IdP) -> None:
    """A nonce already used for an issued code is rejected as a replay."""
    await op.login()
    response = await op.http.get(op.authorize_url(secrets.token_urlsafe(48), nonce=op.nonce))
    assert response.status_code == 302
    assert parse_qs(urlsplit(response.headers["location"]).query)["error"] == ["invalid_request"]


async def test_next_id_token_override_changes_claims_once(op: IdP) -> None:
    """Claim overrides (null removes), exp/iat offsets apply to exactly the next ID token."""
    override = {"claims": {"iss": "https://evil", "aud": ["other"], "nonce": None}, "exp_offset": -3600}
    assert (await op.admin("next-id-token", override)).status_code == 200
    now = int(time.time())
    first = jwt.decode((await op.tokens())["id_token"], await op.jwks(), algorithms=["RS256"]).claims
    assert first["iss"] == "https://evil"
    assert first["aud"] == ["other"]
    assert "nonce" not in first
    assert abs(first["exp"] - (now - 3600)) <= 2
    second = jwt.decode((await op.tokens("bob", "bob-pw"))["id_token"], await op.jwks(), algorithms=["RS256"]).claims
    assert second["iss"] == op.base
    assert second["aud"] == CLIENT_ID
    assert second["exp"] > now


async def test_iat_offset_moves_issued_at(op: IdP) -> None:
    """iat_offset sets iat relative to now (e.g. an hour in the future)."""
    await op.admin("next-id-token", {"iat_offset": 3600})
    claims = _segments((await op.tokens())["id_token"])[1]
    assert claims["iat"] >= int(time.time()) + 3590


async def test_sign_none_produces_an_unsigned_token(op: IdP) -> None:
    """sign=none yields an alg=none token with an empty signature, rejected by a pinned RS256 decoder."""
    await op.admin("next-id-token", {"sign": "none"})
    token = (await op.tokens())["id_token"]
    header, claims, signature = _segments(token)
    assert header["alg"] == "none"
    assert signature == b""
    assert claims["sub"] == "sub-alice"
    with pytest.raises(UnsupportedAlgorithmError):
        jwt.decode(token, await op.jwks(), algorithms=["RS256"])


async def test_sign_hs256_public_key_uses_the_public_pem_as_hmac_secret(op: IdP) -> None:
    """sign=hs256-public-key yields an HS256 token whose MAC is keyed with the published RSA key's PEM."""
    await op.admin("next-id-token", {"sign": "hs256-public-key"})
    token = (await op.tokens())["id_token"]
    header, _, signature = _segments(token)
    assert header["alg"] == "HS256"
    keys = (await op.http.get(f"{op.base}/jwks")).json()["keys"]
    published = next(k for k in keys if k["kid"] == header["kid"])
    pem = RSAKey.import_key(published).as_pem(private=False)
    signing_input = token.rsplit(".", 1)[0].encode()
    assert hmac.compare_digest(signature, hmac.new(pem, signing_input, hashlib.sha256).digest())
    with pytest.raises(UnsupportedAlgorithmError):
        jwt.decode(token, await op.jwks(), algorithms=["RS256"])


async def test_sign_unknown_kid_uses_an_unpublished_key(op: IdP) -> None:
    """sign=unknown-kid yields an RS256 token whose kid is not in the JWKS."""
    await op.admin("next-id-token", {"sign": "unknown-kid"})
    token = (await op.tokens())["id_token"]
    header, _, _ = _segments(token)
    assert header["alg"] == "RS256"
    assert header["kid"] not in op.idp.state()["kids"]
    with pytest.raises(InvalidKeyIdError):
        jwt.decode(token, await op.jwks(), algorithms=["RS256"])


async def test_sign_bad_signature_corrupts_an_otherwise_valid_token(op: IdP) -> None:
    """sign=bad-signature yields a token with a published kid whose signature does not verify."""
    await op.admin("next-id-token", {"sign": "bad-signature"})
    token = (await op.tokens())["id_token"]
    header, claims, _ = _segments(token)
    assert header["kid"] in op.idp.state()["kids"]
    assert claims["nonce"] == op.nonce
    with pytest.raises(BadSignatureError):
        jwt.decode(token, await op.jwks(), algorithms=["RS256"])


async def test_key_rotation_keeps_the_previous_public_key_published(op: IdP) -> None:
    """After rotation the JWKS has the old and new keys, new tokens use the new kid, and old keys age out."""
    old_kid = op.idp.state()["kids"][-1]
    new_kid = (await op.admin("rotate-keys", {})).json()["kid"]
    kids = [k["kid"] for k in (await op.http.get(f"{op.base}/jwks")).json()["keys"]]
    assert kids == [old_kid, new_kid]
    token = (await op.tokens())["id_token"]
    assert jwt.decode(token, await op.jwks(), algorithms=["RS256"]).header["kid"] == new_kid
    newest = (await op.admin("rotate-keys", {})).json()["kid"]
    kids = [k["kid"] for k in (await op.http.get(f"{op.base}/jwks")).json()["keys"]]
    assert kids == [new_kid, newest]


async def test_fail_next_injects_transient_failures(op: IdP) -> None:
    """/_admin/fail-next makes the next N token requests fail with the given status, then recovers."""
    tokens = await op.tokens()
    await op.admin("fail-next", {"endpoint": "token", "status": 503, "count": 2})
    assert (await op.refresh(tokens["refresh_token"])).status_code == 503
    assert (await op.refresh(tokens["refresh_token"])).status_code == 503
    assert (await op.refresh(tokens["refresh_token"])).status_code == 200


async def test_admin_endpoints_require_the_admin_token(op: IdP) -> None:
    """Without the right X-Admin-Token the control endpoints refuse and change nothing."""
    response = await op.http.post(
        f"{op.base}/_admin/disable", json={"username": "alice"}, headers={"X-Admin-Token": "wrong"}
    )
    assert response.status_code == 403
    assert op.idp.state()["accounts"]["alice"]["disabled"] is False


def test_missing_sub_is_derived_stably_from_the_username() -> None:
    """An account without sub gets the same opaque subject every time, different per user."""
    first = load_accounts(ACCOUNTS).accounts["bob"].sub
    second = load_accounts(ACCOUNTS).accounts["bob"].sub
    other = load_accounts({**ACCOUNTS, "accounts": {"carol": {"password": "x"}}}).accounts["carol"].sub
    assert first == second
    assert first != other
    assert "bob" not in first


def test_example_accounts_file_loads() -> None:
    """examples/idp-accounts.yaml is a valid accounts file."""
    parsed = load_accounts(EXAMPLE)
    assert "accessbot" in parsed.clients
    assert parsed.accounts["carol"].disabled is True


def test_cli_rejects_a_bad_accounts_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`accessbot dev-idp` exits 2 with the offending field named when the accounts file is invalid."""
    path = tmp_path / "accounts.yaml"
    path.write_text("clients: []\naccounts: {}\n", encoding="utf-8")
    assert main(["--accounts", str(path), "--port", "0"]) == 2
    assert "clients" in capsys.readouterr().err


async def test_running_serves_on_the_current_event_loop() -> None:
    """The async context manager serves a fresh IdP in-loop with the issuer bound to the real URL, then stops."""
    idp = DevIdP(ACCOUNTS)
    async with running(idp) as base, httpx.AsyncClient() as http:
        meta = (await http.get(f"{base}/.well-known/openid-configuration")).json()
        assert meta["issuer"] == base == idp.issuer
    async with httpx.AsyncClient() as http:
        with pytest.raises(httpx.ConnectError):
            await http.get(f"{base}/jwks")
