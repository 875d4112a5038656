"""The Slack outbox and the references of posted messages in SQL (the OutboxStore port)."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping

from bot.adapters.store.rows import outbox_from_row
from bot.adapters.store.sql import SqlConnection
from bot.core.model import OutboxMessage, OutboxStatus, Priority

_CHUNK = 500  # bound parameters per `in (…)` query


def _marks(n: int) -> str:
    return ",".join("?" * n)


class SqlOutbox:
    """The OutboxStore port."""

    def __init__(self, sql: SqlConnection) -> None:
        self._sql = sql

    def enqueue(
        self,
        *,
        key: str,
        kind: str,
        channel: str,
        payload: Mapping[str, object],
        now: int,
        priority: Priority = Priority.NORMAL,
        order_key: str = "",
    ) -> bool:
        """Add a pending message unless one with the same idempotency key exists; True when added."""
        return bool(
            self._sql.execute(
                "insert into outbox(key, kind, channel, payload, created_at, next_attempt_at, attempts, last_error, "
                "status, priority, order_key) values (?, ?, ?, ?, ?, ?, 0, '', 'pending', ?, ?) "
                "on conflict(key) do nothing",
                [key, kind, channel, json.dumps(payload, ensure_ascii=False), now, now, int(priority), order_key],
            )
        )

    def due(self, now: int, limit: int = 50) -> list[OutboxMessage]:
        """Pending messages whose next attempt is due, most urgent first, then oldest first."""
        rows = self._sql.query(
            "select * from outbox where status = 'pending' and next_attempt_at <= ? order by priority, id limit ?",
            [now, limit],
        )
        return [outbox_from_row(r) for r in rows]

    def heads(self, order_keys: Collection[str]) -> dict[str, int]:
        """The id of the oldest pending message of each given order key (keys with none pending are left out)."""
        keys = sorted({k for k in order_keys if k})
        out: dict[str, int] = {}
        for i in range(0, len(keys), _CHUNK):
            chunk = keys[i : i + _CHUNK]
            rows = self._sql.query(
                "select order_key, min(id) as head from outbox where status = 'pending' "  # noqa: S608 - placeholders
                f"and order_key in ({_marks(len(chunk))}) group by order_key",
                chunk,
            )
            out.update({str(r["order_key"]): int(r["head"]) for r in rows})
        return out

    def get(self, key: str) -> OutboxMessage | None:
        """One message by idempotency key."""
        row = self._sql.one("select * from outbox where key = ?", [key])
        return outbox_from_row(row) if row else None

    def by_id(self, message_id: int) -> OutboxMessage | None:
        """One message by id."""
        row = self._sql.one("select * from outbox where id = ?", [message_id])
        return outbox_from_row(row) if row else None

    def listing(self, statuses: Collection[OutboxStatus], limit: int = 100) -> list[OutboxMessage]:
        """Messages in the given statuses, oldest first."""
        wanted = [s.value for s in statuses]
        if not wanted:
            return []
        rows = self._sql.query(
            f"select * from outbox where status in ({_marks(len(wanted))}) order by id limit ?",  # noqa: S608 - placeholders
            [*wanted, limit],
        )
        return [outbox_from_row(r) for r in rows]

    def mark_sent(self, message_id: int, now: int, result_ts: str = "") -> bool:
        """Record a delivered message (pending → sent); False when it was not pending any more."""
        return bool(
            self._sql.execute(
                "update outbox set status = 'sent', sent_at = ?, result_ts = ?, last_error = '' "
                "where id = ? and status = 'pending'",
                [now, result_ts, message_id],
            )
        )

    def retry_later(self, message_id: int, error: str, next_attempt_at: int, now: int) -> None:
        """Record a transient failure: one more attempt, the error, when to try again, since when it fails."""
        self._sql.execute(
            "update outbox set attempts = attempts + 1, last_error = ?, next_attempt_at = ?, "
            "first_failed_at = coalesce(first_failed_at, ?) where id = ? and status = 'pending'",
            [error[:500], next_attempt_at, now, message_id],
        )

    def move(
        self, message_id: int, expected: Collection[OutboxStatus], to: OutboxStatus, *, now: int, reason: str = ""
    ) -> bool:
        """Compare-and-set the status (park, drop, retry); a retry makes it due at `now` with a fresh count."""
        wanted = [s.value for s in expected]
        if not wanted:
            return False
        where = f"where id = ? and status in ({_marks(len(wanted))})"  # placeholders only
        if to is OutboxStatus.PENDING:
            sql = "update outbox set status = 'pending', attempts = 0, first_failed_at = null, next_attempt_at = ? "
            params: list[object] = [now, message_id, *wanted]
        else:
            sql = "update outbox set status = ?, last_error = case when ? = '' then last_error else ? end "
            params = [to.value, reason, reason[:500], message_id, *wanted]
        return bool(self._sql.execute(sql + where, params))

    def pending_count(self) -> int:
        """Messages not delivered yet (pending)."""
        row = self._sql.one("select count(*) as n from outbox where status = 'pending'")
        return int(row["n"]) if row else 0

    def counts(self) -> dict[str, int]:
        """Messages per status."""
        rows = self._sql.query("select status, count(*) as n from outbox group by status")
        return {str(r["status"]): int(r["n"]) for r in rows}

    def message_ref(self, ref: str) -> tuple[str, str] | None:
        """(channel, ts) of the message the bot posted under `ref`."""
        row = self._sql.one("select channel, ts from slack_messages where key = ?", [ref])
        return (str(row["channel"]), str(row["ts"])) if row else None

    def set_message_ref(self, ref: str, channel: str, ts: str) -> None:
        """Remember where the message for `ref` was posted."""
        self._sql.execute(
            "insert into slack_messages(key, channel, ts) values (?, ?, ?) "
            "on conflict(key) do update set channel = excluded.channel, ts = excluded.ts",
            [ref, channel, ts],
        )
