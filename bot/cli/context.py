"""What every command runs with: the exit codes, the config named by --config, and the granting service."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

from bot.config import Config, load_config

if TYPE_CHECKING:
    from bot.adapters.store import Store
    from bot.services.granting import GrantingService

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
Command = Callable[[argparse.Namespace], int]
Add = Callable[[str, Command, str], argparse.ArgumentParser]
"""`add(name, command, help)`: adds one subcommand (with its own --config) and returns its parser."""
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
_T = TypeVar("_T")


def config_from(args: argparse.Namespace) -> Config:
    """The configuration named by --config, else $ACCESSBOT_CONFIG, else ./config.yaml."""
    return load_config(getattr(args, "config", None))


def run_with_granting(
    factory: Callable[[GrantingService, Store], Coroutine[Any, Any, _T]], args: argparse.Namespace
) -> _T:
    """Build the store, the Rancher client and the granting service from the config, run one coroutine, close."""
    from bot.adapters.clock import SystemClock  # noqa: PLC0415 - only these commands need the wiring
    from bot.services.audit import AuditLog  # noqa: PLC0415
    from bot.services.notifications import Notifications  # noqa: PLC0415
    from bot.wiring import build_granting, open_store  # noqa: PLC0415

    config = config_from(args)
    store = open_store(config)
    clock = SystemClock()
    channels = config.slack.channels
    notifications = Notifications(
        store,
        clock,
        {"grants": channels.grants, "approvals": channels.approvals, "security": channels.security},
    )

    async def main() -> _T:
        rancher, granting = build_granting(
            config, store=store, audit=AuditLog(store, clock), notifications=notifications, clock=clock
        )
        try:
            return await factory(granting, store)
        finally:
            await rancher.aclose()

    try:
        return asyncio.run(main())
    finally:
        store.close()
