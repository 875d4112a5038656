"""Shared fixtures: loopback emulators (Slack, IdP, Rancher), a running bot, signed Slack requests."""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from accessbot_emulators.postgres import PostgresCluster, find_bindir, running_cluster
from accessbot_emulators.rancher import RancherEmulator, run_emulator
from accessbot_emulators.serving import bind, serve_in_thread
from accessbot_emulators.slack import SlackEmulator, SlackSigner, slash_command_body
from accessbot_emulators.slack.records import ResponsePost
from bot.adapters.store import open_storage
from bot.config import Config
from bot.core.model import AuditEvent
from bot.core.storage import Storage
from bot.demo import botconfig
from bot.web.app import create_app
from tests import factories

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
    acked: dict[str, ResponsePost] = field(default_factory=dict)
    """Replies the bot put in a command's acknowledgement (Slack's immediate response), by response_url key."""

    def store(self) -> Storage:
        """A second connection to the bot's database, for assertions (close with `.database.close()`)."""
        return open_storage(self.config.database.reveal(), migrate=False)

    def audit(self, action: str) -> list[AuditEvent]:
        """The bot's audit events of one action, read through a second connection."""
        store = self.store()
        try:
            return [e for e in store.audit.events() if e.action == action]
        finally:
            store.database.close()

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
        response = self.post_signed(body)
        if response.status_code == 200 and response.content:  # an immediate response, as Slack would show it
            self.acked[key] = ResponsePost(key, response.json(), time.time())
        return response, key

    def reply(self, key: str, timeout: float = 5.0) -> Any:
        """The bot's reply: in the command's acknowledgement, or else posted to response_url `key` (waited for)."""
        if key in self.acked:
            return self.acked[key]
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


# ==== linked users and Rancher (grants, access) =============================================================
BOT_KEY = "token-b9t4n:2jpfw5dxczjt4wr7nsxspmk8h57kdxmvtn6smzdfvrh7ngtrc4d7wx"
LABEL = "accessbot.io/grant"
ALICE, BOB, CAROL = "U0ALICE001", "U0BOB00001", "U0CAROL001"
SUBJECTS = {
    ALICE: ("3f2a9c1e-5b7d-4e8a-9c0f-1a2b3c4d5e6f", ["engineering"]),
    BOB: ("8c1d7e22-0a4b-4c9e-8f3d-2b5a6c7d8e9f", ["sre", "engineering"]),
    CAROL: ("b4e9f0a1-7c2d-4e5f-9a8b-3c4d5e6f7a8b", ["sre"]),
}
APPROVALS = "CAPPROVE01"
EVIL = "<!channel> see <https://evil|x>"


@pytest.fixture(scope="session")
def rancher() -> Iterator[RancherEmulator]:
    """A Rancher emulator for this module (reset per bot)."""
    with run_emulator() as emu:
        yield emu


def link_users(bot: RunningBot, users: dict[str, tuple[str, list[str]]]) -> None:
    """Store active links for Slack users (id → IdP subject, groups), as a completed login would."""
    store = bot.store()
    now = int(time.time())
    try:
        for user, (subject, groups) in users.items():
            bot.slack.add_user(user, f"{user.lower()}@example.com", user.lower())
            factories.link(store.links, user, subject, groups, now=now)
    finally:
        store.database.close()


@pytest.fixture
def gbot(  # a bot with Alice, Bob and Carol linked and Rancher emulated
    make_bot: Callable[..., contextlib.AbstractContextManager[RunningBot]],
    rancher: RancherEmulator,
    slack: SlackEmulator,
) -> Iterator[RunningBot]:
    """A bot wired to the Rancher emulator with Alice, Bob and Carol linked; Slack's emulator starts empty."""
    rancher.reset()
    slack.reset()
    with make_bot(rancher_url=rancher.url, rancher_token=BOT_KEY) as running:
        link_users(running, SUBJECTS)
        yield running


class FakeClock:
    """A settable clock for services under test (time is a value they read, not something we mock)."""

    def __init__(self, now: int = 1_800_000_000) -> None:
        self.value = now

    def now(self) -> int:
        """Current time."""
        return self.value


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


# ==== identity provider fixtures (identity linking, issue 3) =============================================
# A dev OpenID provider per test on loopback (its state is mutated by tests: disabled accounts, tampered tokens).

IDP_ADMIN_TOKEN = "test-idp-admin-token"
IDP_ACCOUNTS: dict[str, Any] = {
    "clients": [
        {"client_id": botconfig.CLIENT_ID, "client_secret": botconfig.CLIENT_SECRET, "redirect_uris": ["*"]},
    ],
    "accounts": {
        "alice": {
            "password": "alice-pw",
            "sub": "sub-alice",
            "email": "alice@example.com",
            "email_verified": True,
            "name": "Alice Example",
            "groups": ["engineering", "sre"],
        },
        "bob": {
            "password": "bob-pw",
            "sub": "sub-bob",
            "email": "Bob@Example.com",
            "email_verified": True,
            "name": "Bob Example",
            "groups": ["engineering"],
        },
        "mallory": {
            "password": "mallory-pw",
            "sub": "sub-mallory",
            "email": "alice@example.com",
            "email_verified": False,
            "name": "Mallory (unverified copy of Alice's email)",
            "groups": [],
        },
    },
}
IDP_PASSWORDS = {name: str(account["password"]) for name, account in IDP_ACCOUNTS["accounts"].items()}
# Slack users whose profile emails match the IdP accounts above (the takeover guard compares them).
SLACK_ALICE = "U0ALICE001"
SLACK_BOB = "U0BOB00001"
SLACK_ALICE_TWIN = "U0ALICE002"  # a second Slack account with Alice's email (relink tests)


@dataclass
class RunningIdP:
    """A dev IdP served on loopback: `.url` is its issuer, `.idp` the in-process controls."""

    idp: Any  # accessbot_emulators.idp.DevIdP
    url: str


class _IdPSwitch:
    """An ASGI app forwarding to the current test's DevIdP, so one loopback server serves the whole session."""

    def __init__(self) -> None:
        self.current: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.current.app(scope, receive, send)


@pytest.fixture(scope="session")
def _idp_server() -> Iterator[tuple[_IdPSwitch, str]]:
    """One uvicorn server on 127.0.0.1 for every dev IdP of the session."""
    switch = _IdPSwitch()
    with serve_in_thread(switch, lifespan="off") as url:
        yield switch, url


@pytest.fixture
def idp(slack: SlackEmulator, _idp_server: tuple[_IdPSwitch, str]) -> RunningIdP:
    """A fresh dev OpenID provider (new keys, accounts, tokens) on loopback, with matching Slack users."""
    import copy

    from accessbot_emulators.idp import DevIdP

    slack.add_user(SLACK_ALICE, "alice@example.com", "alice")
    slack.add_user(SLACK_BOB, "bob@example.com", "bob")
    slack.add_user(SLACK_ALICE_TWIN, "ALICE@example.com", "alice2")
    switch, url = _idp_server
    dev = DevIdP(copy.deepcopy(IDP_ACCOUNTS), admin_token=IDP_ADMIN_TOKEN, issuer=url)
    switch.current = dev
    return RunningIdP(idp=dev, url=url)


# ==== end of identity provider fixtures ===================================================================


# ==== a real PostgreSQL (issue 14) ==========================================================================
# A throwaway cluster for the session (initdb and pg_ctl, as the `postgres` user when root, on a free loopback
# port), one fresh database per test. Skipped only where the server binaries are absent; under CI=true they must
# be there (.ci/run installs Debian's postgresql package), so a missing server fails instead of skipping.


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """A running throwaway PostgreSQL cluster, removed at the end of the session."""
    bindir = find_bindir()
    if bindir is None:
        message = "PostgreSQL server binaries (initdb, pg_ctl) are not installed (apt-get install postgresql)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and {message}")
        pytest.skip(message)
    with running_cluster(bindir) as cluster:
        yield cluster


@pytest.fixture
def postgres_url(postgres_cluster: PostgresCluster) -> Iterator[str]:
    """The URL (password included) of a fresh, empty database, dropped after the test."""
    url = postgres_cluster.create_database()
    yield url
    postgres_cluster.drop_database(url)
