"""The PostgreSQL connection (psycopg 3 with psycopg_pool): transactions per thread, the fence check, migrations.

Statements outside a transaction borrow a pooled connection in autocommit mode for that one statement. A
transaction holds one connection for the thread that opened it (the bot's event-loop thread, or the digest's
worker thread); nested `atomic()` blocks are savepoints on it. Repositories never await inside a transaction,
so one thread never has two open at once.

Sessions are configured so that a stalled replica cannot hold the others up: `lock_timeout` makes a statement
waiting for a row lock (the audit head, a lease) fail instead of waiting forever, and
`idle_in_transaction_session_timeout` makes the server end the session of a process that stopped in the middle of a
transaction (a paused VM, SIGSTOP), releasing its locks; its next write then fails and its lease is taken over.

The URL's password never leaves this module: `repr`, `str` and every error show the URL with `***` instead.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg.rows import dict_row, tuple_row
from psycopg_pool import ConnectionPool, PoolTimeout

from bot.adapters.store.migrations import MigratedDatabase, Migrator
from bot.adapters.store.sql import POSTGRES, Dialect, Params, Row, check_fence, is_write
from bot.core import fencing
from bot.core.errors import TransientUpstreamError

SESSION_SETTINGS = {
    "lock_timeout": "10s",
    "idle_in_transaction_session_timeout": "30s",
    "application_name": "accessbot",
}
CONNECT_TIMEOUT = 10.0


def masked_url(url: str) -> str:
    """The URL with its password replaced by `***` (safe to log and print)."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
    except ValueError:
        return "(an unparsable URL)"
    netloc = parts.netloc.rsplit("@", 1)
    userinfo = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{userinfo}:***@{netloc[-1]}"))


def _unavailable(url: str, err: BaseException) -> TransientUpstreamError:
    reason = str(err).replace(url, masked_url(url)).strip().splitlines()[0] if str(err) else type(err).__name__
    return TransientUpstreamError("database", f"{masked_url(url)} is not reachable ({reason})")


class PostgresDatabase(MigratedDatabase):
    """A pool of connections to one PostgreSQL database: a SqlConnection and the Database port."""

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 8, timeout: float = CONNECT_TIMEOUT) -> None:
        self._url = url
        self._local = threading.local()
        try:  # one plain connection first: its failure says why (refused, authentication), where a pool just waits
            psycopg.connect(url, connect_timeout=max(1, int(timeout)), autocommit=True).close()
        except psycopg.Error as err:
            raise _unavailable(url, err) from None
        self._pool: ConnectionPool[psycopg.Connection[Row]] = ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout,
            kwargs={"autocommit": True, "row_factory": dict_row, "connect_timeout": max(1, int(timeout))},
            configure=self._configure,
            open=False,
            name="accessbot",
        )
        try:
            self._pool.open(wait=True, timeout=timeout)
        except (PoolTimeout, psycopg.Error) as err:
            self._pool.close()
            raise _unavailable(url, err) from None
        self._migrator = Migrator(self)

    def __repr__(self) -> str:
        return f"PostgresDatabase({masked_url(self._url)!r})"

    @staticmethod
    def _configure(conn: psycopg.Connection[Any]) -> None:
        for name, value in SESSION_SETTINGS.items():
            conn.execute("select set_config(%s, %s, false)", [name, value])

    @property
    def dialect(self) -> Dialect:
        """PostgreSQL's spelling of what differs between engines."""
        return POSTGRES

    # --- the Database and Transactions ports ----------------------------------------------------------

    def close(self) -> None:
        """Close every pooled connection."""
        self._pool.close()

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """One transaction (nestable as savepoints) on this thread's connection; rolls back on an exception.

        Under a job's fence the outermost transaction first checks the lease and holds a share lock on its row
        until commit, so the lease cannot change hands while this transaction writes.
        """
        conn: psycopg.Connection[Row] | None = getattr(self._local, "conn", None)
        if conn is not None:
            with conn.transaction():
                yield
            return
        with self._connection() as conn:
            self._local.conn = conn
            try:
                with conn.transaction():
                    check_fence(self)
                    yield
            finally:
                self._local.conn = None

    # --- what repositories call -----------------------------------------------------------------------

    def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; return the number of rows it changed."""
        with self._statement(sql) as conn:
            return conn.execute(self.dialect.prepare(sql), list(params)).rowcount

    def query(self, sql: str, params: Params = ()) -> list[Row]:
        """All rows of a query (or of a statement's `returning`), as dicts."""
        with self._statement(sql) as conn:
            return conn.execute(self.dialect.prepare(sql), list(params)).fetchall()

    def one(self, sql: str, params: Params = ()) -> Row | None:
        """The first row of a query, or None."""
        with self._statement(sql) as conn:
            return conn.execute(self.dialect.prepare(sql), list(params)).fetchone()

    def execute_many(self, sql: str, rows: Sequence[Params]) -> None:
        """Run one statement once per parameter row (bulk inserts, pipelined by psycopg)."""
        with self._statement(sql) as conn, conn.cursor() as cur:
            cur.executemany(self.dialect.prepare(sql), [list(row) for row in rows])

    def cursor(self, sql: str, params: Params = (), *, by_name: bool = False) -> Iterator[Any]:
        """A lazy iterator over a query's rows, fetched in batches by a server-side cursor."""
        prepared, values = self.dialect.prepare(sql), list(params)
        factory = dict_row if by_name else tuple_row

        def rows() -> Iterator[Any]:
            with self.atomic():
                conn: psycopg.Connection[Row] = self._local.conn
                with conn.cursor(name=f"accessbot_{secrets.token_hex(4)}", row_factory=factory) as cur:
                    cur.itersize = 2000
                    cur.execute(prepared, values)
                    yield from cur

        return rows()

    @contextmanager
    def _statement(self, sql: str) -> Iterator[psycopg.Connection[Row]]:
        """The connection one statement runs on: this thread's transaction, else a pooled one (autocommit).

        A write under a job's fence outside any transaction gets a transaction of its own, so the fence is checked.
        """
        conn: psycopg.Connection[Row] | None = getattr(self._local, "conn", None)
        if conn is not None:
            yield conn
            return
        if fencing.current() is not None and is_write(sql):
            with self.atomic():
                yield self._local.conn
            return
        with self._connection() as pooled:
            yield pooled

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Row]]:
        try:
            with self._pool.connection() as conn:
                yield conn
        except PoolTimeout as err:
            raise _unavailable(self._url, err) from None
        except psycopg.OperationalError as err:
            if err.sqlstate is None:  # the connection itself failed (not a statement's error)
                raise _unavailable(self._url, err) from None
            raise
