"""SQLite storage through sqlite-utils: schema migrations and one repository method per question.

The connection belongs to the event-loop thread (sqlite3's thread affinity); every call is short and
synchronous, and `atomic()` groups a state change with its audit event and outbox messages.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlite_utils import Database, Migrations

from bot.core import audit_chain
from bot.core.model import Approval, Grant, GrantState, Identity, LinkStatus, OutboxMessage, Target

Row = dict[str, Any]

migrations = Migrations("accessbot")


@migrations()
def m001_initial(db: Database) -> None:
    """Links, login attempts, grants and their history, audit events, outbox, leases."""
    db.table("links").create(
        {
            "slack_user": str,
            "team_id": str,
            "issuer": str,
            "subject": str,
            "email": str,
            "name": str,
            "groups": str,
            "refresh_token": str,
            "token_expires_at": int,
            "linked_at": int,
            "refreshed_at": int,
            "status": str,
            "revoked_at": int,
            "revoked_reason": str,
            "refresh_failures": int,
            "next_refresh_at": int,
        },
        pk="slack_user",
        not_null={"team_id", "issuer", "subject", "groups", "linked_at", "refreshed_at", "status"},
        defaults={"status": "active", "refresh_failures": 0, "email": "", "name": "", "groups": "[]"},
    )
    db.execute("CREATE UNIQUE INDEX uq_links_subject ON links(issuer, subject) WHERE status = 'active'")
    db.table("login_attempts").create(
        {
            "id": str,
            "team_id": str,
            "slack_user": str,
            "state": str,
            "nonce": str,
            "code_verifier": str,
            "cookie_hash": str,
            "created_at": int,
            "expires_at": int,
            "started_at": int,
            "used_at": int,
        },
        pk="id",
        not_null={"team_id", "slack_user", "state", "nonce", "code_verifier", "created_at", "expires_at"},
    )
    db.table("login_attempts").create_index(["state"], unique=True)
    db.table("grants").create(
        {
            "seq": int,
            "id": str,
            "slack_user": str,
            "subject": str,
            "cluster_id": str,
            "project_id": str,
            "role_id": str,
            "duration_s": int,
            "rule": str,
            "state": str,
            "requested_at": int,
            "reason": str,
            "ticket": str,
            "break_glass": int,
            "self_service": int,
            "approvals_required": int,
            "activated_at": int,
            "expires_at": int,
            "ended_at": int,
            "binding_id": str,
            "binding_name": str,
            "user_principal_id": str,
            "extensions": int,
            "failure": str,
            "via_groups": str,
            "request_expires_at": int,
            "drifted": int,
            "attempts": int,
            "next_attempt_at": int,
            "warned_at": int,
            "overdue_alerted": int,
            "updated_at": int,
        },
        pk="seq",
        not_null={
            "id",
            "slack_user",
            "subject",
            "cluster_id",
            "role_id",
            "duration_s",
            "rule",
            "state",
            "requested_at",
        },
        defaults={
            "reason": "",
            "ticket": "",
            "break_glass": 0,
            "self_service": 0,
            "approvals_required": 0,
            "extensions": 0,
            "failure": "",
            "via_groups": "[]",
            "drifted": 0,
            "attempts": 0,
            "next_attempt_at": 0,
            "overdue_alerted": 0,
        },
    )
    db.table("grants").create_index(["id"], unique=True)
    db.table("grants").create_index(["state", "expires_at"])
    db.table("grants").create_index(["slack_user", "state"])
    db.table("grant_approvals").create(
        {"grant_id": str, "approver": str, "decision": str, "at": int, "comment": str},
        pk=("grant_id", "approver"),
        not_null={"decision", "at"},
        defaults={"comment": ""},
    )
    db.table("grant_history").create(
        {"id": int, "grant_id": str, "from_state": str, "to_state": str, "at": int, "actor": str, "reason": str},
        pk="id",
        not_null={"grant_id", "to_state", "at", "actor"},
        defaults={"reason": ""},
    )
    db.table("grant_history").create_index(["grant_id"])
    db.table("audit_events").create(
        {
            "id": int,
            "ts": int,
            "actor": str,
            "action": str,
            "target": str,
            "outcome": str,
            "reason": str,
            "request_id": str,
            "details": str,
            "prev_hash": str,
            "hash": str,
        },
        pk="id",
        not_null={"ts", "actor", "action", "target", "outcome", "reason", "request_id", "details", "prev_hash", "hash"},
    )
    db.table("audit_events").create_index(["ts"])
    db.table("audit_head").create({"id": int, "last_id": int, "last_hash": str}, pk="id")
    db.table("outbox").create(
        {
            "id": int,
            "key": str,
            "kind": str,
            "channel": str,
            "payload": str,
            "attempts": int,
            "next_attempt_at": int,
            "created_at": int,
            "sent_at": int,
            "last_error": str,
            "result_ts": str,
        },
        pk="id",
        not_null={"key", "kind", "channel", "payload", "created_at"},
        defaults={"attempts": 0, "next_attempt_at": 0, "last_error": ""},
    )
    db.table("outbox").create_index(["key"], unique=True)
    db.table("outbox").create_index(["sent_at", "next_attempt_at"])
    db.table("slack_messages").create({"key": str, "channel": str, "ts": str}, pk="key", not_null={"channel", "ts"})
    db.table("job_leases").create(
        {"name": str, "owner": str, "expires_at": int, "renewed_at": int}, pk="name", not_null={"owner", "expires_at"}
    )
    db.table("job_state").create({"key": str, "value": str, "updated_at": int}, pk="key")
    db.table("counters").create({"name": str, "value": int}, pk="name", not_null={"value"})


@migrations()
def m002_audit_action_index(db: Database) -> None:
    """Per-action counts over a period scan this covering index instead of every row (the weekly digest)."""
    db.execute("create index if not exists idx_audit_events_action_ts on audit_events(action, ts)")


def _json_list(value: str | None) -> tuple[str, ...]:
    return tuple(json.loads(value or "[]"))


class Store:
    """The bot's SQLite database."""

    def __init__(self, path: str | Path, *, busy_timeout: float = 10.0) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=busy_timeout)
        self.db = Database(conn)
        self.db.execute("PRAGMA foreign_keys=ON")
        if self.path != ":memory:":
            self.db.enable_wal()
        self.db.execute("PRAGMA synchronous=NORMAL")

    def close(self) -> None:
        """Close the connection."""
        self.db.conn.close()

    # --- schema ---------------------------------------------------------------------------------------

    def migrate(self) -> list[str]:
        """Apply pending migrations; return the names applied now."""
        before = set(self.applied_migrations())
        migrations.apply(self.db)
        return [name for name in self.applied_migrations() if name not in before]

    def applied_migrations(self) -> list[str]:
        """Names of the migrations already applied."""
        if "_sqlite_migrations" not in self.db.table_names():
            return []
        return [
            r["name"] for r in self.db.query("select name from _sqlite_migrations where migration_set = 'accessbot'")
        ]

    def pending_migrations(self) -> list[str]:
        """Names of migrations not applied yet (empty when the schema is current)."""
        return [m.name for m in migrations.pending(self.db)]

    def ping(self) -> bool:
        """True when the database answers a query."""
        return bool(next(iter(self.db.query("select 1 as one")))["one"] == 1)

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """One transaction (nestable as savepoints); rolls back everything on an exception."""
        with self.db.atomic():
            yield

    # --- counters -------------------------------------------------------------------------------------

    def next_value(self, name: str) -> int:
        """Increment and return a named counter (e.g. grant numbers)."""
        rows = list(
            self.db.query(
                "insert into counters(name, value) values (?, 1) "
                "on conflict(name) do update set value = value + 1 returning value",
                [name],
            )
        )
        return int(rows[0]["value"])

    # --- audit ----------------------------------------------------------------------------------------

    def append_audit(
        self,
        *,
        ts: int,
        actor: str,
        action: str,
        target: str,
        outcome: str,
        reason: str,
        request_id: str,
        details: Mapping[str, object],
    ) -> Row:
        """Append one hash-chained audit row (inside the caller's transaction if there is one)."""
        with self.db.atomic():
            head = self._audit_head()
            row: Row = {
                "id": head[0] + 1,
                "ts": ts,
                "actor": actor,
                "action": action,
                "target": target,
                "outcome": outcome,
                "reason": reason,
                "request_id": request_id,
                "details": audit_chain.canonical_json(audit_chain.scrub(details)),
                "prev_hash": head[1],
            }
            row["hash"] = audit_chain.link_hash(head[1], row)
            self.db.table("audit_events").insert(row)
            self.db.execute(
                "insert into audit_head(id, last_id, last_hash) values (1, ?, ?) "
                "on conflict(id) do update set last_id = excluded.last_id, last_hash = excluded.last_hash",
                [row["id"], row["hash"]],
            )
        return row

    def _audit_head(self) -> tuple[int, str]:
        rows = list(self.db.query("select last_id, last_hash from audit_head where id = 1"))
        if not rows:
            return 0, audit_chain.GENESIS
        return int(rows[0]["last_id"]), str(rows[0]["last_hash"])

    def audit_head(self) -> tuple[int, str]:
        """(id, hash) of the newest audit row, as recorded apart from the rows."""
        return self._audit_head()

    def audit_rows(self, since: int | None = None, until: int | None = None, batch: int = 5000) -> Iterator[Row]:
        """Audit rows in id order, optionally within [since, until) by ts, streamed in batches."""
        last = 0
        while True:
            clauses, params = ["id > ?"], [last]
            if since is not None:
                clauses.append("ts >= ?")
                params.append(since)
            if until is not None:
                clauses.append("ts < ?")
                params.append(until)
            rows = list(
                self.db.query(
                    f"select * from audit_events where {' and '.join(clauses)} order by id limit {int(batch)}",  # noqa: S608 - fixed clauses
                    params,
                )
            )
            if not rows:
                return
            yield from rows
            last = rows[-1]["id"]

    def audit_action_counts(self, since: int, until: int) -> dict[str, int]:
        """Rows per action with ts in [since, until), counted by SQLite on the (action, ts) index."""
        sql = (
            "select action, count(*) from audit_events indexed by idx_audit_events_action_ts "
            "where ts >= ? and ts < ? group by action"
        )
        return {str(action): int(n) for action, n in self.db.conn.execute(sql, (since, until))}

    def audit_detail_rows(self, since: int, until: int, actions: Iterable[str]) -> Iterator[sqlite3.Row]:
        """Only rows of the given actions in [since, until), only the columns a digest reads (a lazy cursor)."""
        wanted = sorted(actions)
        cursor = self.db.conn.cursor()
        cursor.row_factory = sqlite3.Row
        marks = ", ".join("?" for _ in wanted)
        cursor.execute(
            "select ts, action, actor, target, outcome, reason, details from audit_events"  # noqa: S608 - placeholders
            f" where ts >= ? and ts < ? and action in ({marks})",
            (since, until, *wanted),
        )
        return cursor

    def open_reader(self) -> Store:
        """A second connection to the same file, for long reads in another thread (close it there)."""
        return Store(self.path)

    def audit_count(self) -> int:
        """Number of audit rows."""
        return int(self.db.table("audit_events").count)

    # --- outbox ---------------------------------------------------------------------------------------

    def enqueue(self, *, key: str, kind: str, channel: str, payload: Mapping[str, object], now: int) -> bool:
        """Add a message to the outbox unless one with the same idempotency key exists; True when added."""
        cursor = self.db.execute(
            "insert into outbox(key, kind, channel, payload, created_at, next_attempt_at, attempts, last_error) "
            "values (?, ?, ?, ?, ?, ?, 0, '') on conflict(key) do nothing",
            [key, kind, channel, json.dumps(payload, ensure_ascii=False), now, now],
        )
        return bool(cursor.rowcount)

    def due_outbox(self, now: int, limit: int = 50) -> list[OutboxMessage]:
        """Unsent messages whose next attempt is due, oldest first."""
        rows = self.db.query(
            "select * from outbox where sent_at is null and next_attempt_at <= ? order by id limit ?", [now, limit]
        )
        return [self._outbox(r) for r in rows]

    def outbox_message(self, key: str) -> OutboxMessage | None:
        """One outbox message by idempotency key."""
        rows = list(self.db.query("select * from outbox where key = ?", [key]))
        return self._outbox(rows[0]) if rows else None

    def mark_outbox_sent(self, message_id: int, now: int, result_ts: str = "") -> None:
        """Record a delivered message."""
        self.db.execute(
            "update outbox set sent_at = ?, result_ts = ?, last_error = '' where id = ?", [now, result_ts, message_id]
        )

    def mark_outbox_failed(self, message_id: int, error: str, next_attempt_at: int) -> None:
        """Record a failed delivery and when to try again."""
        self.db.execute(
            "update outbox set attempts = attempts + 1, last_error = ?, next_attempt_at = ? where id = ?",
            [error[:500], next_attempt_at, message_id],
        )

    def outbox_pending_count(self) -> int:
        """Messages not delivered yet."""
        return int(next(iter(self.db.query("select count(*) as n from outbox where sent_at is null")))["n"])

    @staticmethod
    def _outbox(row: Row) -> OutboxMessage:
        return OutboxMessage(
            id=row["id"],
            key=row["key"],
            kind=row["kind"],
            channel=row["channel"],
            payload=json.loads(row["payload"]),
            attempts=row["attempts"] or 0,
            next_attempt_at=row["next_attempt_at"] or 0,
            created_at=row["created_at"],
            sent_at=row["sent_at"],
            last_error=row["last_error"] or "",
        )

    # --- Slack message references (update in place) ----------------------------------------------------

    def message_ref(self, key: str) -> tuple[str, str] | None:
        """(channel, ts) of a message the bot posted under `key`."""
        rows = list(self.db.query("select channel, ts from slack_messages where key = ?", [key]))
        return (rows[0]["channel"], rows[0]["ts"]) if rows else None

    def set_message_ref(self, key: str, channel: str, ts: str) -> None:
        """Remember where the message for `key` was posted."""
        self.db.execute(
            "insert into slack_messages(key, channel, ts) values (?, ?, ?) "
            "on conflict(key) do update set channel = excluded.channel, ts = excluded.ts",
            [key, channel, ts],
        )

    # --- job leases and job state --------------------------------------------------------------------

    def try_lease(self, name: str, owner: str, now: int, ttl: int) -> bool:
        """Take or renew the lease `name` for `owner` (compare-and-set); True when `owner` holds it now."""
        self.db.execute(
            "insert into job_leases(name, owner, expires_at, renewed_at) values (?, ?, ?, ?) "
            "on conflict(name) do update set owner = excluded.owner, expires_at = excluded.expires_at, "
            "renewed_at = excluded.renewed_at where job_leases.owner = excluded.owner or job_leases.expires_at <= ?",
            [name, owner, now + ttl, now, now],
        )
        rows = list(self.db.query("select owner from job_leases where name = ?", [name]))
        return bool(rows) and rows[0]["owner"] == owner

    def lease_holder(self, name: str, now: int) -> str | None:
        """Who holds an unexpired lease, if anyone."""
        rows = list(self.db.query("select owner, expires_at from job_leases where name = ?", [name]))
        if rows and rows[0]["expires_at"] > now:
            return str(rows[0]["owner"])
        return None

    def release_lease(self, name: str, owner: str) -> None:
        """Give up a lease held by `owner`."""
        self.db.execute("delete from job_leases where name = ? and owner = ?", [name, owner])

    def get_state(self, key: str) -> str | None:
        """A small named value kept by jobs (e.g. the last digest period)."""
        rows = list(self.db.query("select value from job_state where key = ?", [key]))
        return str(rows[0]["value"]) if rows else None

    def set_state(self, key: str, value: str, now: int) -> None:
        """Set a named job value."""
        self.db.execute(
            "insert into job_state(key, value, updated_at) values (?, ?, ?) "
            "on conflict(key) do update set value = excluded.value, updated_at = excluded.updated_at",
            [key, value, now],
        )

    def claim_state(self, key: str, value: str, now: int) -> bool:
        """Set a named value only if it is not set yet; True when this call set it."""
        cursor = self.db.execute(
            "insert into job_state(key, value, updated_at) values (?, ?, ?) on conflict(key) do nothing",
            [key, value, now],
        )
        return bool(cursor.rowcount)

    # --- login attempts ------------------------------------------------------------------------------

    def insert_attempt(self, row: Row) -> None:
        """Store a new login attempt (state, nonce, sealed PKCE verifier, expiry)."""
        self.db.table("login_attempts").insert(row)

    def attempt(self, attempt_id: str) -> Row | None:
        """A login attempt by id."""
        rows = list(self.db.query("select * from login_attempts where id = ?", [attempt_id]))
        return rows[0] if rows else None

    def attempt_by_state(self, state: str) -> Row | None:
        """A login attempt by its OAuth state."""
        rows = list(self.db.query("select * from login_attempts where state = ?", [state]))
        return rows[0] if rows else None

    def start_attempt(self, attempt_id: str, cookie_hash: str, now: int) -> bool:
        """Bind an attempt to a browser cookie the first time its start link is opened."""
        cursor = self.db.execute(
            "update login_attempts set cookie_hash = ?, started_at = ? "
            "where id = ? and started_at is null and used_at is null and expires_at > ?",
            [cookie_hash, now, attempt_id, now],
        )
        return bool(cursor.rowcount)

    def use_attempt(self, attempt_id: str, now: int) -> bool:
        """Mark an attempt used exactly once (compare-and-set); False when it already was."""
        cursor = self.db.execute(
            "update login_attempts set used_at = ? where id = ? and used_at is null", [now, attempt_id]
        )
        return bool(cursor.rowcount)

    def purge_attempts(self, before: int) -> int:
        """Delete attempts that expired before `before`."""
        return int(self.db.execute("delete from login_attempts where expires_at < ?", [before]).rowcount)

    # --- identity links ------------------------------------------------------------------------------

    def link_row(self, slack_user: str) -> Row | None:
        """The raw link row of a Slack user (including the sealed refresh token)."""
        rows = list(self.db.query("select * from links where slack_user = ?", [slack_user]))
        return rows[0] if rows else None

    def link(self, slack_user: str) -> Identity | None:
        """The identity linked to a Slack user (active or revoked), or None."""
        row = self.link_row(slack_user)
        return self.identity(row) if row else None

    def link_by_subject(self, issuer: str, subject: str) -> Identity | None:
        """The active link of an IdP subject, or None."""
        rows = list(
            self.db.query(
                "select * from links where issuer = ? and subject = ? and status = 'active'", [issuer, subject]
            )
        )
        return self.identity(rows[0]) if rows else None

    def save_link(self, row: Row) -> None:
        """Insert or fully replace a link row."""
        self.db.table("links").upsert(row, pk="slack_user")

    def update_link(self, slack_user: str, fields: Mapping[str, object]) -> None:
        """Change some columns of a link."""
        self.db.table("links").update(slack_user, dict(fields))

    def swap_refresh_token(
        self, slack_user: str, old: str | None, new: str | None, fields: Mapping[str, object]
    ) -> bool:
        """Replace the sealed refresh token only if it is still `old` (compare-and-swap); True on success."""
        assignments = ", ".join(f"{name} = ?" for name in fields)
        sql = "update links set refresh_token = ?" + (", " + assignments if assignments else "")  # noqa: S608
        sql += " where slack_user = ? and refresh_token is ?"
        cursor = self.db.execute(sql, [new, *fields.values(), slack_user, old])
        return bool(cursor.rowcount)

    def active_links(self) -> list[Identity]:
        """Every active link."""
        return [
            self.identity(r) for r in self.db.query("select * from links where status = 'active' order by linked_at")
        ]

    def active_link_rows(self) -> list[Row]:
        """Every active link row (with sealed tokens), for the refresh job."""
        return list(self.db.query("select * from links where status = 'active' order by slack_user"))

    @staticmethod
    def identity(row: Row) -> Identity:
        """Convert a link row to the core value."""
        return Identity(
            slack_user=row["slack_user"],
            team_id=row["team_id"],
            issuer=row["issuer"],
            subject=row["subject"],
            email=row["email"] or "",
            name=row["name"] or "",
            groups=_json_list(row["groups"]),
            linked_at=row["linked_at"],
            refreshed_at=row["refreshed_at"],
            status=LinkStatus(row["status"]),
            token_expires_at=row["token_expires_at"],
        )

    # --- grants --------------------------------------------------------------------------------------

    def new_grant_id(self) -> str:
        """Allocate the next grant id (`g-1`, `g-2`, …)."""
        return f"g-{self.next_value('grant')}"

    def insert_grant(self, grant: Grant, now: int) -> None:
        """Store a new grant."""
        row = self._grant_row(grant)
        row["updated_at"] = now
        self.db.table("grants").insert(row)

    def grant(self, grant_id: str) -> Grant | None:
        """A grant by id (with its approvals)."""
        rows = list(self.db.query("select * from grants where id = ?", [grant_id]))
        return self._grant(rows[0]) if rows else None

    def transition_grant(
        self, grant_id: str, expected: Sequence[GrantState], fields: Mapping[str, object], now: int
    ) -> bool:
        """Update a grant only if it is in one of `expected` states (compare-and-set); True on success."""
        values = dict(fields)
        values["updated_at"] = now
        for key, value in list(values.items()):
            if isinstance(value, GrantState):
                values[key] = value.value
            elif isinstance(value, bool):
                values[key] = int(value)
            elif isinstance(value, tuple | list):
                values[key] = json.dumps(list(value))
        assignments = ", ".join(f"{name} = ?" for name in values)
        marks = ", ".join("?" for _ in expected)
        cursor = self.db.execute(
            f"update grants set {assignments} where id = ? and state in ({marks})",  # noqa: S608 - column names are ours
            [*values.values(), grant_id, *[s.value for s in expected]],
        )
        return bool(cursor.rowcount)

    def grants(
        self,
        *,
        slack_user: str | None = None,
        states: Sequence[GrantState] = (),
        target_key: str | None = None,
        limit: int = 1000,
    ) -> list[Grant]:
        """Grants filtered by holder, state and target, newest first."""
        clauses: list[str] = []
        params: list[object] = []
        if slack_user is not None:
            clauses.append("slack_user = ?")
            params.append(slack_user)
        if states:
            clauses.append(f"state in ({', '.join('?' for _ in states)})")
            params.extend(s.value for s in states)
        if target_key is not None:
            clauses.append("coalesce(project_id, cluster_id) = ?")
            params.append(target_key)
        where = f"where {' and '.join(clauses)}" if clauses else ""
        rows = self.db.query(f"select * from grants {where} order by seq desc limit {int(limit)}", params)  # noqa: S608
        return [self._grant(r) for r in rows]

    def due_grants(self, now: int, limit: int = 1000) -> list[Grant]:
        """Active grants whose expiry has passed."""
        rows = self.db.query(
            "select * from grants where state = 'active' and expires_at <= ? order by expires_at limit ?", [now, limit]
        )
        return [self._grant(r) for r in rows]

    def claim_due_grants(self, now: int, limit: int = 10000) -> list[Grant]:
        """Atomically move due active grants to `revoking` and return them."""
        rows = list(
            self.db.query(
                "update grants set state = 'revoking', updated_at = ? where seq in ("
                "select seq from grants where state = 'active' and expires_at <= ? order by expires_at limit ?"
                ") returning *",
                [now, now, limit],
            )
        )
        return [self._grant(r) for r in rows]

    def add_approval(self, grant_id: str, approval: Approval) -> bool:
        """Record one approver's decision once; False when that approver already decided."""
        cursor = self.db.execute(
            "insert into grant_approvals(grant_id, approver, decision, at, comment) values (?, ?, ?, ?, ?) "
            "on conflict(grant_id, approver) do nothing",
            [grant_id, approval.approver, approval.decision, approval.at, approval.comment],
        )
        return bool(cursor.rowcount)

    def approvals(self, grant_id: str) -> tuple[Approval, ...]:
        """Decisions recorded on a grant, in order."""
        rows = self.db.query("select * from grant_approvals where grant_id = ? order by at, approver", [grant_id])
        return tuple(Approval(r["approver"], r["decision"], r["at"], r["comment"] or "") for r in rows)

    def add_history(  # noqa: PLR0917 - mirrors the history columns
        self, grant_id: str, from_state: str | None, to_state: str, at: int, actor: str, reason: str = ""
    ) -> None:
        """Record one state change of a grant."""
        self.db.table("grant_history").insert(
            {
                "grant_id": grant_id,
                "from_state": from_state,
                "to_state": to_state,
                "at": at,
                "actor": actor,
                "reason": reason,
            }
        )

    def grant_history(self, grant_id: str) -> list[Row]:
        """State changes of a grant, oldest first."""
        return list(self.db.query("select * from grant_history where grant_id = ? order by id", [grant_id]))

    def grant_counts(self) -> dict[str, int]:
        """Number of grants per state (for /metrics)."""
        return {r["state"]: r["n"] for r in self.db.query("select state, count(*) as n from grants group by state")}

    @staticmethod
    def _grant_row(grant: Grant) -> Row:
        return {
            "id": grant.id,
            "slack_user": grant.slack_user,
            "subject": grant.subject,
            "cluster_id": grant.target.cluster_id,
            "project_id": grant.target.project_id,
            "role_id": grant.role_id,
            "duration_s": grant.duration_s,
            "rule": grant.rule,
            "state": grant.state.value,
            "requested_at": grant.requested_at,
            "reason": grant.reason,
            "ticket": grant.ticket,
            "break_glass": int(grant.break_glass),
            "self_service": int(grant.self_service),
            "approvals_required": grant.approvals_required,
            "activated_at": grant.activated_at,
            "expires_at": grant.expires_at,
            "ended_at": grant.ended_at,
            "binding_id": grant.binding_id,
            "binding_name": grant.binding_name,
            "user_principal_id": grant.user_principal_id,
            "extensions": grant.extensions,
            "failure": grant.failure,
            "via_groups": json.dumps(list(grant.via_groups)),
            "request_expires_at": grant.request_expires_at,
            "drifted": int(grant.drifted),
        }

    def _grant(self, row: Row) -> Grant:
        return Grant(
            id=row["id"],
            slack_user=row["slack_user"],
            subject=row["subject"],
            target=Target(row["cluster_id"], row["project_id"]),
            role_id=row["role_id"],
            duration_s=row["duration_s"],
            rule=row["rule"],
            state=GrantState(row["state"]),
            requested_at=row["requested_at"],
            reason=row["reason"] or "",
            ticket=row["ticket"] or "",
            break_glass=bool(row["break_glass"]),
            self_service=bool(row["self_service"]),
            approvals_required=row["approvals_required"] or 0,
            approvals=self.approvals(row["id"]),
            activated_at=row["activated_at"],
            expires_at=row["expires_at"],
            ended_at=row["ended_at"],
            binding_id=row["binding_id"],
            binding_name=row["binding_name"],
            user_principal_id=row["user_principal_id"],
            extensions=row["extensions"] or 0,
            failure=row["failure"] or "",
            via_groups=_json_list(row["via_groups"]),
            request_expires_at=row["request_expires_at"],
            drifted=bool(row["drifted"]),
            updated_at=row["updated_at"],
        )

    # --- scheduled jobs: revocation retries, overdue alerts, digest ----------------------------------

    def revocations_due(self, now: int, stale_before: int, limit: int = 10000) -> list[Grant]:
        """Grants left in `revoking` whose retry time has come, or never retried and untouched since `stale_before`."""
        rows = self.db.query(
            "select * from grants where state = 'revoking' and ("
            "(next_attempt_at > 0 and next_attempt_at <= ?) "
            "or (coalesce(next_attempt_at, 0) = 0 and coalesce(updated_at, 0) <= ?)"
            ") order by expires_at limit ?",
            [now, stale_before, limit],
        )
        return [self._grant(r) for r in rows]

    def grant_retry(self, grant_id: str) -> tuple[int, int, int]:
        """(attempts, next_attempt_at, overdue_alerted) of a grant; zeros when unknown."""
        rows = list(
            self.db.query("select attempts, next_attempt_at, overdue_alerted from grants where id = ?", [grant_id])
        )
        if not rows:
            return 0, 0, 0
        row = rows[0]
        return int(row["attempts"] or 0), int(row["next_attempt_at"] or 0), int(row["overdue_alerted"] or 0)

    def overdue_grants(self, expired_before: int, limit: int = 1000) -> list[Grant]:
        """Active or revoking grants that expired before `expired_before` and were not alerted on yet."""
        rows = self.db.query(
            "select * from grants where state in ('active', 'revoking') and expires_at < ? "
            "and coalesce(overdue_alerted, 0) = 0 order by expires_at limit ?",
            [expired_before, limit],
        )
        return [self._grant(r) for r in rows]

    def overdue_resolved(self, limit: int = 1000) -> list[Grant]:
        """Grants alerted as overdue (overdue_alerted = 1) that have left active/revoking since."""
        rows = self.db.query(
            "select * from grants where overdue_alerted = 1 and state not in ('active', 'revoking') "
            "order by seq limit ?",
            [limit],
        )
        return [self._grant(r) for r in rows]

    def grants_between(self, since: int, until: int, limit: int = 100000) -> list[Grant]:
        """Grants requested in [since, until) or active at some moment of it, oldest first."""
        rows = self.db.query(
            "select * from grants where (requested_at >= ? and requested_at < ?) or (activated_at is not null "
            "and activated_at < ? and coalesce(ended_at, expires_at, activated_at) >= ?) order by seq limit ?",
            [since, until, until, since, limit],
        )
        return [self._grant(r) for r in rows]
