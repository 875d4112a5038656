"""The Slack outbox and the references of posted messages in SQL (the OutboxStore port)."""

from __future__ import annotations

import json
from collections.abc import Mapping

from bot.adapters.store.rows import outbox_from_row
from bot.adapters.store.sql import SqlConnection
from bot.core.model import OutboxMessage


class SqlOutbox:
    """The OutboxStore port."""

    def __init__(self, sql: SqlConnection) -> None:
        self._sql = sql

    def enqueue(self, *, key: str, kind: str, channel: str, payload: Mapping[str, object], now: int) -> bool:
        """Add a message unless one with the same idempotency key exists; True when added."""
        return bool(
            self._sql.execute(
                "insert into outbox(key, kind, channel, payload, created_at, next_attempt_at, attempts, last_error) "
                "values (?, ?, ?, ?, ?, ?, 0, '') on conflict(key) do nothing",
                [key, kind, channel, json.dumps(payload, ensure_ascii=False), now, now],
            )
        )

    def due(self, now: int, limit: int = 50) -> list[OutboxMessage]:
        """Unsent messages whose next attempt is due, oldest first."""
        rows = self._sql.query(
            "select * from outbox where sent_at is null and next_attempt_at <= ? order by id limit ?", [now, limit]
        )
        return [outbox_from_row(r) for r in rows]

    def get(self, key: str) -> OutboxMessage | None:
        """One message by idempotency key."""
        row = self._sql.one("select * from outbox where key = ?", [key])
        return outbox_from_row(row) if row else None

    def mark_sent(self, message_id: int, now: int, result_ts: str = "") -> None:
        """Record a delivered message."""
        self._sql.execute(
            "update outbox set sent_at = ?, result_ts = ?, last_error = '' where id = ?", [now, result_ts, message_id]
        )

    def mark_failed(self, message_id: int, error: str, next_attempt_at: int) -> None:
        """Record a failed delivery and when to try again."""
        self._sql.execute(
            "update outbox set attempts = attempts + 1, last_error = ?, next_attempt_at = ? where id = ?",
            [error[:500], next_attempt_at, message_id],
        )

    def pending_count(self) -> int:
        """Messages not delivered yet."""
        row = self._sql.one("select count(*) as n from outbox where sent_at is null")
        return int(row["n"]) if row else 0

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
