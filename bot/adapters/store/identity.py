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
        """The live link of an IdP subject (active, or waiting for the user to sign in again)."""
        row = self._sql.one(
            "select * from links where issuer = ? and subject = ? and status in (?, ?)",
            [issuer, subject, LinkStatus.ACTIVE.value, LinkStatus.RELINK.value],
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
            "next_refresh_at = null, relink_by = null where slack_user = ?",
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
        group_names: tuple[tuple[str, str], ...] = (),
    ) -> None:
        """Store what a successful refresh reported (groups with their display names) and when the next is due."""
        self._sql.execute(
            "update links set email = ?, name = ?, groups = ?, group_names = ?, refreshed_at = ?, "
            "token_expires_at = ?, refresh_failures = 0, next_refresh_at = ? where slack_user = ?",
            [
                email,
                name,
                json.dumps(list(groups)),
                json.dumps(dict(group_names)) if group_names else None,
                at,
                token_expires_at,
                next_refresh_at,
                slack_user,
            ],
        )

    def record_refresh_failure(self, slack_user: str, failures: int, next_refresh_at: int) -> None:
        """Count a failed refresh and when to try again."""
        self._sql.execute(
            "update links set refresh_failures = ?, next_refresh_at = ? where slack_user = ?",
            [failures, next_refresh_at, slack_user],
        )

    def mark_relink(self, slack_user: str, by: int, reason: str) -> bool:
        """Move an active link to `relink_needed` until `by` (compare-and-set on active); True when it moved."""
        return bool(
            self._sql.execute(
                "update links set status = ?, relink_by = ?, revoked_reason = ?, next_refresh_at = null, "
                "refresh_token = null where slack_user = ? and status = ?",
                [LinkStatus.RELINK.value, by, reason, slack_user, LinkStatus.ACTIVE.value],
            )
        )

    def relink_overdue(self, now: int) -> list[LinkRecord]:
        """Links still waiting for a new sign-in whose deadline passed at `now`."""
        rows = self._sql.query(
            "select * from links where status = ? and relink_by <= ? order by relink_by, slack_user",
            [LinkStatus.RELINK.value, now],
        )
        return [link_from_row(r) for r in rows]

    def count_unmonitored(self) -> int:
        """Active links the bot holds no refresh token for (never re-checked at the IdP)."""
        row = self._sql.one(
            "select count(*) as n from links where status = ? and refresh_token is null", [LinkStatus.ACTIVE.value]
        )
        return int(row["n"]) if row else 0


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

    def hold(self, attempt_id: str, sealed_login: str, confirm_hash: str, until: int) -> None:
        """Keep a verified login on its (used) attempt until the person confirms or declines it."""
        self._sql.execute(
            "update login_attempts set pending_login = ?, confirm_hash = ?, pending_until = ? where id = ?",
            [sealed_login, confirm_hash, until, attempt_id],
        )

    def by_confirm(self, confirm_hash: str) -> LoginAttempt | None:
        """The attempt whose held login the confirmation token (by hash) belongs to."""
        row = self._sql.one("select * from login_attempts where confirm_hash = ?", [confirm_hash])
        return attempt_from_row(row) if row else None

    def take(self, attempt_id: str, sealed_login: str) -> bool:
        """Release a held login, once (compare-and-set); False when another request took it first."""
        return bool(
            self._sql.execute(
                "update login_attempts set pending_login = null where id = ? and pending_login = ?",
                [attempt_id, sealed_login],
            )
        )

    def unconfirmed(self, now: int) -> list[LoginAttempt]:
        """Attempts whose held login nobody confirmed in time."""
        rows = self._sql.query(
            "select * from login_attempts where pending_login is not null and pending_until <= ?", [now]
        )
        return [attempt_from_row(row) for row in rows]

    def purge(self, before: int) -> int:
        """Delete attempts that expired before `before` (none still holding a login); return how many."""
        return self._sql.execute("delete from login_attempts where expires_at < ? and pending_login is null", [before])
