"""The audit log in SQL (the AuditStore port): rows in id order and the head kept apart from them."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence

from bot.adapters.store.rows import audit_from_row, audit_row
from bot.adapters.store.sql import SqlConnection
from bot.core.audit_chain import GENESIS
from bot.core.digest import AuditEventLike
from bot.core.model import AuditEvent, ChainHead


class SqlAudit:
    """The AuditStore port; it stores what the audit service chained and never computes a hash itself."""

    def __init__(self, sql: SqlConnection) -> None:
        self._sql = sql

    def head(self) -> ChainHead:
        """The newest event's id and hash as kept apart from the rows."""
        # inside a writer's transaction this locks the head row on PostgreSQL, so concurrent appends queue up
        lock = self._sql.dialect.row_lock
        row = self._sql.one(f"select last_id, last_hash from audit_head where id = 1{lock}")  # noqa: S608 - a constant
        if row is None:
            return ChainHead(0, GENESIS)
        return ChainHead(int(row["last_id"]), str(row["last_hash"]))

    def append(self, event: AuditEvent, expected: ChainHead) -> bool:
        """Add `event` and move the head to it, only while the head is still `expected`; True when it won."""
        return self.append_many([event], expected)

    def append_many(self, events: Sequence[AuditEvent], expected: ChainHead) -> bool:
        """Add `events` and move the head to the last, only while the head is still `expected`; True when it won.

        One head move and one bulk insert (pipelined on PostgreSQL) however many events: a batch of revocations
        pays for the chain once.
        """
        if not events:
            return True
        last = events[-1]
        with self._sql.atomic():
            if expected.last_id == 0:
                moved = self._sql.execute(
                    "insert into audit_head(id, last_id, last_hash) values (1, ?, ?) on conflict(id) do nothing",
                    [last.id, last.hash],
                )
            else:
                moved = self._sql.execute(
                    "update audit_head set last_id = ?, last_hash = ? where id = 1 and last_id = ? and last_hash = ?",
                    [last.id, last.hash, expected.last_id, expected.last_hash],
                )
            if not moved:
                return False
            rows = [audit_row(event) for event in events]
            columns, marks = ", ".join(rows[0]), ", ".join("?" for _ in rows[0])
            sql = f"insert into audit_events({columns}) values ({marks})"  # noqa: S608 - column names are constants
            if len(rows) == 1:
                self._sql.execute(sql, list(rows[0].values()))
            else:
                self._sql.execute_many(sql, [list(row.values()) for row in rows])
        return True

    def newest(self) -> AuditEvent | None:
        """The event with the highest id, if any."""
        row = self._sql.one("select * from audit_events order by id desc limit 1")
        return audit_from_row(row) if row else None

    def events(self, since: int | None = None, until: int | None = None, batch: int = 5000) -> Iterator[AuditEvent]:
        """Events in id order, optionally with ts in [since, until), streamed in batches."""
        last = 0
        while True:
            clauses, params = ["id > ?"], [last]
            if since is not None:
                clauses.append("ts >= ?")
                params.append(since)
            if until is not None:
                clauses.append("ts < ?")
                params.append(until)
            rows = self._sql.query(
                f"select * from audit_events where {' and '.join(clauses)} order by id limit {int(batch)}",  # noqa: S608
                params,
            )
            if not rows:
                return
            for row in rows:
                yield audit_from_row(row)
            last = rows[-1]["id"]

    def action_counts(self, since: int, until: int) -> dict[str, int]:
        """Events per action with ts in [since, until), counted by the database on the (action, ts) index."""
        table = self._sql.dialect.indexed_by("audit_events", "idx_audit_events_action_ts")
        cursor = self._sql.cursor(
            f"select action, count(*) from {table} where ts >= ? and ts < ? group by action",  # noqa: S608
            [since, until],
        )
        return {str(action): int(n) for action, n in cursor}

    def digest_rows(self, since: int, until: int, actions: Collection[str]) -> Iterator[AuditEventLike]:
        """Only events of the given actions in [since, until), only the columns a digest reads (a lazy cursor)."""
        wanted = sorted(actions)
        marks = ", ".join("?" for _ in wanted)
        return self._sql.cursor(
            "select ts, action, actor, target, outcome, reason, details from audit_events"  # noqa: S608 - placeholders
            f" where ts >= ? and ts < ? and action in ({marks})",
            [since, until, *wanted],
            by_name=True,
        )

    def count(self) -> int:
        """Number of events."""
        row = self._sql.one("select count(*) as n from audit_events")
        return int(row["n"]) if row else 0
