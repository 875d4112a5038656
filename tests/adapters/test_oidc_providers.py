"""The OIDC client against every dev IdP personality over HTTP: scopes from discovery, authorize parameters,
claims, refusals classified (sources: accessbot_emulators/idp/personalities.py)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from accessbot_emulators.idp import complete_login
from bot.adapters.oidc import ClaimNames, OidcClient
from bot.adapters.oidc.discovery import choose_scopes
from bot.adapters.oidc.validation import issuer_forms
from bot.config.providers import PRESETS
from bot.core.errors import InvalidGrantError, TransientUpstreamError
from bot.core.model import VerifiedLogin
from bot.core.token_refusals import RefusalKind
from tests.personas import CALLBACK, CLIENT_ID, CLIENT_SECRET, NAMES, PASSWORDS, persona_server, start

__all__ = ["persona_server"]
Server = tuple[Any, str]


def client_for(idp: Any, name: str, **overrides: Any) -> OidcClient:
    """The bot's OIDC client as wiring builds it for preset `name` (only issuer and credentials set)."""
    preset = PRESETS[name]  # type: ignore[index]
    settings: dict[str, Any] = {
        "issuer": idp.issuer,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "redirect_uri": CALLBACK,
        "wanted_scopes": preset.scopes,
        "extra_auth_params": preset.extra_auth_params,
        "claim_names": ClaimNames(groups=preset.groups_claim, email=preset.email_claim),
        "issuer_aliases": tuple(issuer_forms(idp.issuer, preset.issuer_forms == "scheme_optional")),
        "timeout": 5.0,
        **overrides,
    }
    return OidcClient(**settings)


async def sign_in(client: OidcClient, browser: httpx.AsyncClient, user: str = "alice") -> VerifiedLogin:
    """The code flow as the bot runs it: authorization URL, the IdP's form, the callback, the code exchange."""
    verifier, nonce = secrets.token_urlsafe(48), secrets.token_urlsafe(16)
    url = await client.authorization_url("state-x", nonce, verifier)
    location = await complete_login(browser, url, user, PASSWORDS[user])
    params = parse_qs(urlsplit(location).query)
    assert "code" in params, params
    return await client.exchange_code(params["code"][0], verifier, nonce)


@pytest.fixture
async def browser() -> AsyncIterator[httpx.AsyncClient]:
    """The user's browser."""
    async with httpx.AsyncClient(timeout=10) as http:
        yield http


def test_scopes_are_only_requested_where_discovery_lists_them() -> None:
    """openid first, then the wished scopes the provider lists; the rest dropped (and reported)."""
    assert choose_scopes(["openid", "email", "groups", "offline_access"], ["openid", "email", "offline_access"]) == (
        ("openid", "email", "offline_access"),
        ("groups",),
    )


def test_without_scopes_supported_only_standard_scopes_are_requested() -> None:
    """A provider publishing no list gets openid, email and profile at most (OpenID Connect Core §5.4)."""
    assert choose_scopes(["openid", "groups", "email"], None) == (("openid", "email"), ("groups",))


@pytest.mark.parametrize("name", NAMES)
async def test_preset_signs_in_and_gets_a_refresh_token_on_every_personality(
    persona_server: Server, browser: httpx.AsyncClient, name: str
) -> None:
    """With only the preset, issuer and credentials, the sign-in works and a refresh token arrives."""
    idp = start(persona_server, name)
    client = client_for(idp, name)
    try:
        login = await sign_in(client, browser)
        requested, dropped = await client.scopes()
    finally:
        await client.aclose()
    assert login.refresh_token, name
    assert set(requested) <= set(idp.personality.scopes_supported)
    assert login.email == "alice@example.com"
    if name == "keycloak":  # no `groups` client scope in a default realm: not asked for, so no "Invalid scopes"
        assert dropped == ("groups",)


async def test_explicit_scopes_are_sent_as_they_are_and_entra_refuses_groups(
    persona_server: Server, browser: httpx.AsyncClient
) -> None:
    """An explicit `oidc.scopes` is not filtered: Entra answers AADSTS650053 for `groups` (the old default)."""
    idp = start(persona_server, "entra")
    client = client_for(idp, "entra", scopes=("openid", "email", "profile", "groups", "offline_access"))
    try:
        url = await client.authorization_url("s", "n", "v" * 50)
        location = await complete_login(browser, url, "alice", PASSWORDS["alice"])
    finally:
        await client.aclose()
    assert "AADSTS650053" in parse_qs(urlsplit(location).query)["error_description"][0]


async def test_google_preset_sends_access_type_offline_and_prompt_consent(persona_server: Server) -> None:
    """web-server#offline: the extra authorization parameters reach the authorization URL."""
    client = client_for(start(persona_server, "google"), "google")
    try:
        query = parse_qs(urlsplit(await client.authorization_url("s", "n", "v" * 50)).query)
    finally:
        await client.aclose()
    assert (query["access_type"], query["prompt"], query["scope"]) == (
        ["offline"],
        ["consent"],
        ["openid email profile"],
    )


async def test_google_tokens_in_either_issuer_form_are_accepted(
    persona_server: Server, browser: httpx.AsyncClient
) -> None:
    """openid-connect: `iss` may be `accounts.google.com` without the scheme; both validate."""
    idp = start(persona_server, "google")
    client = client_for(idp, "google")
    try:
        first, second = await sign_in(client, browser), await sign_in(client, browser)
    finally:
        await client.aclose()
    assert first.subject == second.subject
    assert first.issuer == second.issuer == idp.issuer
    assert first.groups is None  # Google ID tokens carry no groups: unknown, not empty


async def test_entra_login_names_the_object_id_and_reports_overage(
    persona_server: Server, browser: httpx.AsyncClient
) -> None:
    """`rancher.user_principal_claim: oid` takes the object id; over 200 groups the login says overage, not empty."""
    idp = start(persona_server, "entra")
    client = client_for(idp, "entra", claim_names=ClaimNames(principal="oid"))
    try:
        alice = await sign_in(client, browser)
        carol = await sign_in(client, browser, "carol")
    finally:
        await client.aclose()
    assert alice.principal_subject == idp.store.accounts["alice"].object_id
    assert alice.groups is not None
    assert len(alice.groups) == 2
    assert (carol.groups, carol.groups_overage) == (None, True)


async def test_email_comes_from_the_configured_claim(persona_server: Server, browser: httpx.AsyncClient) -> None:
    """`oidc.email_claim: preferred_username` reads Entra's UPN."""
    idp = start(persona_server, "entra")
    client = client_for(idp, "entra", claim_names=ClaimNames(email="preferred_username"))
    try:
        login = await sign_in(client, browser)
    finally:
        await client.aclose()
    assert login.email == "alice@example.com"
    assert login.email_verified is None


async def test_userinfo_group_source_reads_groups_from_userinfo_only(
    persona_server: Server, browser: httpx.AsyncClient
) -> None:
    """`group_source: userinfo`: the groups claim of userinfo, whatever the ID token says."""
    idp = start(persona_server, "okta")
    client = client_for(idp, "okta", claim_names=ClaimNames(groups_from="userinfo"))
    try:
        login = await sign_in(client, browser)
    finally:
        await client.aclose()
    assert login.groups == ("engineering", "sre")


async def _refused(persona_server: Server, browser: httpx.AsyncClient, name: str, event: str) -> InvalidGrantError:
    idp = start(persona_server, name)
    client = client_for(idp, name)
    try:
        login = await sign_in(client, browser)
        assert login.refresh_token
        idp.account_event("alice", event)
        with pytest.raises(InvalidGrantError) as info:
            await client.refresh_tokens(login.refresh_token)
    finally:
        await client.aclose()
    return info.value


@pytest.mark.parametrize(
    ("name", "event", "kind"),
    [
        ("entra", "sign_in_frequency", RefusalKind.REAUTH),
        ("entra", "mfa_required", RefusalKind.REAUTH),
        ("entra", "mfa_reset", RefusalKind.REAUTH),
        ("entra", "inactivity", RefusalKind.REAUTH),
        ("entra", "disabled", RefusalKind.DEACTIVATED),
        ("entra", "password_reset", RefusalKind.DEACTIVATED),
        ("google", "token_limit", RefusalKind.UNCONFIRMED),
        ("google", "disabled", RefusalKind.UNCONFIRMED),
        ("okta", "disabled", RefusalKind.DEACTIVATED),
        ("keycloak", "disabled", RefusalKind.DEACTIVATED),
        ("auth0", "disabled", RefusalKind.DEACTIVATED),
        ("dex", "sessions_revoked", RefusalKind.DEACTIVATED),
        ("authentik", "disabled", RefusalKind.DEACTIVATED),
    ],
)
async def test_refused_refresh_is_classified_from_the_providers_answer(
    persona_server: Server, browser: httpx.AsyncClient, name: str, event: str, kind: RefusalKind
) -> None:
    """Each provider's documented refusal maps to what it means for the link."""
    error = await _refused(persona_server, browser, name, event)
    assert error.kind is kind
    assert error.refusal is not None


async def test_dex_refusing_a_user_gone_upstream_looks_like_an_outage(
    persona_server: Server, browser: httpx.AsyncClient
) -> None:
    """dex refreshhandlers.go answers HTTP 500 when its connector refuses: the bot can only retry (documented)."""
    idp = start(persona_server, "dex")
    client = client_for(idp, "dex")
    try:
        login = await sign_in(client, browser)
        assert login.refresh_token
        idp.account_event("alice", "deleted")
        with pytest.raises(TransientUpstreamError):
            await client.refresh_tokens(login.refresh_token)
    finally:
        await client.aclose()
