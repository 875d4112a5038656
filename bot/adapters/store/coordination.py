"""What processes share to coordinate, in SQL: leases (with fencing tokens), the jobs' set-once marks, the replay
cache (three ports)."""

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


class SqlReplayCache:
    """The ReplayCache port: one row per accepted signature until its request's own timestamp plus the window."""

    PURGE_EVERY = 200
    """Remembered keys between two deletions of the expired ones (the table holds minutes of Slack traffic)."""

    def __init__(self, sql: SqlConnection) -> None:
        self._sql = sql
        self._since_purge = 0

    def remember(self, key: str, expires_at: int, now: int) -> bool:
        """Store `key` until `expires_at`; False when it is already stored and not yet expired (a replay)."""
        fresh = self._sql.execute(
            "insert into replay_cache(key, expires_at) values (?, ?) on conflict(key) do update "
            "set expires_at = excluded.expires_at where replay_cache.expires_at <= ?",
            [key, expires_at, now],
        )
        self._since_purge += 1
        if self._since_purge >= self.PURGE_EVERY:
            self._since_purge = 0
            self._sql.execute("delete from replay_cache where expires_at <= ?", [now])
        return bool(fresh)
