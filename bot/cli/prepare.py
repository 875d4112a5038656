"""`accessbot check-config` and `accessbot migrate`: get a deployment ready (a valid file, a current database)."""

from __future__ import annotations

import argparse

from bot.cli.context import EXIT_OK, Add, Subparsers, config_from, storage_from
from bot.config import load_config, summary, warnings


def cmd_check_config(args: argparse.Namespace) -> int:
    """Validate a configuration file and print a summary, then a warning per suspicious value."""
    config = load_config(args.path or args.config)
    print("OK")
    for line in summary(config):
        print("  " + line)
    for line in warnings(config):
        print(f"warning: {line}")
    return EXIT_OK


def cmd_migrate(args: argparse.Namespace) -> int:
    """Apply database migrations."""
    config = config_from(args)
    with storage_from(args) as storage:
        applied = storage.database.applied_migrations()
    print(f"OK: {config.database} has {len(applied)} migration(s) applied, none pending")
    return EXIT_OK


def register(sub: Subparsers, add: Add) -> None:
    """Add `accessbot check-config [PATH]` and `accessbot migrate`."""
    p = add("check-config", cmd_check_config, "validate a configuration file and print a summary")
    p.add_argument("path", nargs="?")
    add("migrate", cmd_migrate, "apply database migrations")
