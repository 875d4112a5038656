"""The whole product on loopback: dev IdP, Rancher emulator, Slack emulator and the bot, in one process."""

from __future__ import annotations

import contextlib
import sqlite3
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from accessbot_emulators.idp import DevIdP, run_in_thread
from accessbot_emulators.rancher import DEMO_FIXTURE, RancherEmulator, load_fixture, run_emulator
from accessbot_emulators.serving import bind, serve_in_thread
from accessbot_emulators.slack import SlackEmulator
from bot.config import Config, parse_config
from bot.demo import botconfig

DATA = Path(__file__).resolve().parent / "demo_data"
BOT_RANCHER_TOKEN = "token-b9t4n:2jpfw5dxczjt4wr7nsxspmk8h57kdxmvtn6smzdfvrh7ngtrc4d7wx"
TEAM_ID = "T0DEMO0001"

# Slack users of the demo, matched to IdP accounts by email.
PEOPLE = {
    "alice": ("U0ALICE001", "alice@example.com", "Alice Archer"),
    "bob": ("U0BOB00001", "bob@example.com", "Bob Baker"),
    "carol": ("U0CAROL001", "carol@example.com", "Carol Chen"),
}

FAST_SCHEDULE: dict[str, Any] = {
    "sweep_interval": "1s",
    "reconcile_interval": "5s",
    "outbox_interval": "1s",
    # One bot process holds the jobs lease; it must outlast any clock jump (`:wait 65m`, time_machine.shift),
    # or the jobs skip their turn until the next lease tick and a jump looks like a lost leadership.
    "lease_ttl": "30d",
    "overdue_alert_after": "2m",
    "expiry_warning": "2m",
}


@dataclass
class Stack:
    """Handles on every running part."""

    idp: DevIdP
    idp_url: str
    rancher: RancherEmulator
    slack: SlackEmulator
    bot_url: str
    config: Config
    config_path: Path
    app_kwargs: dict[str, Any] = field(default_factory=dict)
    _bot: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    def start_bot(self) -> None:
        """Serve the bot on its public URL (same port every time, so OAuth redirects keep working)."""
        from bot.web.app import create_app  # noqa: PLC0415 - the bot is imported only when a stack starts

        port = int(self.bot_url.rsplit(":", 1)[1])
        sock, _ = bind(port=port)
        self._bot.enter_context(serve_in_thread(create_app(self.config, **self.app_kwargs), sock=sock))

    def stop_bot(self) -> None:
        """Stop the bot process's server (the emulators keep running), as a crash or deploy would."""
        self._bot.close()
        self._bot = contextlib.ExitStack()

    def restart_bot(self) -> None:
        """Stop and start the bot on the same database."""
        self.stop_bot()
        self.start_bot()


@contextlib.contextmanager
def running_stack(
    *,
    database: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    app_kwargs: Mapping[str, Any] | None = None,
) -> Iterator[Stack]:
    """Start the IdP, Rancher and Slack emulators and the bot on loopback; stop them all on exit."""
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="accessbot-demo-")))
        idp = DevIdP(DATA / "idp-accounts.yaml")
        idp_url = stack.enter_context(run_in_thread(idp))
        rancher = stack.enter_context(run_emulator(load_fixture(DEMO_FIXTURE)))
        slack = stack.enter_context(SlackEmulator.running(bot_token=botconfig.BOT_TOKEN, team_id=TEAM_ID))
        for user_id, email, name in PEOPLE.values():
            slack.add_user(user_id, email, name, real_name=name, team_id=TEAM_ID)
        sock, url = bind()
        merged: dict[str, Any] = {
            "schedule": dict(FAST_SCHEDULE),
            "oidc": {"refresh_interval": "30s"},
            "review": {"reviewer_groups": ["sre"]},  # the demo's self-service dev rules name no approvers
        }
        for key, value in (overrides or {}).items():
            if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
                merged[key] = {**merged[key], **value}
            else:
                merged[key] = value
        data = botconfig.config_data(
            database=Path(database or tmp / "accessbot.db").resolve(),
            public_url=url,
            slack_api_url=slack.api_url,
            oidc_issuer=idp_url,
            rancher_url=rancher.url,
            rancher_token=BOT_RANCHER_TOKEN,
            overrides=merged,
        )
        config_path = tmp / "config.yaml"
        config_path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        config = parse_config(data)
        sock.close()
        running = Stack(
            idp=idp,
            idp_url=idp_url,
            rancher=rancher,
            slack=slack,
            bot_url=url,
            config=config,
            config_path=config_path,
            app_kwargs=dict(app_kwargs or {}),
        )
        if database is not None:
            _free_stale_lease(config.database.reveal())
        running.start_bot()
        stack.callback(running.stop_bot)
        yield running


def _free_stale_lease(database: str | Path) -> None:
    """Release a jobs lease left in a reused demo database by a demo that was killed (its TTL is long, see above)."""
    from bot.adapters.store import open_storage  # noqa: PLC0415 - the bot is imported only when a stack starts
    from bot.services.jobs.lease import LEASE_NAME  # noqa: PLC0415

    if not Path(database).exists():
        return
    store = open_storage(database, migrate=False)
    try:
        holder = store.leases.holder(LEASE_NAME, int(time.time()))
        if holder is not None:
            store.leases.release(LEASE_NAME, holder)
    except sqlite3.OperationalError:
        return  # not migrated yet: no lease to free
    finally:
        store.database.close()
