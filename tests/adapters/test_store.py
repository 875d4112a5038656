"""The SQLite store: migrations, transactions, leases, and sealed secrets at rest."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from bot.adapters.sealing import FernetSealer
from bot.adapters.store import Store
from bot.core.errors import TokenRejected


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "bot.db")
    s.migrate()
    return s


def test_migrations_apply_from_empty_and_rerun_is_a_no_op(tmp_path: Path) -> None:
    """Migrating an empty file applies every migration; a second run applies nothing."""
    store = Store(tmp_path / "fresh.db")
    assert store.migrate() == ["m001_initial", "m002_audit_action_index"]
    assert store.migrate() == []
    assert store.pending_migrations() == []
    tables = set(store.db.table_names())
    assert {"links", "login_attempts", "grants", "grant_history", "audit_events", "outbox", "job_leases"} <= tables


def test_database_uses_wal_and_foreign_keys(store: Store) -> None:
    """The connection runs in WAL mode with foreign keys enforced."""
    assert next(iter(store.db.query("pragma journal_mode")))["journal_mode"] == "wal"
    assert next(iter(store.db.query("pragma foreign_keys")))["foreign_keys"] == 1


def test_failed_transaction_leaves_nothing_half_written(store: Store) -> None:
    """An exception inside atomic() rolls back the audit row and the outbox message together."""
    with pytest.raises(RuntimeError), store.atomic():
        store.append_audit(ts=1, actor="a", action="x", target="t", outcome="ok", reason="", request_id="", details={})
        store.enqueue(key="k1", kind="post", channel="C1", payload={"text": "hi"}, now=1)
        raise RuntimeError("boom")
    assert store.audit_count() == 0
    assert store.outbox_pending_count() == 0
    assert store.audit_head() == (0, "0" * 64)


def test_outbox_key_is_idempotent(store: Store) -> None:
    """Enqueuing the same idempotency key twice stores one message."""
    assert store.enqueue(key="same", kind="dm", channel="U1", payload={"text": "a"}, now=1)
    assert not store.enqueue(key="same", kind="dm", channel="U1", payload={"text": "b"}, now=2)
    assert store.outbox_pending_count() == 1


def test_lease_is_exclusive_until_it_expires(store: Store) -> None:
    """Only one owner holds a lease; another takes it over once it has expired."""
    assert store.try_lease("jobs", "A", now=100, ttl=60)
    assert not store.try_lease("jobs", "B", now=120, ttl=60)
    assert store.try_lease("jobs", "A", now=130, ttl=60)  # renewal
    assert not store.try_lease("jobs", "B", now=189, ttl=60)
    assert store.try_lease("jobs", "B", now=191, ttl=60)
    assert store.lease_holder("jobs", now=191) == "B"


def test_sealed_refresh_token_is_unreadable_without_the_key(tmp_path: Path) -> None:
    """A sealed token is not in the database file in clear, and a different key cannot open it."""
    sealer = FernetSealer([Fernet.generate_key().decode()])
    store = Store(tmp_path / "sealed.db")
    store.migrate()
    secret = "refresh-token-plaintext-12345"
    store.save_link(
        {
            "slack_user": "U1",
            "team_id": "T1",
            "issuer": "https://idp",
            "subject": "s1",
            "email": "a@example.com",
            "name": "A",
            "groups": "[]",
            "refresh_token": sealer.seal(secret),
            "linked_at": 1,
            "refreshed_at": 1,
            "status": "active",
        }
    )
    store.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("sealed.db*"))
    assert secret.encode() not in raw
    row = sqlite3.connect(tmp_path / "sealed.db").execute("select refresh_token from links").fetchone()
    assert sealer.unseal(row[0]) == secret
    with pytest.raises(TokenRejected):
        FernetSealer([Fernet.generate_key().decode()]).unseal(row[0])


def test_key_rotation_keeps_old_tokens_readable() -> None:
    """With a new key first, tokens sealed under the old key still open, and rotate to the new key."""
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    sealed = FernetSealer([old]).seal("tok")
    rotated_sealer = FernetSealer([new, old])
    assert rotated_sealer.unseal(sealed) == "tok"
    assert FernetSealer([new]).unseal(rotated_sealer.rotate(sealed)) == "tok"
    assert "redacted" in repr(rotated_sealer)
