"""The OIDC client against the dev IdP over real HTTP: discovery, code exchange, each ID-token refusal, refresh."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from accessbot_emulators.idp import complete_login
from bot.adapters.oidc import OidcClient
from bot.core.errors import InvalidGrantError, PermanentUpstreamError, TokenRejected, TransientUpstreamError
from bot.demo import botconfig
from tests.conftest import IDP_PASSWORDS, UNREACHABLE, RunningIdP

CALLBACK = "http://127.0.0.1:9/oauth/callback"


@dataclass
class Rig:
    """An OIDC client, the IdP it talks to, and a browser."""

    client: OidcClient
    idp: RunningIdP
    browser: httpx.AsyncClient

    async def code(self, username: str = "alice", nonce: str | None = None) -> tuple[str, str, str]:
        """Log in through the IdP's form; return (code, verifier, nonce)."""
        verifier, nonce = secrets.token_urlsafe(48), nonce or secrets.token_urlsafe(16)
        url = await self.client.authorization_url(secrets.token_urlsafe(16), nonce, verifier)
        location = await complete_login(self.browser, url, username, IDP_PASSWORDS[username])
        return parse_qs(urlsplit(location).query)["code"][0], verifier, nonce

    async def login(self, username: str = "alice") -> Any:
        """A full login: form, then code exchange with the nonce that was sent."""
        code, verifier, nonce = await self.code(username)
        return await self.client.exchange_code(code, verifier, nonce)


def make_client(issuer: str, **kwargs: Any) -> OidcClient:
    """An OidcClient with the test client credentials."""
    return OidcClient(
        issuer=issuer,
        client_id=botconfig.CLIENT_ID,
        client_secret=botconfig.CLIENT_SECRET,
        redirect_uri=CALLBACK,
        scopes=("openid", "email", "profile", "groups", "offline_access"),
        timeout=5.0,
        **kwargs,
    )


@pytest.fixture
async def rig(idp: RunningIdP) -> AsyncIterator[Rig]:
    """A client and browser against a fresh dev IdP."""
    client = make_client(idp.url)
    async with httpx.AsyncClient(timeout=5) as browser:
        yield Rig(client, idp, browser)
    await client.aclose()


async def test_code_exchange_returns_the_verified_identity(rig: Rig) -> None:
    """A normal login yields subject, email, verified flag, name, groups and a refresh token."""
    login = await rig.login()
    assert login.issuer == rig.idp.url
    assert login.subject == "sub-alice"
    assert login.email == "alice@example.com"
    assert login.email_verified is True
    assert login.name == "Alice Example"
    assert login.groups == ("engineering", "sre")
    assert login.refresh_token


async def test_authorization_url_carries_pkce_state_and_nonce(rig: Rig) -> None:
    """The authorization URL asks for the code flow with an S256 challenge, state, nonce and our redirect."""
    url = await rig.client.authorization_url("st", "nn", "v" * 43)
    query = parse_qs(urlsplit(url).query)
    assert query["code_challenge_method"] == ["S256"]
    assert query["code_challenge"][0]
    assert query["code_challenge"][0] != "v" * 43
    assert (query["state"], query["nonce"], query["redirect_uri"]) == (["st"], ["nn"], [CALLBACK])
    assert query["response_type"] == ["code"]


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        ({"sign": "bad-signature"}, "bad signature"),
        ({"sign": "none"}, "algorithm none not allowed"),
        ({"sign": "hs256-public-key"}, "algorithm HS256 not allowed"),
        ({"claims": {"iss": "https://evil.example"}}, "issuer mismatch"),
        ({"claims": {"aud": "someone-else"}}, "audience mismatch"),
        ({"claims": {"aud": ["someone-else", "another"], "azp": botconfig.CLIENT_ID}}, "audience mismatch"),
        ({"claims": {"aud": [botconfig.CLIENT_ID, "another"]}}, "azp mismatch"),
        ({"claims": {"azp": "someone-else"}}, "azp mismatch"),
        ({"exp_offset": -120}, "token expired"),
        ({"iat_offset": 3600}, "issued in the future"),
        ({"claims": {"nonce": None}}, "nonce missing"),
        ({"claims": {"nonce": "forged-nonce"}}, "nonce mismatch"),
    ],
    ids=[
        "bad-signature",
        "alg-none",
        "hs256-public-key",
        "wrong-issuer",
        "wrong-audience",
        "aud-list-without-us",
        "several-audiences-without-azp",
        "foreign-azp",
        "expired",
        "issued-in-future",
        "missing-nonce",
        "wrong-nonce",
    ],
)
async def test_tampered_id_token_is_refused_with_its_reason(rig: Rig, tamper: dict[str, Any], reason: str) -> None:
    """Each tampered ID token is refused with its own short reason."""
    rig.idp.idp.set_next_id_token(**tamper)
    with pytest.raises(TokenRejected) as caught:
        await rig.login()
    assert caught.value.reason == reason


async def test_expiry_within_leeway_is_accepted(rig: Rig) -> None:
    """A token that expired 30 s ago is still inside the 60 s leeway."""
    rig.idp.idp.set_next_id_token(exp_offset=-30)
    assert (await rig.login()).subject == "sub-alice"


async def test_unknown_kid_is_refused_after_one_rate_limited_refetch(rig: Rig) -> None:
    """An unknown kid triggers one JWKS refetch; a second one within 30 s does not refetch again."""
    await rig.login()
    assert rig.client.jwks_fetches == 1
    rig.idp.idp.set_next_id_token(sign="unknown-kid")
    with pytest.raises(TokenRejected) as caught:
        await rig.login()
    assert caught.value.reason == "unknown signing key"
    assert rig.client.jwks_fetches == 2
    rig.idp.idp.set_next_id_token(sign="unknown-kid")
    with pytest.raises(TokenRejected):
        await rig.login()
    assert rig.client.jwks_fetches == 2


async def test_rotated_signing_key_is_fetched_and_accepted(rig: Rig) -> None:
    """After the IdP rotates its key, the new kid is fetched once and the token accepted."""
    await rig.login()
    rig.idp.idp.rotate_keys()
    assert (await rig.login()).subject == "sub-alice"
    assert rig.client.jwks_fetches == 2


async def test_discovery_naming_another_issuer_is_refused(idp: RunningIdP) -> None:
    """The discovery document's issuer must equal the configured one exactly (a trailing slash differs)."""
    client = make_client(idp.url + "/")
    with pytest.raises(TokenRejected) as caught:
        await client.authorization_url("s", "n", "v" * 43)
    await client.aclose()
    assert caught.value.reason == "discovery issuer mismatch"


async def test_groups_come_from_userinfo_when_the_claim_is_missing(rig: Rig) -> None:
    """Without a groups claim in the ID token, groups are read from userinfo."""
    rig.idp.idp.set_next_id_token(claims={"groups": None})
    assert (await rig.login()).groups == ("engineering", "sre")


async def test_single_string_group_is_accepted(rig: Rig) -> None:
    """A groups claim holding one string becomes a one-element tuple."""
    rig.idp.idp.set_next_id_token(claims={"groups": "sre"})
    assert (await rig.login()).groups == ("sre",)


async def test_refresh_rotates_the_refresh_token_without_a_nonce(rig: Rig) -> None:
    """A refresh returns a new refresh token and a validated identity (refreshed ID tokens carry no nonce)."""
    first = await rig.login()
    assert first.refresh_token is not None
    again = await rig.client.refresh(first.refresh_token)
    assert again.refresh_token
    assert again.refresh_token != first.refresh_token
    assert again.subject == "sub-alice"


async def test_refresh_of_a_disabled_account_is_invalid_grant(rig: Rig) -> None:
    """The IdP's invalid_grant becomes InvalidGrantError."""
    first = await rig.login()
    assert first.refresh_token is not None
    rig.idp.idp.set_disabled("alice", True)
    with pytest.raises(InvalidGrantError):
        await rig.client.refresh(first.refresh_token)


async def test_token_endpoint_5xx_is_transient(rig: Rig) -> None:
    """A 503 from the token endpoint is a TransientUpstreamError."""
    first = await rig.login()
    assert first.refresh_token is not None
    rig.idp.idp.fail_next("token", 503)
    with pytest.raises(TransientUpstreamError):
        await rig.client.refresh(first.refresh_token)


async def test_unreachable_idp_is_transient() -> None:
    """A connection failure is a TransientUpstreamError."""
    client = make_client(UNREACHABLE)
    with pytest.raises(TransientUpstreamError):
        await client.authorization_url("s", "n", "v" * 43)
    await client.aclose()


async def test_revocation_kills_the_token_family(rig: Rig) -> None:
    """RFC 7009 revocation succeeds and the revoked token can no longer refresh."""
    first = await rig.login()
    assert first.refresh_token is not None
    assert await rig.client.revoke(first.refresh_token) is True
    with pytest.raises(InvalidGrantError):
        await rig.client.refresh(first.refresh_token)


async def test_revocation_failure_raises(rig: Rig) -> None:
    """A refused revocation is raised, not hidden."""
    first = await rig.login()
    assert first.refresh_token is not None
    rig.idp.idp.fail_next("revoke", 400)
    with pytest.raises(PermanentUpstreamError):
        await rig.client.revoke(first.refresh_token)


async def test_client_secret_is_not_in_repr(rig: Rig) -> None:
    """The client's repr hides the secret."""
    assert botconfig.CLIENT_SECRET not in repr(rig.client)
    assert "redacted" in repr(rig.client)


async def test_provider_accepting_only_client_secret_post_is_honoured() -> None:
    """An IdP listing only client_secret_post gets the secret in the form, for code, refresh and revoke."""
    import copy

    from accessbot_emulators.idp import DevIdP, run_in_thread
    from tests.conftest import IDP_ACCOUNTS

    accounts = copy.deepcopy(IDP_ACCOUNTS)
    accounts["clients"][0]["token_endpoint_auth_methods"] = ["client_secret_post"]
    strict = DevIdP(accounts)
    with run_in_thread(strict) as url:
        client = make_client(url)
        async with httpx.AsyncClient(timeout=5) as browser:
            discovery = (await browser.get(f"{url}/.well-known/openid-configuration")).json()
            assert discovery["token_endpoint_auth_methods_supported"] == ["client_secret_post"]
            basic = await browser.post(
                discovery["token_endpoint"],
                data={"grant_type": "refresh_token", "refresh_token": "x"},
                auth=(botconfig.CLIENT_ID, botconfig.CLIENT_SECRET),
            )
            assert basic.status_code == 401  # the strict provider really refuses Basic
            rig = Rig(client, RunningIdP(idp=strict, url=url), browser)
            login = await rig.login()
            assert login.subject == "sub-alice"
            assert login.refresh_token
            refreshed = await client.refresh(login.refresh_token)
            assert refreshed.refresh_token
            assert await client.revoke(refreshed.refresh_token) is True
        await client.aclose()
