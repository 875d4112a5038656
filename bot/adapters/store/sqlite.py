"""The SQLite connection (sqlite-utils): pragmas, transactions, schema migrations and the SQL calls repositories make.

The connection belongs to the thread that opened it (sqlite3's thread affinity): the event-loop thread for the
bot, a worker thread for the digest's reader. Every call is short and synchronous.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from bot.adapters.store.migrations import MIGRATIONS

Row = dict[str, Any]


class SqliteDatabase:
    """One connection to the bot's SQLite file (WAL, foreign keys, busy timeout)."""

    def __init__(self, path: str | Path, *, busy_timeout: float = 10.0) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self.db = Database(sqlite3.connect(self.path, timeout=busy_timeout))
        self.db.execute("PRAGMA foreign_keys=ON")
        if self.path != ":memory:":
            self.db.enable_wal()
        self.db.execute("PRAGMA synchronous=NORMAL")

    def __repr__(self) -> str:
        return f"SqliteDatabase({self.path!r})"

    # --- the Database and Transactions ports ----------------------------------------------------------

    def ping(self) -> bool:
        """True when the database answers a query."""
        return self.one("select 1 as one") == {"one": 1}

    def applied_migrations(self) -> list[str]:
        """Names of the migrations already applied."""
        if "_sqlite_migrations" not in self.db.table_names():
            return []
        return [r["name"] for r in self.query("select name from _sqlite_migrations where migration_set = 'accessbot'")]

    def pending_migrations(self) -> list[str]:
        """Names of migrations not applied yet (empty when the schema is current)."""
        return [m.name for m in MIGRATIONS.pending(self.db)]

    def migrate(self) -> list[str]:
        """Apply pending migrations; return the names applied now."""
        before = set(self.applied_migrations())
        MIGRATIONS.apply(self.db)
        return [name for name in self.applied_migrations() if name not in before]

    def close(self) -> None:
        """Close the connection."""
        self.db.conn.close()

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """One transaction (nestable as savepoints); rolls back everything on an exception."""
        with self.db.atomic():
            yield

    # --- what repositories call -----------------------------------------------------------------------

    def execute(self, sql: str, params: Sequence[object] = ()) -> int:
        """Run one statement; return the number of rows it changed."""
        return int(self.db.execute(sql, list(params)).rowcount)

    def query(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        """All rows of a query, as dicts."""
        return list(self.db.query(sql, list(params)))

    def one(self, sql: str, params: Sequence[object] = ()) -> Row | None:
        """The first row of a query, or None."""
        return next(iter(self.db.query(sql, list(params))), None)

    def cursor(self, sql: str, params: Sequence[object] = (), *, by_name: bool = False) -> sqlite3.Cursor:
        """A lazy cursor over a query's rows (tuples, or sqlite3.Row readable by column name) for long reads."""
        cursor = self.db.conn.cursor()
        if by_name:
            cursor.row_factory = sqlite3.Row
        cursor.execute(sql, list(params))
        return cursor
