"""What every command runs with: the exit codes, the config named by --config, the database, the wired bot."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

from bot.config import Config, load_config

if TYPE_CHECKING:
    from bot.core.storage import Storage
    from bot.wiring import Bot

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
Command = Callable[[argparse.Namespace], int]
Add = Callable[[str, Command, str], argparse.ArgumentParser]
"""`add(name, command, help)`: adds one subcommand (with its own --config) and returns its parser."""
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
_T = TypeVar("_T")


def config_from(args: argparse.Namespace) -> Config:
    """The configuration named by --config, else $ACCESSBOT_CONFIG, else ./config.yaml."""
    return load_config(getattr(args, "config", None))


@contextmanager
def storage_from(args: argparse.Namespace) -> Iterator[Storage]:
    """The configured database (migrated), closed when the command is done."""
    from bot.wiring import open_store  # noqa: PLC0415 - only commands that need the database load it

    storage = open_store(config_from(args))
    try:
        yield storage
    finally:
        storage.database.close()


def run_with_bot(factory: Callable[[Bot], Coroutine[Any, Any, _T]], args: argparse.Namespace) -> _T:
    """Wire the bot from the config (without serving or scheduling anything), run one coroutine, close."""
    from bot.wiring import running  # noqa: PLC0415 - only these commands need the whole bot

    config = config_from(args)

    async def main() -> _T:
        async with running(config) as bot:
            return await factory(bot)

    return asyncio.run(main())
