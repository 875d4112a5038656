"""The dev IdP's personalities, over HTTP: each behaves the way its provider documents (sources in each docstring
and in accessbot_emulators/idp/personalities.py)."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import time_machine
from joserfc import jwt
from joserfc.jwk import RSAKey

from accessbot_emulators.idp import DevIdP, LoginFailedError, main
from accessbot_emulators.idp.claims import entra_group_id, google_group_id
from accessbot_emulators.idp.google import SERVICE_ACCOUNT
from accessbot_emulators.idp.personalities import ENTRA_TENANT
from tests.personas import (
    ACCOUNTS,
    CLIENT_SECRET,
    MANY_GROUPS,
    Browser,
    claims_of,
    persona_server,
    service_account_file,
    start,
)

__all__ = ["persona_server"]
Server = tuple[Any, str]


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """A plain HTTP client (the browser and the relying party)."""
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


async def test_discovery_of_each_personality_lives_under_its_issuer(
    persona_server: Server, http: httpx.AsyncClient
) -> None:
    """Entra `/<tenant>/v2.0`, Okta `/oauth2/default`, Keycloak `/realms/…`, Auth0 and authentik end in `/`."""
    expected = {
        "entra": f"/{ENTRA_TENANT}/v2.0",
        "okta": "/oauth2/default",
        "keycloak": "/realms/accessbot",
        "auth0": "/",
        "dex": "/dex",
        "authentik": "/application/o/accessbot/",
        "google": "",
    }
    for name, path in expected.items():
        idp = start(persona_server, name)
        meta = (await http.get(idp.issuer.rstrip("/") + "/.well-known/openid-configuration")).json()
        assert meta["issuer"] == persona_server[1] + path, name
        assert "openid" in meta["scopes_supported"]


@pytest.mark.parametrize(
    ("name", "scope", "error", "text"),
    [
        # scopes-oidc: groups is no scope in Entra (reference check row 20: AADSTS650053)
        ("entra", "openid groups", "invalid_client", "AADSTS650053"),
        # okta custom authorization server
        ("okta", "openid custom", "invalid_scope", "not configured for the authorization server"),
        # keycloak AuthorizationEndpointChecker: "Invalid scopes: " + scope
        ("keycloak", "openid groups", "invalid_scope", "Invalid scopes: openid groups"),
        # dex server/oauth2.go: Unrecognized scope(s)
        ("dex", "openid custom", "invalid_scope", "Unrecognized scope(s)"),
    ],
)
async def test_unknown_scope_is_refused_back_to_the_client(
    persona_server: Server, http: httpx.AsyncClient, name: str, scope: str, error: str, text: str
) -> None:
    """The provider redirects to the client with its error; no login happens."""
    idp = start(persona_server, name)
    browser = Browser(idp, http)
    page = await http.get(browser.authorize_url(scope, "v" * 50), follow_redirects=False)
    assert page.status_code == 302
    query = parse_qs(urlsplit(page.headers["location"]).query)
    assert query["error"] == [error]
    assert text in query["error_description"][0]
    assert query["state"] == ["state-1"]


async def test_google_refuses_offline_access_on_its_own_error_page(
    persona_server: Server, http: httpx.AsyncClient
) -> None:
    """Google answers an unknown scope with an error page (invalid_scope) and never returns to the client."""
    browser = Browser(start(persona_server, "google"), http)
    with pytest.raises(LoginFailedError, match="invalid_scope"):
        await browser.callback("openid email offline_access")


@pytest.mark.parametrize("name", ["authentik", "auth0"])
async def test_lenient_providers_drop_unknown_scopes(
    persona_server: Server, http: httpx.AsyncClient, name: str
) -> None:
    """authentik reduces the scopes to the overlap (authorize view "setting to overlap"); Auth0 drops them."""
    browser = Browser(start(persona_server, name), http)
    body = await browser.tokens("openid email groups")
    assert body["scope"].split() == ["openid", "email"]


@pytest.mark.parametrize("name", ["entra", "okta", "auth0", "dex", "authentik"])
async def test_refresh_token_only_with_offline_access(
    persona_server: Server, http: httpx.AsyncClient, name: str
) -> None:
    """Without `offline_access` there is no refresh token; with it there is (each provider's refresh-token docs)."""
    browser = Browser(start(persona_server, name), http)
    assert "refresh_token" not in await browser.tokens("openid email")
    assert "refresh_token" in await browser.tokens("openid email offline_access")


async def test_google_issues_a_refresh_token_only_for_access_type_offline_and_again_only_with_consent(
    persona_server: Server, http: httpx.AsyncClient
) -> None:
    """web-server#offline: access_type=offline gives one at first consent; later only with prompt=consent."""
    browser = Browser(start(persona_server, "google"), http)
    assert "refresh_token" not in await browser.tokens("openid email")
    assert "refresh_token" in await browser.tokens("openid email", access_type="offline")
    assert "refresh_token" not in await browser.tokens("openid email", access_type="offline")
    assert "refresh_token" in await browser.tokens("openid email", access_type="offline", prompt="consent")


@pytest.mark.parametrize(("name", "rotates"), [("entra", True), ("google", False), ("okta", False), ("dex", True)])
async def test_refresh_rotates_only_where_the_provider_rotates(
    persona_server: Server, http: httpx.AsyncClient, name: str, rotates: bool
) -> None:
    """Entra and Dex send a new refresh token on every refresh; Google and Okta (persistent tokens) do not."""
    browser = Browser(start(persona_server, name), http)
    extra = {"access_type": "offline"} if name == "google" else {}
    scope = "openid email" if name == "google" else "openid email offline_access"
    first = (await browser.tokens(scope, **extra))["refresh_token"]
    answer = (await browser.refresh(first)).json()
    assert ("refresh_token" in answer) is rotates
    again = await browser.refresh(first)  # the old one: Entra keeps it valid, Dex refuses it (already claimed)
    assert again.status_code == (400 if name == "dex" else 200)


async def test_entra_sends_group_object_ids_a_pairwise_sub_and_no_email_verified(
    persona_server: Server, http: httpx.AsyncClient
) -> None:
    """id-token-claims-reference: groups are object ids, `sub` is per application, `oid` is the user, no
    email_verified."""
    idp = start(persona_server, "entra")
    claims = claims_of((await Browser(idp, http).tokens("openid email profile"))["id_token"])
    account = idp.store.accounts["alice"]
    assert claims["groups"] == [entra_group_id("engineering"), entra_group_id("sre")]
    assert claims["oid"] == account.object_id
    assert claims["sub"] != account.object_id
    assert claims["tid"] == ENTRA_TENANT
    assert "email_verified" not in claims


async def test_entra_replaces_more_than_200_groups_by_an_overage_pointer(
    persona_server: Server, http: httpx.AsyncClient
) -> None:
    """how-to-connect-fed-group-claims: over 200 groups (JWT) the claim is omitted; `_claim_names` points away."""
    claims = claims_of((await Browser(start(persona_server, "entra"), http).tokens("openid", "carol"))["id_token"])
    assert "groups" not in claims
    assert claims["_claim_names"] == {"groups": "src1"}


async def _graph_token(http: httpx.AsyncClient, idp: Any, secret: str = CLIENT_SECRET) -> httpx.Response:
    return await http.post(
        f"{idp.issuer}/token",
        data={"grant_type": "client_credentials", "scope": f"{idp.base_url}/.default"},
        auth=("accessbot", secret),
    )


async def test_graph_lists_transitive_groups_page_by_page_with_display_names(
    persona_server: Server, http: httpx.AsyncClient
) -> None:
    """user-list-transitivememberof: groups and directory roles, `@odata.nextLink` paging, `displayName`."""
    idp = start(persona_server, "entra")
    token = (await _graph_token(http, idp)).json()["access_token"]
    oid = idp.store.accounts["carol"].object_id
    url: str | None = f"{idp.base_url}/v1.0/users/{oid}/transitiveMemberOf?$top=100"
    groups: list[dict[str, Any]] = []
    while url:
        page = (await http.get(url, headers={"Authorization": f"Bearer {token}"})).json()
        groups += [g for g in page["value"] if g["@odata.type"] == "#microsoft.graph.group"]
        url = page.get("@odata.nextLink")
    assert len(groups) == 1 + len(MANY_GROUPS)
    assert {"id": entra_group_id("engineering"), "displayName": "engineering"}.items() <= groups[0].items()


async def test_graph_refuses_an_app_without_group_read_permission(
    persona_server: Server, http: httpx.AsyncClient
) -> None:
    """graph/errors: 403 Authorization_RequestDenied without GroupMember.Read.All (or Directory.Read.All)."""
    accounts = copy.deepcopy(ACCOUNTS)
    accounts["clients"] = [{**accounts["clients"][0], "graph_permissions": ["User.Read"]}]
    idp = start(persona_server, "entra", accounts)
    token = (await _graph_token(http, idp)).json()["access_token"]
    answer = await http.get(f"{idp.base_url}/v1.0/groups?$top=1", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "Authorization_RequestDenied"


async def test_graph_token_with_a_wrong_secret_is_aadsts7000215(
    persona_server: Server, http: httpx.AsyncClient
) -> None:
    """reference-error-codes: AADSTS7000215 Invalid client secret provided."""
    answer = await _graph_token(http, start(persona_server, "entra"), secret="wrong")
    assert (answer.status_code, answer.json()["error_codes"]) == (401, [7000215])


@pytest.mark.parametrize(
    ("event", "code"),
    [
        ("disabled", 50057),
        ("deleted", 50034),
        ("password_reset", 50173),
        ("mfa_reset", 50079),
        ("mfa_required", 50076),
        ("sign_in_frequency", 70043),
        ("inactivity", 700082),
    ],
)
async def test_entra_refuses_a_refresh_with_the_documented_aadsts_code(
    persona_server: Server, http: httpx.AsyncClient, event: str, code: int
) -> None:
    """reference-error-codes: each account event answers invalid_grant with its AADSTS code."""
    idp = start(persona_server, "entra")
    browser = Browser(idp, http)
    token = (await browser.tokens("openid offline_access"))["refresh_token"]
    idp.account_event("alice", event)
    answer = await browser.refresh(token)
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_grant"
    assert answer.json()["error_codes"] == [code]
    assert answer.json()["error_description"].startswith(f"AADSTS{code}:")


async def test_a_new_sign_in_after_the_event_gets_working_tokens_again(
    persona_server: Server, http: httpx.AsyncClient
) -> None:
    """A re-authentication event refuses only tokens issued before it (the user signing in again fixes it)."""
    idp = start(persona_server, "entra")
    browser = Browser(idp, http)
    idp.account_event("alice", "sign_in_frequency")
    token = (await browser.tokens("openid offline_access"))["refresh_token"]
    assert (await browser.refresh(token)).status_code == 200


async def test_google_sends_no_groups_and_alternates_its_two_issuer_forms(
    persona_server: Server, http: httpx.AsyncClient
) -> None:
    """openid-connect: no groups claim; `iss` is `https://accounts.google.com` or `accounts.google.com`."""
    idp = start(persona_server, "google")
    browser = Browser(idp, http)
    first = claims_of((await browser.tokens("openid email"))["id_token"])
    second = claims_of((await browser.tokens("openid email"))["id_token"])
    assert "groups" not in first
    assert {first["iss"], second["iss"]} == {idp.issuer, idp.issuer.split("://", 1)[1]}
    assert first["email_verified"] is True
    assert first["sub"].isdigit()


async def test_google_answers_every_dead_refresh_token_the_same_way(
    persona_server: Server, http: httpx.AsyncClient
) -> None:
    """oauth2#expiration: suspension, deletion, revoked access and the token limit all read "expired or revoked"."""
    for event in ("disabled", "deleted", "sessions_revoked", "token_limit"):
        idp = start(persona_server, "google")
        browser = Browser(idp, http)
        token = (await browser.tokens("openid email", access_type="offline"))["refresh_token"]
        idp.account_event("alice", event)
        answer = (await browser.refresh(token)).json()
        assert answer == {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}, event


async def _directory_token(http: httpx.AsyncClient, idp: Any, tmp_path: Path, admin: str = "admin@example.com") -> str:
    info = json.loads(service_account_file(idp, tmp_path).read_text())
    now = int(time.time())
    claims = {"iss": info["client_email"], "sub": admin, "aud": info["token_uri"], "iat": now, "exp": now + 600}
    claims["scope"] = "https://www.googleapis.com/auth/admin.directory.group.readonly"
    assertion = jwt.encode({"alg": "RS256"}, claims, RSAKey.import_key(info["private_key"]), algorithms=["RS256"])
    answer = await http.post(
        info["token_uri"], data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion}
    )
    return str(answer.json().get("access_token", answer.text))


async def test_google_directory_lists_a_users_groups_by_their_id(
    persona_server: Server, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    """groups.list?userKey=<id> with a delegated service account token; groups carry id, email and name."""
    idp = start(persona_server, "google")
    token = await _directory_token(http, idp, tmp_path)
    sub = claims_of((await Browser(idp, http).tokens("openid email"))["id_token"])["sub"]
    answer = await http.get(
        f"{idp.base_url}/admin/directory/v1/groups",
        params={"userKey": sub},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert [g["id"] for g in answer.json()["groups"]] == [google_group_id("engineering"), google_group_id("sre")]
    assert answer.json()["groups"][0]["email"] == "engineering@example.com"


async def test_google_refuses_a_service_account_acting_as_a_non_admin(
    persona_server: Server, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    """Domain-wide delegation acts as an administrator; another user gets invalid_grant "Invalid email or User ID"."""
    idp = start(persona_server, "google")
    assert "Invalid email or User ID" in await _directory_token(http, idp, tmp_path, admin="bob@example.com")
    assert SERVICE_ACCOUNT in idp.google.service_account(str(idp.base_url))["client_email"]


async def test_keycloak_sends_full_group_paths(persona_server: Server, http: httpx.AsyncClient) -> None:
    """Group Membership mapper with "Full group path" (the default): `/engineering`."""
    claims = claims_of((await Browser(start(persona_server, "keycloak"), http).tokens("openid email"))["id_token"])
    assert claims["groups"] == ["/engineering", "/sre"]


async def test_keycloak_online_refresh_tokens_end_with_the_sso_session(
    persona_server: Server, http: httpx.AsyncClient
) -> None:
    """server_admin #_timeouts: SSO Session Max 10 h ends online refresh tokens; offline tokens outlive it."""
    idp = start(persona_server, "keycloak")
    browser = Browser(idp, http)
    online = (await browser.tokens("openid email"))["refresh_token"]
    offline = (await browser.tokens("openid email offline_access"))["refresh_token"]
    with time_machine.travel(time.time() + 11 * 3600, tick=True):
        assert (await browser.refresh(online)).json() == {
            "error": "invalid_grant",
            "error_description": "Session not active",
        }
        assert (await browser.refresh(offline)).status_code == 200


async def test_auth0_puts_groups_in_a_namespaced_claim_and_blocks_with_403(
    persona_server: Server, http: httpx.AsyncClient
) -> None:
    """create-custom-claims: groups via an Action; a blocked user's refresh is 403 invalid_grant "user is blocked"."""
    idp = start(persona_server, "auth0")
    browser = Browser(idp, http)
    body = await browser.tokens("openid email offline_access")
    assert claims_of(body["id_token"])["https://accessbot.io/groups"] == ["engineering", "sre"]
    idp.account_event("alice", "disabled")
    answer = await browser.refresh(body["refresh_token"])
    assert (answer.status_code, answer.json()["error_description"]) == (403, "user is blocked")


async def test_dex_answers_a_user_gone_upstream_with_http_500(persona_server: Server, http: httpx.AsyncClient) -> None:
    """dex refreshhandlers.go refreshWithConnector: the connector's refusal becomes 500 invalid_request."""
    idp = start(persona_server, "dex")
    browser = Browser(idp, http)
    token = (await browser.tokens("openid email offline_access"))["refresh_token"]
    idp.account_event("alice", "deleted")
    answer = await browser.refresh(token)
    assert (answer.status_code, answer.json()) == (500, {"error": "invalid_request"})


async def test_authentik_says_email_unverified_and_sends_groups_with_profile(
    persona_server: Server, http: httpx.AsyncClient
) -> None:
    """providers-oauth2.yaml: the `email` mapping says email_verified false; `profile` carries `groups`."""
    browser = Browser(start(persona_server, "authentik"), http)
    claims = claims_of((await browser.tokens("openid email profile"))["id_token"])
    assert claims["email_verified"] is False
    assert claims["groups"] == ["engineering", "sre"]
    assert "groups" not in claims_of((await browser.tokens("openid email"))["id_token"])


async def test_okta_and_dex_send_groups_only_with_the_groups_scope(
    persona_server: Server, http: httpx.AsyncClient
) -> None:
    """customize-tokens-groups-claim / dex custom-scopes-claims-clients: `groups` claim with the `groups` scope."""
    for name in ("okta", "dex"):
        browser = Browser(start(persona_server, name), http)
        assert "groups" not in claims_of((await browser.tokens("openid email"))["id_token"])
        assert claims_of((await browser.tokens("openid email groups"))["id_token"])["groups"] == ["engineering", "sre"]


async def test_admin_event_endpoint_needs_the_token_and_a_known_event(
    persona_server: Server, http: httpx.AsyncClient
) -> None:
    """`/_admin/event` applies personalities.EVENTS; an unknown event is a 400, a missing token a 403."""
    idp = start(persona_server, "okta")
    url = f"{persona_server[1]}/_admin/event"
    assert (await http.post(url, json={"username": "alice", "event": "disabled"})).status_code == 403
    headers = {"X-Admin-Token": "test-persona-admin"}
    assert (await http.post(url, json={"username": "alice", "event": "melted"}, headers=headers)).status_code == 400
    assert (await http.post(url, json={"username": "alice", "event": "disabled"}, headers=headers)).status_code == 200
    assert idp.store.accounts["alice"].disabled


def test_cli_refuses_an_unknown_personality(capsys: pytest.CaptureFixture[str]) -> None:
    """`accessbot dev-idp --personality` accepts only the known names (argparse exits 2 and lists them)."""
    with pytest.raises(SystemExit) as info:
        main(["--accounts", "x.yaml", "--personality", "ping"])
    assert info.value.code == 2
    assert "authentik" in capsys.readouterr().err


def test_personality_names_the_known_ones_in_python_too() -> None:
    """DevIdP(personality="…") refuses an unknown name with the list of known ones."""
    with pytest.raises(ValueError, match="entra"):
        DevIdP(copy.deepcopy(ACCOUNTS), personality="ping")
