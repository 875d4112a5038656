"""The bot's database behind the storage ports: `open_storage(path)` gives every port on one SQLite file."""

from __future__ import annotations

from pathlib import Path

from bot.adapters.store.audit import SqlAudit
from bot.adapters.store.coordination import SqlJobMarks, SqlLeases, SqlReplayCache
from bot.adapters.store.grants import SqlExtensions, SqlGrants
from bot.adapters.store.identity import SqlLinks, SqlLoginAttempts
from bot.adapters.store.outbox import SqlOutbox
from bot.adapters.store.sqlite import SqliteDatabase
from bot.core.storage import Storage

__all__ = ["SqliteDatabase", "open_storage"]


def open_storage(database: str | Path, *, migrate: bool = True) -> Storage:
    """Every storage port on one connection to `database` (migrated to the current schema unless told not to)."""
    sql = SqliteDatabase(database)
    if migrate:
        sql.migrate()
    return Storage(
        database=sql,
        tx=sql,
        grants=SqlGrants(sql),
        extensions=SqlExtensions(sql),
        links=SqlLinks(sql),
        attempts=SqlLoginAttempts(sql),
        audit=SqlAudit(sql),
        outbox=SqlOutbox(sql),
        leases=SqlLeases(sql),
        marks=SqlJobMarks(sql),
        replays=SqlReplayCache(sql),
    )
