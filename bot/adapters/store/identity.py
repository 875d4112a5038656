"""Identity links and login attempts in SQL (the LinkStore and LoginAttemptStore ports)."""

from __future__ import annotations

import json

from bot.adapters.store.rows import attempt_from_row, attempt_row, link_from_row, link_row
from bot.adapters.store.sql import SqlConnection
from bot.core.model import LinkRecord, LinkStatus, LoginAttempt


class SqlLinks:
    """The LinkStore port."""

    def __init__(self, sql: SqlConnection) -> None:
        self._sql = sql

    def get(self, slack_user: str) -> LinkRecord | None:
        """The link of a Slack user (active or revoked)."""
        row = self._sql.one("select * from links where slack_user = ?", [slack_user])
        return link_from_row(row) if row else None

    def active_by_subject(self, issuer: str, subject: str) -> LinkRecord | None:
        """The active link of an IdP subject."""
        row = self._sql.one(
            "select * from links where issuer = ? and subject = ? and status = 'active'", [issuer, subject]
        )
        return link_from_row(row) if row else None

    def active(self) -> list[LinkRecord]:
        """Every active link, oldest first."""
        rows = self._sql.query("select * from links where status = 'active' order by linked_at, slack_user")
        return [link_from_row(r) for r in rows]

    def save(self, record: LinkRecord) -> None:
        """Insert or wholly replace a link."""
        row = link_row(record)
        columns = ", ".join(row)
        updates = ", ".join(f"{c} = excluded.{c}" for c in row if c != "slack_user")
        marks = ", ".join("?" for _ in row)
        self._sql.execute(
            f"insert into links({columns}) values ({marks}) on conflict(slack_user) do update set {updates}",  # noqa: S608
            list(row.values()),
        )

    def revoke(self, slack_user: str, at: int, reason: str) -> None:
        """Mark a link revoked and forget its refresh token."""
        self._sql.execute(
            "update links set status = ?, refresh_token = null, revoked_at = ?, revoked_reason = ?, "
            "next_refresh_at = null where slack_user = ?",
            [LinkStatus.REVOKED.value, at, reason, slack_user],
        )

    def swap_refresh_token(
        self, slack_user: str, old: str | None, new: str | None, token_expires_at: int | None
    ) -> bool:
        """Replace the sealed refresh token only while it is still `old` (compare-and-swap); True when it won."""
        same_token = self._sql.dialect.null_safe_equals("refresh_token")
        return bool(
            self._sql.execute(
                f"update links set refresh_token = ?, token_expires_at = ? where slack_user = ? and {same_token}",  # noqa: S608
                [new, token_expires_at, slack_user, old],
            )
        )

    def record_refresh(
        self,
        slack_user: str,
        *,
        email: str,
        name: str,
        groups: tuple[str, ...],
        at: int,
        token_expires_at: int | None,
        next_refresh_at: int,
    ) -> None:
        """Store what a successful refresh reported and when the next one is due."""
        self._sql.execute(
            "update links set email = ?, name = ?, groups = ?, refreshed_at = ?, token_expires_at = ?, "
            "refresh_failures = 0, next_refresh_at = ? where slack_user = ?",
            [email, name, json.dumps(list(groups)), at, token_expires_at, next_refresh_at, slack_user],
        )

    def record_refresh_failure(self, slack_user: str, failures: int, next_refresh_at: int) -> None:
        """Count a failed refresh and when to try again."""
        self._sql.execute(
            "update links set refresh_failures = ?, next_refresh_at = ? where slack_user = ?",
            [failures, next_refresh_at, slack_user],
        )


class SqlLoginAttempts:
    """The LoginAttemptStore port."""

    def __init__(self, sql: SqlConnection) -> None:
        self._sql = sql

    def insert(self, attempt: LoginAttempt) -> None:
        """Store a new attempt."""
        row = attempt_row(attempt)
        columns, marks = ", ".join(row), ", ".join("?" for _ in row)
        self._sql.execute(f"insert into login_attempts({columns}) values ({marks})", list(row.values()))  # noqa: S608

    def get(self, attempt_id: str) -> LoginAttempt | None:
        """An attempt by id."""
        row = self._sql.one("select * from login_attempts where id = ?", [attempt_id])
        return attempt_from_row(row) if row else None

    def by_state(self, state: str) -> LoginAttempt | None:
        """An attempt by its OAuth state."""
        row = self._sql.one("select * from login_attempts where state = ?", [state])
        return attempt_from_row(row) if row else None

    def start(self, attempt_id: str, cookie_hash: str, now: int) -> bool:
        """Bind an unused, unexpired attempt to a browser cookie, once; True when this call bound it."""
        return bool(
            self._sql.execute(
                "update login_attempts set cookie_hash = ?, started_at = ? "
                "where id = ? and started_at is null and used_at is null and expires_at > ?",
                [cookie_hash, now, attempt_id, now],
            )
        )

    def use(self, attempt_id: str, now: int) -> bool:
        """Mark an attempt used, once (compare-and-set); False when it already was."""
        return bool(
            self._sql.execute(
                "update login_attempts set used_at = ? where id = ? and used_at is null", [now, attempt_id]
            )
        )

    def purge(self, before: int) -> int:
        """Delete attempts that expired before `before`; return how many."""
        return self._sql.execute("delete from login_attempts where expires_at < ?", [before])
