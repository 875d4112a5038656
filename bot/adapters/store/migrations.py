"""The SQLite schema as forward-only migrations (sqlite-utils `Migrations`, recorded in `_sqlite_migrations`)."""

from __future__ import annotations

import json

from sqlite_utils import Database, Migrations

MIGRATIONS = Migrations("accessbot")


@MIGRATIONS()
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


@MIGRATIONS()
def m002_audit_action_index(db: Database) -> None:
    """Per-action counts over a period scan this covering index instead of every row (the weekly digest)."""
    db.execute("create index if not exists idx_audit_events_action_ts on audit_events(action, ts)")


@MIGRATIONS()
def m003_grant_extensions(db: Database) -> None:
    """Extension requests get their own tables (they lived as JSON in job_state); existing ones are carried over."""
    db.table("grant_extensions").create(
        {
            "grant_id": str,
            "number": int,
            "extra_s": int,
            "requested_at": int,
            "requested_by": str,
            "state": str,
            "decided_at": int,
            "decided_by": str,
        },
        pk=("grant_id", "number"),
        not_null={"extra_s", "requested_at", "requested_by", "state"},
        defaults={"decided_by": ""},
    )
    db.table("extension_approvals").create(
        {"grant_id": str, "number": int, "approver": str, "at": int},
        pk=("grant_id", "number", "approver"),
        not_null={"at"},
    )
    marks = {str(r["key"]): r for r in db.query("select key, value, updated_at from job_state where key like 'ext:%'")}
    for key, row in marks.items():
        parts = key.split(":")
        if len(parts) != 3 or not parts[2].isdigit():
            continue
        grant_id, number = parts[1], int(parts[2])
        try:
            pending = json.loads(str(row["value"]))
        except ValueError:
            continue
        decided = marks.get(f"{key}:decided")
        applied = marks.get(f"{key}:applied")
        state, decided_at, decided_by = "pending", None, ""
        if decided is not None:
            verdict = str(decided["value"])
            state = "denied" if verdict.startswith("denied") else "approved"
            decided_at, decided_by = decided["updated_at"], verdict.split(" by ", 1)[-1]
        if applied is not None:
            state = "applied"
        db.table("grant_extensions").insert(
            {
                "grant_id": grant_id,
                "number": number,
                "extra_s": int(pending.get("extra_s", 0)),
                "requested_at": row["updated_at"] or 0,
                "requested_by": "",
                "state": state,
                "decided_at": decided_at,
                "decided_by": decided_by,
            }
        )
        for approver in pending.get("approvers", []):
            db.table("extension_approvals").insert(
                {"grant_id": grant_id, "number": number, "approver": str(approver), "at": row["updated_at"] or 0}
            )
    db.execute("delete from job_state where key like 'ext:%'")


@MIGRATIONS()
def m004_replay_cache(db: Database) -> None:
    """Accepted Slack signatures, shared by every process and kept across restarts (until timestamp + window)."""
    db.execute("create table replay_cache (key text primary key, expires_at integer not null)")
    db.execute("create index idx_replay_cache_expires_at on replay_cache(expires_at)")


@MIGRATIONS()
def m005_approvals_by_identity(db: Database) -> None:
    """Approvals record the IdP identity behind the clicking Slack account; one vote per identity and request."""
    db.execute("alter table grant_approvals add column approver_issuer text not null default ''")
    db.execute("alter table grant_approvals add column approver_subject text not null default ''")
    db.execute(
        "update grant_approvals set approver_issuer = (select issuer from links where slack_user = approver), "
        "approver_subject = (select subject from links where slack_user = approver) "
        "where exists (select 1 from links where slack_user = approver)"
    )
    db.execute(
        "create unique index uq_grant_approvals_identity "
        "on grant_approvals(grant_id, approver_issuer, approver_subject) where approver_subject != ''"
    )


@MIGRATIONS()
def m006_keyed_audit_chain(db: Database) -> None:
    """Each audit event names the key its hash was made with (HMAC); events before keying keep an empty key id."""
    db.execute("alter table audit_events add column key_id text not null default ''")


@MIGRATIONS()
def m007_pending_links(db: Database) -> None:
    """A verified login waits on its attempt for the person's confirmation when the email guard is off."""
    db.execute("alter table login_attempts add column pending_login text")
    db.execute("alter table login_attempts add column confirm_hash text")
    db.execute("alter table login_attempts add column pending_until integer")
    db.execute("create unique index uq_login_attempts_confirm on login_attempts(confirm_hash)")


@MIGRATIONS()
def m121_outbox_status(db: Database) -> None:
    """Outbox messages get a status, a priority and an order key; parked ones stop pretending to be due in 2**53."""
    db.execute("alter table outbox add column status text not null default 'pending'")
    db.execute("alter table outbox add column priority integer not null default 1")
    db.execute("alter table outbox add column order_key text not null default ''")
    db.execute("alter table outbox add column first_failed_at integer")
    db.execute("update outbox set status = 'sent' where sent_at is not null")
    db.execute("update outbox set status = 'parked' where sent_at is null and next_attempt_at >= 9007199254740992")
    for row in list(db.query("select id, kind, channel, payload from outbox where status in ('pending', 'parked')")):
        try:
            ref = json.loads(str(row["payload"])).get("ref") or ""
        except (ValueError, AttributeError):
            ref = ""
        kind = str(row["kind"])
        priority = 2 if kind == "update" else 1
        db.execute("update outbox set order_key = ?, priority = ? where id = ?", [str(ref), priority, row["id"]])
    db.execute("create index idx_outbox_due on outbox(status, priority, id)")
    db.execute("create index idx_outbox_order on outbox(order_key, status, id)")


@MIGRATIONS()
def m131_identity_providers(db: Database) -> None:
    """Links keep the Rancher subject claim, group display names and a re-link deadline (issue 13).

    Plain SQL so the PostgreSQL adapter runs the same statements. A link awaiting a new sign-in still holds its
    subject, so the one-active-link-per-subject index covers both states.
    """
    db.execute("alter table links add column principal_subject text")
    db.execute("alter table links add column group_names text")
    db.execute("alter table links add column relink_by integer")
    db.execute("drop index if exists uq_links_subject")
    db.execute(
        "create unique index uq_links_subject on links(issuer, subject) where status in ('active', 'relink_needed')"
    )
