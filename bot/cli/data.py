"""`accessbot db copy` and `accessbot backup`: moving the data between SQLite and PostgreSQL, and keeping a copy."""

from __future__ import annotations

import argparse
import os
import sqlite3
from pathlib import Path

from bot.cli.context import EXIT_FAIL, EXIT_OK, Add, Subparsers, config_from
from bot.config import DEFAULT_CONFIG_PATH
from bot.config.database import DatabaseTarget
from bot.core.audit_chain import ChainKey
from bot.core.errors import UserError


def _target(value: str, flag: str) -> DatabaseTarget:
    try:
        return DatabaseTarget.parse(value)
    except ValueError as err:
        raise UserError(f"{flag}: {err}") from None


def _audit_keys(args: argparse.Namespace) -> tuple[ChainKey, ...]:
    """The audit chain's keys from the configuration, when there is one (--config, $ACCESSBOT_CONFIG, ./config.yaml)."""
    from bot.wiring import audit_keys  # noqa: PLC0415

    named = getattr(args, "config", None) or os.environ.get("ACCESSBOT_CONFIG") or DEFAULT_CONFIG_PATH
    return audit_keys(config_from(args)) if Path(named).is_file() else ()


def cmd_db_copy(args: argparse.Namespace) -> int:
    """Copy every row of one database into another, empty one, and verify the audit chain there (with the keys of
    the configuration: the chain is keyed)."""
    from bot.adapters.store import copying, open_sql, storage_on  # noqa: PLC0415
    from bot.services.audit import check_chain  # noqa: PLC0415

    source_at, target_at = _target(args.source, "--from"), _target(args.target, "--to")
    if source_at.reveal() == target_at.reveal():
        raise UserError("--from and --to name the same database", "copy into another, empty database")
    if not source_at.is_postgres and not Path(source_at.reveal()).is_file():
        raise UserError(f"--from: {source_at} is not a file", "name the SQLite file the bot uses")
    keys = _audit_keys(args)
    source_sql = open_sql(source_at.reveal())
    source = storage_on(source_sql)
    try:
        check = check_chain(source.audit, keys)
        if not check.ok:
            hint = "" if keys else "; a keyed chain verifies only with the bot's configuration: pass --config"
            print(f"error: the source's audit chain is broken at event {check.broken_at} ({check.problem}){hint}")
            return EXIT_FAIL
        target_sql = open_sql(target_at.reveal())
        target = storage_on(target_sql)
        try:

            def verify() -> None:
                copied = check_chain(target.audit, keys)
                if not copied.ok or copied.count != check.count:
                    raise UserError(
                        f"the copied audit chain does not verify ({copied.problem or 'the event count differs'})",
                        "nothing was written to the target",
                    )

            report = copying.copy_database(source_sql, target_sql, verify)
        finally:
            target_sql.close()
    finally:
        source_sql.close()
    print(f"OK: copied {report.total} rows in {len(report.rows)} tables from {source_at} to {target_at}")
    print(f"    audit chain verified on the target: {check.count} events")
    return EXIT_OK


def cmd_backup(args: argparse.Namespace) -> int:
    """Write a consistent copy of the SQLite database to FILE (safe while the bot serves) and check it."""
    from bot.adapters.store import SqliteDatabase, open_storage  # noqa: PLC0415
    from bot.services.audit import check_chain  # noqa: PLC0415
    from bot.wiring import audit_keys  # noqa: PLC0415

    config = config_from(args)
    if config.database.is_postgres:
        raise UserError(
            "accessbot backup copies a SQLite file; this configuration uses PostgreSQL",
            "use pg_dump (see README: Backup and upgrade)",
        )
    destination = Path(args.file)
    if destination.exists() and not args.force:
        raise UserError(f"{destination} already exists", "choose a new file, or pass --force to replace it")
    if not Path(config.database.reveal()).is_file():
        raise UserError(f"{config.database} does not exist", "check `database:` in the configuration")
    partial = destination.with_name(destination.name + ".partial")
    source = SqliteDatabase(config.database.reveal())
    try:
        source.backup(partial)
    finally:
        source.close()
    integrity = sqlite3.connect(partial).execute("pragma integrity_check").fetchone()
    copy = open_storage(partial, migrate=False)
    try:
        check = check_chain(copy.audit, audit_keys(config))
    finally:
        copy.database.close()
    if integrity != ("ok",) or not check.ok:
        partial.unlink(missing_ok=True)
        print(f"error: the backup did not verify (integrity {integrity}, audit chain {check.problem or 'ok'})")
        return EXIT_FAIL
    partial.replace(destination)
    print(f"OK: {config.database} backed up to {destination} ({check.count} audit events, chain intact)")
    return EXIT_OK


def register(sub: Subparsers, add: Add) -> None:
    """Add `accessbot db copy --from SRC --to DST` and `accessbot backup FILE [--force]`."""
    p = add("db", cmd_db_copy, "move the data between databases (SQLite and PostgreSQL)")
    db_sub = p.add_subparsers(dest="db_command", required=True, metavar="copy")
    copy = db_sub.add_parser("copy", help="copy every row into an empty database and verify the audit chain there")
    copy.add_argument("--from", dest="source", required=True, help="a SQLite file or a postgresql:// URL")
    copy.add_argument("--to", dest="target", required=True, help="a SQLite file or a postgresql:// URL (empty)")
    backup = add("backup", cmd_backup, "write a consistent copy of the SQLite database to FILE (safe while serving)")
    backup.add_argument("file", metavar="FILE")
    backup.add_argument("--force", action="store_true", help="replace FILE if it exists")
