"""`/access link|whoami|unlink` and the /oauth pages over HTTP: slash command → start → IdP login → callback."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from accessbot_emulators.idp import complete_login
from accessbot_emulators.slack import block_actions_payload, interaction_body
from bot.core import audit_actions
from bot.core.principals import derive_user_id
from bot.demo import botconfig
from tests.conftest import IDP_PASSWORDS, SLACK_ALICE, SLACK_BOB, TEAM, RunningBot, RunningIdP

MakeBot = Callable[..., contextlib.AbstractContextManager[RunningBot]]


@pytest.fixture
def linked_bot(make_bot: MakeBot, idp: RunningIdP) -> Iterator[RunningBot]:
    """A bot whose OIDC issuer is the dev IdP."""
    with make_bot(oidc_issuer=idp.url) as running:
        yield running


def button_url(reply: Any) -> str:
    """The URL of the link button in an ephemeral reply."""
    for block in reply.blocks:
        for element in block.get("elements", []):
            if element.get("type") == "button" and element.get("url"):
                return str(element["url"])
    raise AssertionError(f"no button in {reply.blocks!r}")


async def sign_in(
    bot: RunningBot, browser: httpx.AsyncClient, user: str, username: str
) -> tuple[httpx.Response, httpx.Response]:
    """Run `/access link`, open the button, sign in at the IdP, follow back; return (start, callback) responses."""
    start = await browser.get(button_url(bot.ask(user, "link")))
    assert start.status_code == 302, start.text
    location = await complete_login(browser, start.headers["location"], username, IDP_PASSWORDS[username])
    assert location.startswith(bot.url + "/oauth/callback?")
    return start, await browser.get(location)


def audit_reasons(bot: RunningBot, action: str) -> list[str]:
    """Reasons of the audit events of one action."""
    return [e.reason for e in bot.audit(action)]


async def test_slash_command_to_callback_links_the_account(linked_bot: RunningBot) -> None:
    """The whole flow over HTTP ends on a page naming the identity and groups, with the link stored."""
    async with httpx.AsyncClient(timeout=5) as browser:
        _, page = await sign_in(linked_bot, browser, SLACK_ALICE, "alice")
    assert page.status_code == 200
    assert "Alice Example" in page.text
    assert "<code>sre</code>" in page.text
    assert page.headers["cache-control"] == "no-store"
    store = linked_bot.store()
    try:
        link = store.links.get(SLACK_ALICE)
    finally:
        store.database.close()
    assert link is not None
    assert (link.identity.subject, link.identity.groups) == ("sub-alice", ("engineering", "sre"))


async def test_start_sets_an_httponly_samesite_cookie(linked_bot: RunningBot) -> None:
    """/oauth/start binds the browser with an HttpOnly, SameSite=Lax cookie (not Secure on plain http)."""
    async with httpx.AsyncClient(timeout=5) as browser:
        start = await browser.get(button_url(linked_bot.ask(SLACK_ALICE, "link")))
    cookie = start.headers["set-cookie"].lower()
    assert cookie.startswith("accessbot_login=")
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    assert "path=/oauth" in cookie
    assert "secure" not in cookie
    assert urlsplit(start.headers["location"]).path == "/authorize"


async def test_start_link_opens_only_once(linked_bot: RunningBot) -> None:
    """A second visit to the same start link gets a 400 page, not a redirect."""
    url = button_url(linked_bot.ask(SLACK_ALICE, "link"))
    async with httpx.AsyncClient(timeout=5) as browser:
        assert (await browser.get(url)).status_code == 302
        again = await browser.get(url)
    assert again.status_code == 400
    assert "already opened" in again.text


async def test_callback_in_another_browser_is_refused_with_a_clear_page(linked_bot: RunningBot) -> None:
    """A callback without the login cookie shows a 400 page with the reason and no internals, and is audited."""
    async with httpx.AsyncClient(timeout=5) as browser, httpx.AsyncClient(timeout=5) as other:
        start = await browser.get(button_url(linked_bot.ask(SLACK_ALICE, "link")))
        location = await complete_login(browser, start.headers["location"], "alice", IDP_PASSWORDS["alice"])
        page = await other.get(location)
    assert page.status_code == 400
    assert "did not start the link request" in page.text
    assert "Traceback" not in page.text
    assert "Error" not in page.text
    assert audit_reasons(linked_bot, audit_actions.LOGIN_STATE_MISMATCH) == ["login cookie missing"]


async def test_rejected_id_token_page_names_the_reason(linked_bot: RunningBot, idp: RunningIdP) -> None:
    """A tampered ID token ends on a 400 page with the short reason, audited."""
    idp.idp.set_next_id_token(claims={"iss": "https://evil.example"})
    async with httpx.AsyncClient(timeout=5) as browser:
        _, page = await sign_in(linked_bot, browser, SLACK_ALICE, "alice")
    assert page.status_code == 400
    assert "issuer mismatch" in page.text
    assert audit_reasons(linked_bot, audit_actions.ID_TOKEN_REJECTED) == ["issuer mismatch"]


async def test_whoami_shows_identity_groups_and_rancher_principals(linked_bot: RunningBot) -> None:
    """`/access whoami` lists identity, groups, link age, last refresh and the Rancher principal ids."""
    async with httpx.AsyncClient(timeout=5) as browser:
        await sign_in(linked_bot, browser, SLACK_ALICE, "alice")
    text = linked_bot.ask(SLACK_ALICE, "whoami").text
    assert "alice@example.com" in text
    assert "`engineering`" in text
    assert "*Linked*" in text
    assert "*Last refresh*" in text
    assert "`genericoidc_user://sub-alice`" in text
    assert "`genericoidc_group://sre`" in text
    assert derive_user_id("genericoidc_user://sub-alice") in text


async def test_whoami_when_not_linked_says_how_to_link(linked_bot: RunningBot) -> None:
    """An unlinked user is told to run the link command."""
    text = linked_bot.ask(SLACK_BOB, "whoami").text
    assert "not linked" in text
    assert "/access link" in text


async def test_unlink_command_revokes_at_the_idp(linked_bot: RunningBot, idp: RunningIdP) -> None:
    """`/access unlink` revokes the refresh token at the IdP and says so."""
    async with httpx.AsyncClient(timeout=5) as browser:
        await sign_in(linked_bot, browser, SLACK_ALICE, "alice")
    text = linked_bot.ask(SLACK_ALICE, "unlink").text
    assert "revoked at the identity provider" in text
    assert idp.idp.state()["revoked_refresh_families"] == 1
    assert audit_reasons(linked_bot, audit_actions.LINK_REMOVED) == [""]
    assert "not linked" in linked_bot.ask(SLACK_ALICE, "whoami").text


async def test_link_reply_is_ephemeral_with_a_one_time_button(linked_bot: RunningBot) -> None:
    """The link reply is ephemeral and its button points at this bot's /oauth/start."""
    reply = linked_bot.ask(SLACK_ALICE, "link")
    assert reply.response_type == "ephemeral"
    assert button_url(reply).startswith(f"{linked_bot.url}/oauth/start?attempt=")


def test_link_button_click_is_acknowledged(linked_bot: RunningBot) -> None:
    """Clicking the URL button still sends an interaction; it is acknowledged with 200."""
    payload = block_actions_payload(
        SLACK_ALICE,
        "identity_link_start",
        "",
        response_url=linked_bot.slack.response_url("click"),
        channel_id="C0GENERAL1",
        is_ephemeral=True,
        team_id=TEAM,
    )
    response = linked_bot.post_signed(interaction_body(payload))
    assert response.status_code == 200


def test_security_notifications_reach_the_outbox(linked_bot: RunningBot) -> None:
    """A refused callback queues a security-channel message in the outbox."""
    response = linked_bot.http.get(f"{linked_bot.url}/oauth/callback?state=forged&code=x")
    assert response.status_code == 400
    store = linked_bot.store()
    try:
        queued = store.outbox.due(2**62, limit=1000)
    finally:
        store.database.close()
    texts = {m.channel: str(m.payload.get("text", "")) for m in queued if "unknown state" in str(m.payload)}
    assert list(texts) == [botconfig.CHANNELS["security"]]
    assert "Sign-in callback refused" in texts[botconfig.CHANNELS["security"]]


async def test_idp_supplied_text_is_escaped_on_the_page(linked_bot: RunningBot, idp: RunningIdP) -> None:
    """A name from the IdP containing markup is shown escaped on the callback page."""
    idp.idp.set_next_id_token(claims={"name": "<script>alert(1)</script>"})
    async with httpx.AsyncClient(timeout=5) as browser:
        _, page = await sign_in(linked_bot, browser, SLACK_ALICE, "alice")
    assert page.status_code == 200
    assert "<script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
