"""The SQLite adapter itself: migrations from empty, pragmas, carried-over data, and sealed secrets in the file.

Behaviour every store must have (transactions, compare-and-set, ordering) is in tests/contract.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlite_utils import Database

from bot.adapters.sealing import FernetSealer
from bot.adapters.store import SqliteDatabase, open_storage
from bot.adapters.store.migrations import MIGRATIONS
from bot.core.errors import TokenRejected
from bot.core.grant_lifecycle import ExtensionState
from tests import factories


def test_migrations_apply_from_empty_and_rerun_is_a_no_op(tmp_path: Path) -> None:
    """Migrating an empty file applies every migration; a second run applies nothing."""
    sql = SqliteDatabase(tmp_path / "fresh.db")
    every = [m.name for m in MIGRATIONS.pending(Database(memory=True))]
    assert every[:3] == ["m001_initial", "m002_audit_action_index", "m003_grant_extensions"]
    assert sql.migrate() == every
    assert sql.migrate() == []
    assert sql.pending_migrations() == []
    tables = set(sql.db.table_names())
    assert {"links", "login_attempts", "grants", "grant_history", "audit_events", "outbox", "job_leases"} <= tables
    assert {"grant_extensions", "extension_approvals", "replay_cache"} <= tables


def test_database_uses_wal_and_foreign_keys(tmp_path: Path) -> None:
    """The connection runs in WAL mode with foreign keys enforced."""
    sql = SqliteDatabase(tmp_path / "bot.db")
    assert sql.one("pragma journal_mode") == {"journal_mode": "wal"}
    assert sql.one("pragma foreign_keys") == {"foreign_keys": 1}


def test_extension_requests_kept_in_job_state_are_carried_over(tmp_path: Path) -> None:
    """m003 moves extension requests from job_state JSON into their own table, keeping state and approvers."""
    path = tmp_path / "old.db"
    db = Database(path)
    MIGRATIONS.apply(db, stop_before="m003_grant_extensions")  # the schema as it was before
    rows = [
        ("ext:g-1:0", json.dumps({"extra_s": 600, "approvers": ["U1"]})),
        ("ext:g-2:1", json.dumps({"extra_s": 60, "approvers": []})),
        ("ext:g-2:1:decided", "denied by U2"),
        ("ext:g-3:0", json.dumps({"extra_s": 30, "approvers": ["U1", "U2"]})),
        ("ext:g-3:0:decided", "approved by U1, U2"),
        ("ext:g-3:0:applied", "30"),
        ("digest:2026-W01", "1"),
    ]
    db.table("job_state").insert_all([{"key": k, "value": v, "updated_at": 5} for k, v in rows])
    db.conn.close()
    storage = open_storage(path)
    pending, denied, applied = (storage.extensions.get(g, n) for g, n in (("g-1", 0), ("g-2", 1), ("g-3", 0)))
    assert pending is not None
    assert (pending.state, pending.extra_s, pending.approvers) == (
        ExtensionState.PENDING,
        600,
        ("U1",),
    )
    assert denied is not None
    assert (denied.state, denied.decided_by) == (ExtensionState.DENIED, "U2")
    assert applied is not None
    assert applied.state is ExtensionState.APPLIED
    assert storage.marks.get("digest:2026-W01") == "1"
    assert storage.marks.get("ext:g-1:0") is None


def test_outbox_messages_queued_before_statuses_keep_their_meaning(tmp_path: Path) -> None:
    """m121: sent rows become `sent`, rows parked at next_attempt_at 2**53 become `parked`, refs become order keys."""
    path = tmp_path / "old.db"
    db = Database(path)
    MIGRATIONS.apply(db, stop_before="m121_outbox_status")
    base = {"channel": "C1", "created_at": 1, "attempts": 0, "last_error": ""}
    db.table("outbox").insert_all(
        [
            {**base, "key": "sent", "kind": "post", "payload": "{}", "sent_at": 5, "next_attempt_at": 1},
            {**base, "key": "parked", "kind": "dm", "payload": "{}", "next_attempt_at": 2**53, "last_error": "refused"},
            {
                **base,
                "key": "edit",
                "kind": "update",
                "payload": json.dumps({"ref": "grant:g-1"}),
                "next_attempt_at": 1,
            },
        ]
    )
    db.conn.close()
    storage = open_storage(path)
    sent, parked, edit = (storage.outbox.get(k) for k in ("sent", "parked", "edit"))
    assert sent is not None
    assert parked is not None
    assert edit is not None
    assert (sent.status.value, parked.status.value, edit.status.value) == ("sent", "parked", "pending")
    assert (edit.order_key, edit.priority.name) == ("grant:g-1", "BULK")
    assert [m.key for m in storage.outbox.due(10)] == ["edit"]
    storage.database.close()


def test_sealed_refresh_token_is_unreadable_without_the_key(tmp_path: Path) -> None:
    """A sealed token is not in the database file in clear, and a different key cannot open it."""
    sealer = FernetSealer([Fernet.generate_key().decode()])
    storage = open_storage(tmp_path / "sealed.db")
    secret = "refresh-token-plaintext-12345"
    factories.link(storage.links, "U1", "s1", [], now=1, sealed_refresh_token=sealer.seal(secret))
    stored = storage.links.get("U1")
    storage.database.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("sealed.db*"))
    assert secret.encode() not in raw
    assert stored is not None
    assert stored.sealed_refresh_token is not None
    assert sealer.unseal(stored.sealed_refresh_token) == secret
    with pytest.raises(TokenRejected):
        FernetSealer([Fernet.generate_key().decode()]).unseal(stored.sealed_refresh_token)
    assert "redacted" in repr(stored)


def test_key_rotation_keeps_old_tokens_readable() -> None:
    """With a new key first, tokens sealed under the old key still open, and rotate to the new key."""
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    sealed = FernetSealer([old]).seal("tok")
    rotated_sealer = FernetSealer([new, old])
    assert rotated_sealer.unseal(sealed) == "tok"
    assert FernetSealer([new]).unseal(rotated_sealer.rotate(sealed)) == "tok"
    assert "redacted" in repr(rotated_sealer)
