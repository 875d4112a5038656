"""The store adapters themselves: migrations on both engines, pragmas, carried-over data, sealed secrets in the file.

Behaviour every store must have (transactions, compare-and-set, ordering) is in tests/contract.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from bot.adapters.sealing import FernetSealer
from bot.adapters.store import DatabaseTooNew, SqliteDatabase, open_sql, open_storage
from bot.adapters.store.migrations import MIGRATIONS, Migration, Migrator
from bot.core import audit_chain
from bot.core.errors import TokenRejected
from bot.core.grant_lifecycle import ExtensionState
from tests import factories
from tests.together import run_together

DATA = Path(__file__).resolve().parent.parent / "data"


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database of each engine: a SQLite file, or a new database on a real PostgreSQL."""
    if request.param == "sqlite":
        return str(tmp_path / "fresh.db")
    return str(request.getfixturevalue("postgres_url"))


def test_migrations_apply_from_empty_and_rerun_is_a_no_op(target: str) -> None:
    """Migrating an empty database applies every migration, in order; a second run applies nothing."""
    sql = open_sql(target)
    try:
        assert sql.migrate() == [m.name for m in MIGRATIONS]
        assert sql.migrate() == []
        assert sql.pending_migrations() == []
        assert sql.applied_migrations() == [m.name for m in MIGRATIONS]
        for table in (
            "links",
            "login_attempts",
            "grants",
            "grant_history",
            "audit_events",
            "outbox",
            "job_leases",
            "grant_extensions",
            "extension_approvals",
            "replay_cache",
        ):
            assert sql.one(sql.dialect.table_exists_sql, [table]) is not None
    finally:
        sql.close()


def test_a_database_migrated_by_a_newer_version_is_refused(target: str) -> None:
    """A database recording a migration this version does not know is refused, naming it, and left unchanged."""
    sql = open_sql(target)
    try:
        Migrator(sql, (*MIGRATIONS, Migration("m999_from_the_future", ()))).apply(0)
    finally:
        sql.close()
    with pytest.raises(DatabaseTooNew, match="m999_from_the_future") as refused:
        open_storage(target)
    assert "restore" in refused.value.hint
    sql = open_sql(target)
    try:
        with pytest.raises(DatabaseTooNew):
            sql.pending_migrations()
        assert "m999_from_the_future" in sql.applied_migrations()
    finally:
        sql.close()


def test_concurrent_migrators_apply_each_migration_once(target: str, tmp_path: Path) -> None:
    """Migrators starting together on a fresh database leave each migration applied and recorded once.

    Several rounds, each released by a barrier: on SQLite, switching a new file to WAL can answer "database is
    locked" at once, without the busy handler, while another connection switches it
    (https://www.sqlite.org/pragma.html#pragma_journal_mode); CI met it one run in about fifty.
    """
    on_sqlite = target.endswith(".db")
    for round_number in range(12 if on_sqlite else 1):
        where = str(tmp_path / f"round{round_number}.db") if on_sqlite else target

        def migrate(_: int, where: str = where) -> list[str]:
            sql = open_sql(where)
            try:
                return sql.migrate()
            finally:
                sql.close()

        results = run_together(migrate, 4)
        assert sorted(name for applied in results for name in applied) == sorted(m.name for m in MIGRATIONS), (
            f"round {round_number}"
        )


def test_a_sqlite_file_written_by_0_1_0_is_adopted_and_upgraded(tmp_path: Path) -> None:
    """A 0.1.0 database (sqlite-utils migration records) keeps its data and gets only the newer migrations."""
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript((DATA / "accessbot-0.1.0.sql").read_text())
    conn.close()
    sql = SqliteDatabase(path)
    newer = [m.name for m in MIGRATIONS][3:]  # m004_lease_fencing_token and every one after
    assert sql.pending_migrations() == newer
    assert sql.migrate() == newer
    sql.close()
    storage = open_storage(path)
    try:
        grant = storage.grants.get("g-1")
        assert grant is not None
        assert grant.slack_user == "U0ALICE001"
        assert audit_chain.verify(storage.audit.events(), storage.audit.head()).ok
        assert storage.grants.new_id() == "g-2"
        assert storage.leases.take("jobs", "host:1:abc", 1_800_000_010, 60) is not None
    finally:
        storage.database.close()


def test_database_uses_wal_and_foreign_keys(tmp_path: Path) -> None:
    """The connection runs in WAL mode with foreign keys enforced."""
    sql = SqliteDatabase(tmp_path / "bot.db")
    assert sql.one("pragma journal_mode") == {"journal_mode": "wal"}
    assert sql.one("pragma foreign_keys") == {"foreign_keys": 1}


def test_extension_requests_kept_in_job_state_are_carried_over(tmp_path: Path) -> None:
    """m003 moves extension requests from job_state JSON into their own table, keeping state and approvers."""
    path = tmp_path / "old.db"
    sql = SqliteDatabase(path)
    Migrator(sql, MIGRATIONS[:2]).apply(0)  # the schema as it was before m003
    db = sql.db
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
    sql.close()
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
    sql = SqliteDatabase(path)
    before = [m for m in MIGRATIONS if m.name < "m121_outbox_status"]
    Migrator(sql, before).apply(0)
    insert = (
        "insert into outbox(key, kind, channel, payload, attempts, next_attempt_at, created_at, sent_at, last_error) "
        "values (?, ?, 'C1', ?, 0, ?, 1, ?, ?)"
    )
    sql.execute(insert, ["sent", "post", "{}", 1, 5, ""])
    sql.execute(insert, ["parked", "dm", "{}", 2**53, None, "refused"])
    sql.execute(insert, ["edit", "update", json.dumps({"ref": "grant:g-1"}), 1, None, ""])
    sql.close()
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
