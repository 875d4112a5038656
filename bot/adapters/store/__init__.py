"""The bot's database behind the storage ports: `open_storage(target)` gives every port on SQLite or PostgreSQL.

`target` is a SQLite file path (`./accessbot.db`) or a `postgresql://` URL; the repositories are the same for both
and write SQL only through `SqlConnection` (sql.py), which is where the two dialects differ.
"""

from __future__ import annotations

from pathlib import Path

from bot.adapters.store.audit import SqlAudit
from bot.adapters.store.coordination import SqlJobMarks, SqlLeases, SqlReplayCache
from bot.adapters.store.grants import SqlExtensions, SqlGrants
from bot.adapters.store.identity import SqlLinks, SqlLoginAttempts
from bot.adapters.store.migrations import DatabaseTooNew
from bot.adapters.store.outbox import SqlOutbox
from bot.adapters.store.reviews import SqlReviews, SqlStandingSamples
from bot.adapters.store.sql import Engine
from bot.adapters.store.sqlite import SqliteDatabase
from bot.core.storage import Storage

__all__ = [
    "POSTGRES_SCHEMES",
    "DatabaseTooNew",
    "Engine",
    "SqliteDatabase",
    "is_postgres",
    "open_sql",
    "open_storage",
    "storage_on",
]

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres(target: str | Path) -> bool:
    """True when `target` is a PostgreSQL URL rather than a SQLite path."""
    return str(target).startswith(POSTGRES_SCHEMES)


def open_sql(target: str | Path) -> Engine:
    """The connection for `target`: a PostgreSQL pool for a postgresql:// URL, else a SQLite file."""
    if is_postgres(target):
        from bot.adapters.store.postgres import PostgresDatabase  # noqa: PLC0415 - psycopg loads only when used

        return PostgresDatabase(str(target))
    return SqliteDatabase(target)


def open_storage(target: str | Path, *, migrate: bool = True) -> Storage:
    """Every storage port on one database (migrated to the current schema unless told not to)."""
    sql = open_sql(target)
    try:
        if migrate:
            sql.migrate()
    except BaseException:
        sql.close()
        raise
    return storage_on(sql)


def storage_on(sql: Engine) -> Storage:
    """Every storage port over one open connection (closed with `storage.database.close()`)."""
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
        reviews=SqlReviews(sql),
        standing=SqlStandingSamples(sql),
    )
