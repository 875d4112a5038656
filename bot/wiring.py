"""Composition root: Config → adapters → services → Slack app; the only module naming concrete adapters."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.adapters.clock import SystemClock
from bot.adapters.sealing import FernetSealer
from bot.adapters.slack_notifier import SlackNotifier, make_client
from bot.adapters.store import Store
from bot.config import Config
from bot.core.ports import Clock
from bot.services.audit import AuditLog
from bot.services.notifications import Notifications
from bot.slack.app import build_app
from bot.slack.context import SlackDeps
from bot.slack.verification import RequestGuard

log = logging.getLogger(__name__)


@dataclass
class Components:
    """Everything one running bot holds; built once per process (inside the event loop thread)."""

    config: Config
    clock: Clock
    store: Store
    sealer: FernetSealer
    audit: AuditLog
    notifications: Notifications
    slack_client: AsyncWebClient
    notifier: SlackNotifier
    deps: SlackDeps
    bolt: AsyncApp
    guard: RequestGuard
    closers: list[Any] = field(default_factory=list)
    role: str = "standby"  # "leader" when this process runs the scheduled jobs

    async def aclose(self) -> None:
        """Close clients and the database."""
        for closer in reversed(self.closers):
            try:
                await closer()
            except Exception:
                log.warning("error while closing %r", closer, exc_info=True)
        self.store.close()


def open_store(config: Config) -> Store:
    """Open the database and apply pending migrations."""
    store = Store(config.database)
    store.migrate()
    return store


def build(config: Config, *, clock: Clock | None = None) -> Components:
    """Wire the whole bot from a validated config (call from the event-loop thread)."""
    clock = clock or SystemClock()
    store = open_store(config)
    sealer = FernetSealer([k.get_secret_value() for k in config.security.token_encryption_keys])
    audit = AuditLog(store, clock)
    channels = config.slack.channels
    notifications = Notifications(
        store,
        clock,
        {
            "grants": channels.grants,
            "approvals": channels.approvals,
            "security": channels.security,
            "digest": channels.digest,
        },
    )
    slack_client = make_client(config.slack.bot_token.get_secret_value(), config.slack.api_url)
    notifier = SlackNotifier(slack_client)
    deps = SlackDeps(
        audit=audit,
        notifications=notifications,
        clock=clock,
        command=config.slack.command,
        admins=frozenset(config.slack.admins),
    )
    bolt = build_app(deps, slack_client, config.slack.signing_secret.get_secret_value())
    guard = RequestGuard(config.slack.signing_secret.get_secret_value(), audit, clock)
    return Components(
        config=config,
        clock=clock,
        store=store,
        sealer=sealer,
        audit=audit,
        notifications=notifications,
        slack_client=slack_client,
        notifier=notifier,
        deps=deps,
        bolt=bolt,
        guard=guard,
    )
