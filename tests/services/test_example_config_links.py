"""Done when: with config.example.yaml's defaults and only the preset, issuer and client credentials set, linking
works on every dev IdP personality (through the wired bot, the Slack emulator and SQLite)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from accessbot_emulators.idp import complete_login
from accessbot_emulators.slack import SlackEmulator
from bot.config import load_config
from bot.wiring import build
from tests.conftest import TEAM
from tests.personas import CLIENT_ID, CLIENT_SECRET, NAMES, PASSWORDS, persona_server, start
from tests.test_config import ENV, EXAMPLE

__all__ = ["persona_server"]
ALICE = "U0ALICE001"


@pytest.mark.parametrize("name", NAMES)
async def test_example_config_links_on_every_personality(
    name: str, persona_server: tuple[Any, str], slack: SlackEmulator, tmp_path: Path
) -> None:
    """OIDC_PROVIDER, OIDC_ISSUER, OIDC_CLIENT_ID and OIDC_CLIENT_SECRET are all it takes to link."""
    idp = start(persona_server, name)
    environ = {
        **ENV,
        "OIDC_PROVIDER": name,
        "OIDC_ISSUER": idp.issuer,
        "OIDC_CLIENT_ID": CLIENT_ID,
        "OIDC_CLIENT_SECRET": CLIENT_SECRET,
        "ACCESSBOT_DATABASE": str(tmp_path / "bot.db"),
        "ACCESSBOT_PUBLIC_URL": "http://127.0.0.1:9",
        "SLACK_API_URL": slack.api_url,
        "SLACK_BOT_TOKEN": "xoxb-dev-0000-bot-token",
    }
    bot = build(load_config(EXAMPLE, environ=environ))
    slack.add_user(ALICE, "alice@example.com", "alice")
    try:
        url = bot.linking.begin_link(ALICE, TEAM)
        begun = await bot.linking.start(parse_qs(urlsplit(url).query)["attempt"][0])
        async with httpx.AsyncClient(timeout=10) as browser:
            location = await complete_login(browser, begun.redirect_url, "alice", PASSWORDS["alice"])
        params = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
        result = await bot.linking.complete(
            state=params.get("state"), code=params.get("code"), error=params.get("error"), cookie=begun.cookie
        )
        assert result.ok, (name, result.failure, result.reason)
        assert bot.linking.whoami(ALICE).monitored
    finally:
        await bot.aclose()
