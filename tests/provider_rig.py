"""A bot wired for one dev IdP personality (bot.wiring.build: the real OIDC client, group sources, linking,
identity sync and grants) with the Rancher and Slack emulators and SQLite, and a browser to link with."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from accessbot_emulators.idp import DevIdP, complete_login
from accessbot_emulators.idp.claims import entra_group_id
from accessbot_emulators.rancher import RancherEmulator
from accessbot_emulators.slack import SlackEmulator
from bot.config import parse_config
from bot.core.model import GrantState, LinkStatus
from bot.demo import botconfig
from bot.services.linking import LinkResult
from bot.wiring import Bot, build
from tests import factories
from tests.conftest import TEAM, FakeClock
from tests.personas import PASSWORDS, bot_config_data, start

Server = tuple[Any, str]
ALICE = "U0ALICE001"
CAROL = "U0CAROL001"


def group_names(name: str) -> Callable[[str], str]:
    """How the policy names a group for each provider: Entra's object ids, Google's group emails, else the name."""
    if name == "entra":
        return entra_group_id
    if name == "google":
        return lambda group: f"{group}@example.com"
    return lambda group: group


def policy_for(name: str) -> dict[str, Any]:
    """The demo policy with its groups named the way the provider's group source names them."""
    named = group_names(name)
    policy = botconfig.DEMO_POLICY | {"rules": []}
    for original in botconfig.DEMO_POLICY["rules"]:
        rule = dict(original)
        rule["groups"] = [named(g) for g in rule["groups"]]
        if isinstance(rule.get("approval"), dict):
            rule["approval"] = {**rule["approval"], "groups": [named(g) for g in rule["approval"]["groups"]]}
        policy["rules"].append(rule)
    return policy


@dataclass
class Rig:
    """A wired bot on one personality, a browser, and the emulators."""

    bot: Bot
    idp: DevIdP
    browser: httpx.AsyncClient
    slack: SlackEmulator
    clock: FakeClock

    async def link(self, slack_user: str = ALICE, username: str = "alice") -> LinkResult:
        """The whole link flow: button, IdP sign-in, callback."""
        url = self.bot.linking.begin_link(slack_user, TEAM)
        begun = await self.bot.linking.start(parse_qs(urlsplit(url).query)["attempt"][0])
        location = await complete_login(self.browser, begun.redirect_url, username, PASSWORDS[username])
        params = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
        return await self.bot.linking.complete(
            state=params.get("state"), code=params.get("code"), error=params.get("error"), cookie=begun.cookie
        )

    def state(self, grant_id: str) -> GrantState:
        """A grant's state now."""
        grant = self.bot.storage.grants.get(grant_id)
        assert grant is not None
        return grant.state

    def status(self, slack_user: str = ALICE) -> LinkStatus:
        """A link's status now."""
        record = self.bot.storage.links.get(slack_user)
        assert record is not None
        return record.identity.status

    def audit(self, action: str) -> list[Any]:
        """Audit events of one action."""
        return [e for e in self.bot.storage.audit.events() if e.action == action]

    def queued(self, channel: str) -> list[str]:
        """Texts queued in the outbox for a channel or a DM."""
        return factories.queued_texts(self.bot.storage, channel)


@contextlib.asynccontextmanager
async def rig_for(
    name: str,
    persona_server: Server,
    slack: SlackEmulator,
    rancher: RancherEmulator,
    tmp_path: Path,
    *,
    oidc: dict[str, Any] | None = None,
    rancher_settings: dict[str, Any] | None = None,
    accounts: dict[str, Any] | None = None,
    policy_as: str | None = None,
) -> AsyncIterator[Rig]:
    """The bot wired for personality `name` (only the preset, issuer and credentials, unless `oidc` adds keys;
    `policy_as` names groups the way another provider does, e.g. `generic` for plain names)."""
    idp = start(persona_server, name, accounts)
    rancher.reset()
    data = bot_config_data(name, idp, tmp_path, slack_api_url=slack.api_url, rancher_url=rancher.url)
    data["policy"] = policy_for(policy_as or name)
    for key, value in (oidc or {}).items():
        merged = isinstance(value, dict) and isinstance(data["oidc"].get(key), dict)
        data["oidc"][key] = {**data["oidc"][key], **value} if merged else value
    data["rancher"].update(rancher_settings or {})
    clock = FakeClock(int(time.time()))
    bot = build(parse_config(data), clock=clock)
    slack.add_user(ALICE, "alice@example.com", "alice")
    slack.add_user(CAROL, "carol@example.com", "carol")
    async with httpx.AsyncClient(timeout=10) as browser:
        try:
            yield Rig(bot, idp, browser, slack, clock)
        finally:
            await bot.aclose()
