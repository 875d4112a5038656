"""The SQLite connection (sqlite-utils): pragmas, transactions, the fence check, migrations and the online backup.

The connection belongs to the thread that opened it (sqlite3's thread affinity): the event-loop thread for the
bot, a worker thread for the digest's reader. Every call is short and synchronous.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from bot.adapters.store.migrations import MigratedDatabase, Migrator
from bot.adapters.store.sql import SQLITE, Dialect, Params, Row, check_fence, is_write
from bot.core import fencing


class SqliteDatabase(MigratedDatabase):
    """One connection to the SQLite file (WAL, foreign keys, busy timeout): a SqlConnection and the Database port."""

    def __init__(self, path: str | Path, *, busy_timeout: float = 10.0) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self.db = Database(sqlite3.connect(self.path, timeout=busy_timeout))
        self.db.execute("PRAGMA foreign_keys=ON")
        if self.path != ":memory:":
            self._enable_wal(busy_timeout)
        self.db.execute("PRAGMA synchronous=NORMAL")
        self._migrator = Migrator(self)

    def __repr__(self) -> str:
        return f"SqliteDatabase({self.path!r})"

    def _enable_wal(self, busy_timeout: float) -> None:
        """Switch the file to WAL, retrying while another connection holds the lock the switch needs.

        Changing the journal mode needs an exclusive lock, and SQLite can answer SQLITE_BUSY at once, without calling
        the busy handler, when another connection is opening or switching the same new file at that moment (seen in
        CI: three migrators opening one fresh file). https://www.sqlite.org/pragma.html#pragma_journal_mode and
        https://www.sqlite.org/wal.html#activating_and_configuring_wal_mode
        """
        deadline = time.monotonic() + busy_timeout
        pause = 0.005
        while True:
            try:
                self.db.enable_wal()
                return
            except sqlite3.OperationalError as err:
                if "locked" not in str(err) and "busy" not in str(err):
                    raise
                if time.monotonic() >= deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 2, 0.1)

    @property
    def dialect(self) -> Dialect:
        """SQLite's spelling of what differs between engines."""
        return SQLITE

    # --- the Database and Transactions ports ----------------------------------------------------------

    def close(self) -> None:
        """Close the connection."""
        self.db.conn.close()

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """One transaction (nestable as savepoints); rolls back everything on an exception.

        Under a job's fence the outermost transaction first checks the lease.
        """
        conn = self.db.conn
        if conn.in_transaction:
            with self.db.atomic():  # a savepoint
                yield
            return
        # IMMEDIATE takes the write lock now (waiting up to the busy timeout), so a transaction that reads and then
        # writes (the audit head, a compare-and-set) never fails on a snapshot another connection moved meanwhile
        conn.execute("BEGIN IMMEDIATE")
        try:
            check_fence(self)
            yield
        except BaseException:
            self._rollback()
            raise
        try:
            conn.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise

    def _rollback(self) -> None:
        if self.db.conn.in_transaction:  # an error may already have ended the transaction
            self.db.conn.execute("ROLLBACK")

    def backup(self, target: str | Path) -> None:
        """Copy the database to `target` with SQLite's online backup API (consistent while the bot serves)."""
        destination = sqlite3.connect(str(target))
        try:
            self.db.conn.backup(destination)
        finally:
            destination.close()

    # --- what repositories call -----------------------------------------------------------------------

    def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; return the number of rows it changed."""
        with self._fenced(sql):
            return int(self.db.execute(sql, list(params)).rowcount)

    def query(self, sql: str, params: Params = ()) -> list[Row]:
        """All rows of a query, as dicts."""
        with self._fenced(sql):
            return list(self.db.query(sql, list(params)))

    def one(self, sql: str, params: Params = ()) -> Row | None:
        """The first row of a query, or None."""
        with self._fenced(sql):
            return next(iter(self.db.query(sql, list(params))), None)

    def execute_many(self, sql: str, rows: Sequence[Params]) -> None:
        """Run one statement once per parameter row (bulk inserts)."""
        with self._fenced(sql):
            self.db.conn.executemany(sql, [list(row) for row in rows])

    def cursor(self, sql: str, params: Params = (), *, by_name: bool = False) -> Iterator[Any]:
        """A lazy cursor over a query's rows (tuples, or sqlite3.Row readable by column name) for long reads."""
        cursor = self.db.conn.cursor()
        if by_name:
            cursor.row_factory = sqlite3.Row
        cursor.execute(sql, list(params))
        return cursor

    @contextmanager
    def _fenced(self, sql: str) -> Iterator[None]:
        """A write outside any transaction, under a fence, gets a transaction of its own (so the fence is checked)."""
        if fencing.current() is not None and not self.db.conn.in_transaction and is_write(sql):
            with self.atomic():
                yield
        else:
            yield
