"""The whole link flow over HTTP (signed `/access link`, the bot's /oauth pages, the dev IdP's personality) ending on
the page a user reads: refused without a refresh token, group display names on success, and what /metrics and
the digest count (the providers' behaviour and its sources: accessbot_emulators/idp/personalities.py)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import httpx

from accessbot_emulators.idp import complete_login
from accessbot_emulators.idp.claims import entra_group_id
from bot.services.jobs.digest import build_period_digest
from bot.slack.digest_blocks import render_digest_text
from tests.conftest import RunningBot
from tests.personas import CLIENT_ID, CLIENT_SECRET, PASSWORDS, persona_server, start
from tests.slack.test_identity import button_url

__all__ = ["persona_server"]
MakeBot = Callable[..., contextlib.AbstractContextManager[RunningBot]]
ALICE = "U0ALICE001"


def _oidc(name: str, idp: Any, **extra: Any) -> dict[str, Any]:
    """Only the preset, issuer and credentials (botconfig's explicit scopes removed), plus `extra`."""
    base = {"provider": name, "issuer": idp.issuer, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    return {"oidc": {**base, "scopes": None, **extra}}


async def _link_page(bot: RunningBot) -> httpx.Response:
    bot.slack.add_user(ALICE, "alice@example.com", "alice")
    async with httpx.AsyncClient(timeout=10) as browser:
        begun = await browser.get(button_url(bot.ask(ALICE, "link")))
        location = await complete_login(browser, begun.headers["location"], "alice", PASSWORDS["alice"])
        return await browser.get(location)


async def test_no_refresh_token_is_refused_on_a_plain_page(make_bot: MakeBot, persona_server: tuple[Any, str]) -> None:
    """Google without access_type=offline: the page says why in plain words; nothing is linked."""
    idp = start(persona_server, "google")
    with make_bot(oidc_issuer=idp.issuer, overrides=_oidc("google", idp, extra_auth_params={})) as bot:
        page = await _link_page(bot)
        assert page.status_code == 400
        assert "did not give the bot a refresh token" in page.text
        store = bot.store()
        try:
            assert store.links.get(ALICE) is None
        finally:
            store.database.close()


async def test_entra_groups_are_shown_by_display_name_on_the_page(
    make_bot: MakeBot, persona_server: tuple[Any, str]
) -> None:
    """graph.mode always: the page lists `engineering (…)`, not a bare object id."""
    idp = start(persona_server, "entra")
    overrides = _oidc("entra", idp, graph={"mode": "always", "url": idp.base_url})
    with make_bot(oidc_issuer=idp.issuer, overrides=overrides) as bot:
        page = await _link_page(bot)
        assert page.status_code == 200, page.text
        assert f"engineering ({entra_group_id('engineering')[:8]}…)" in page.text


async def test_unmonitored_links_show_in_metrics_and_the_digest(
    make_bot: MakeBot, persona_server: tuple[Any, str]
) -> None:
    """require_refresh_token false: the link is made, /metrics and the digest count it as unmonitored."""
    idp = start(persona_server, "google")
    overrides = _oidc("google", idp, extra_auth_params={}, require_refresh_token=False)
    with make_bot(oidc_issuer=idp.issuer, overrides=overrides) as bot:
        assert (await _link_page(bot)).status_code == 200
        assert "accessbot_links_unmonitored 1.0" in bot.http.get(f"{bot.url}/metrics").text
        store = bot.store()
        try:
            digest = build_period_digest(store, 0, 2**31)
        finally:
            store.database.close()
        assert digest.unmonitored_links == 1
        assert "Unmonitored links (no refresh token, never re-checked at the IdP): 1." in render_digest_text(digest)
