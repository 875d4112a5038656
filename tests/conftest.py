"""Shared fixtures: loopback emulators (Slack, IdP, Rancher), a running bot, signed Slack requests."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.adapters.store import Store
from bot.config import Config
from bot.devtools import botconfig
from bot.devtools.servers import bind, serve_in_thread
from bot.devtools.slack_api import SlackEmulator, SlackSigner, slash_command_body
from bot.server import create_app

TEAM = "T0TEST0001"
UNREACHABLE = "http://127.0.0.1:9"  # discard port: nothing listens there


@pytest.fixture(scope="session")
def slack() -> Iterator[SlackEmulator]:
    """One Slack Web API emulator for the whole session (reset per bot)."""
    with SlackEmulator.running(bot_token=botconfig.BOT_TOKEN, team_id=TEAM) as emulator:
        yield emulator


@pytest.fixture
def signer() -> SlackSigner:
    """Signs requests exactly as Slack does, with the test signing secret."""
    return SlackSigner(botconfig.SIGNING_SECRET)


@dataclass
class RunningBot:
    """A bot served by uvicorn on loopback, and ways to talk to it as Slack would."""

    url: str
    config: Config
    slack: SlackEmulator
    signer: SlackSigner
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=10))

    def store(self) -> Store:
        """A second connection to the bot's database, for assertions."""
        return Store(self.config.database)

    def post_signed(
        self, body: str, *, content_type: str = "application/x-www-form-urlencoded", **sign: Any
    ) -> httpx.Response:
        """POST a body to /slack/events with a valid Slack signature."""
        headers = self.signer.sign(body, **sign)
        headers["Content-Type"] = content_type
        return self.http.post(f"{self.url}/slack/events", content=body.encode(), headers=headers)

    def command(
        self, user: str, text: str, *, channel: str = "C0GENERAL1", channel_name: str = "general"
    ) -> tuple[httpx.Response, str]:
        """Send `/access TEXT` as `user`; return the HTTP response and the response_url key for the reply."""
        key = uuid.uuid4().hex[:10]
        body = slash_command_body(
            "/access",
            text,
            user,
            TEAM,
            channel,
            self.slack.response_url(key),
            channel_name=channel_name,
        )
        return self.post_signed(body), key

    def reply(self, key: str, timeout: float = 5.0) -> Any:
        """Wait for the bot's reply posted to response_url `key`."""
        return self.slack.wait_for(lambda: (self.slack.responses(key) or [None])[-1], timeout=timeout)

    def ask(self, user: str, text: str, **kwargs: Any) -> Any:
        """Send a command and return the reply it produced."""
        response, key = self.command(user, text, **kwargs)
        assert response.status_code == 200, response.text
        return self.reply(key)


@pytest.fixture
def make_bot(
    tmp_path: Path, slack: SlackEmulator, signer: SlackSigner
) -> Iterator[Callable[..., contextlib.AbstractContextManager[RunningBot]]]:
    """Start bots on loopback: `with make_bot(oidc_issuer=..., rancher_url=..., overrides={...}) as bot:`."""
    stack = contextlib.ExitStack()

    @contextlib.contextmanager
    def start(**kwargs: Any) -> Iterator[RunningBot]:
        sock, url = bind()
        data = {
            "database": kwargs.pop("database", tmp_path / f"bot-{uuid.uuid4().hex[:6]}.db"),
            "public_url": url,
            "slack_api_url": slack.api_url,
            "oidc_issuer": kwargs.pop("oidc_issuer", UNREACHABLE),
            "rancher_url": kwargs.pop("rancher_url", UNREACHABLE),
            "rancher_token": kwargs.pop("rancher_token", "token-abcde:notused"),
            "overrides": kwargs.pop("overrides", None),
        }
        config = botconfig.make_config(**data)
        app = create_app(config, **kwargs)
        with serve_in_thread(app, sock=sock) as base:
            running = RunningBot(url=base, config=config, slack=slack, signer=signer)
            try:
                yield running
            finally:
                running.http.close()

    yield start
    stack.close()


@pytest.fixture
def bot(make_bot: Callable[..., contextlib.AbstractContextManager[RunningBot]]) -> Iterator[RunningBot]:
    """A bot with Slack wired to the emulator (IdP and Rancher unreachable)."""
    with make_bot() as running:
        yield running


def wait_until(predicate: Callable[[], Any], timeout: float = 5.0, interval: float = 0.02) -> Any:
    """Poll until `predicate()` is truthy; return its value or fail the test."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout}s")
        time.sleep(interval)
