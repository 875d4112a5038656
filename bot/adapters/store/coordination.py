"""Leases between processes (with fencing tokens) and the jobs' set-once marks in SQL (LeaseStore, JobMarks)."""

from __future__ import annotations

from bot.adapters.store.sql import SqlConnection


class SqlLeases:
    """The LeaseStore port: one row per lease, taken by compare-and-set; its token grows when it changes hands."""

    def __init__(self, sql: SqlConnection) -> None:
        self._sql = sql

    def take(self, name: str, owner: str, now: int, ttl: int) -> int | None:
        """Take or renew `name` for `owner` when free, expired or already `owner`'s; its fencing token, else None.

        The row is never deleted (release only ends its time), so the token keeps growing across owners.
        """
        row = self._sql.one(
            "insert into job_leases(name, owner, expires_at, renewed_at, token) values (?, ?, ?, ?, 1) "
            "on conflict(name) do update set owner = excluded.owner, expires_at = excluded.expires_at, "
            "renewed_at = excluded.renewed_at, token = case when job_leases.owner = excluded.owner "
            "then job_leases.token else job_leases.token + 1 end "
            "where job_leases.owner = excluded.owner or job_leases.expires_at <= ? returning token",
            [name, owner, now + ttl, now, now],
        )
        return int(row["token"]) if row is not None else None

    def holder(self, name: str, now: int) -> str | None:
        """Who holds an unexpired lease, if anyone."""
        row = self._sql.one("select owner, expires_at from job_leases where name = ?", [name])
        return str(row["owner"]) if row is not None and row["expires_at"] > now else None

    def release(self, name: str, owner: str) -> None:
        """Give up a lease held by `owner` (it expires now; the row and its token stay)."""
        self._sql.execute("update job_leases set expires_at = 0 where name = ? and owner = ?", [name, owner])


class SqlJobMarks:
    """The JobMarks port."""

    def __init__(self, sql: SqlConnection) -> None:
        self._sql = sql

    def get(self, key: str) -> str | None:
        """The value under `key`, if set."""
        row = self._sql.one("select value from job_state where key = ?", [key])
        return str(row["value"]) if row else None

    def claim(self, key: str, value: str, now: int) -> bool:
        """Set `key` only if it is not set yet; True when this call set it."""
        return bool(
            self._sql.execute(
                "insert into job_state(key, value, updated_at) values (?, ?, ?) on conflict(key) do nothing",
                [key, value, now],
            )
        )
