"""`accessbot check-config` and `accessbot migrate`: get a deployment ready (a valid file, a current database)."""

from __future__ import annotations

import argparse

from bot.cli.context import EXIT_OK, Add, Subparsers, config_from, storage_from
from bot.config import load_config, summary, warnings


def cmd_check_config(args: argparse.Namespace) -> int:
    """Validate a configuration file and print a summary, then any warning about risky settings."""
    config = load_config(args.path or args.config)
    print("OK")
    for line in summary(config):
        print("  " + line)
    for line in warnings(config):
        print(f"warning: {line}")
    return EXIT_OK


def cmd_migrate(args: argparse.Namespace) -> int:
    """Apply pending database migrations (before a rollout: a Kubernetes Job or Helm hook), refuse a newer database,
    and key the audit chain (a recorded re-keying event) when it is not yet."""
    from bot.adapters.clock import SystemClock  # noqa: PLC0415 - only this command needs the wiring
    from bot.adapters.store import open_sql  # noqa: PLC0415 - only this command needs the adapter itself
    from bot.wiring import audit_log  # noqa: PLC0415

    config = config_from(args)
    sql = open_sql(config.database.reveal())
    try:
        applied_now = sql.migrate()
        applied = sql.applied_migrations()
    finally:
        sql.close()
    with storage_from(args) as storage:
        rekeyed = audit_log(config, storage, SystemClock()).ensure_keyed()
    now = f"applied now: {', '.join(applied_now)}" if applied_now else "none applied now"
    print(f"OK: {config.database} has {len(applied)} migration(s) applied ({now}), none pending")
    if rekeyed is not None:
        print(f"the audit chain is now keyed (event {rekeyed.id}, key {rekeyed.key_id})")
    return EXIT_OK


def register(sub: Subparsers, add: Add) -> None:
    """Add `accessbot check-config [PATH]` and `accessbot migrate`."""
    p = add("check-config", cmd_check_config, "validate a configuration file and print a summary")
    p.add_argument("path", nargs="?")
    add("migrate", cmd_migrate, "apply pending database migrations (run before a rollout)")
