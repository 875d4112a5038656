"""The audit chain: every edit, deletion, reordering or truncation is detected."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from bot.adapters.clock import SystemClock
from bot.adapters.store import open_storage
from bot.core import audit_chain
from bot.core.model import AuditEvent, ChainHead
from bot.services.audit import AuditLog
from tests import attacker


def _log(tmp_path: Path, n: int = 5) -> tuple[Path, AuditLog]:
    path = tmp_path / "audit.db"
    storage = open_storage(path)
    audit = AuditLog(tx=storage.tx, store=storage.audit, clock=SystemClock())
    for i in range(n):
        audit.record("grant.requested", actor=f"U{i}", target="prod/payments", details={"n": i})
    return path, audit


def test_intact_chain_verifies(tmp_path: Path) -> None:
    """An untouched log verifies with its event count."""
    _, audit = _log(tmp_path)
    check = audit.verify()
    assert check.ok
    assert check.count == 5


def test_edited_row_is_detected(tmp_path: Path) -> None:
    """Changing one field of one row breaks the chain at that row."""
    path, audit = _log(tmp_path)
    attacker.execute(path, "update audit_events set actor = 'mallory' where id = 3")
    check = audit.verify()
    assert check.broken_at == 3
    assert "edited" in check.problem


def test_deleted_row_is_detected(tmp_path: Path) -> None:
    """Removing a row in the middle breaks the chain at the next row."""
    path, audit = _log(tmp_path)
    attacker.execute(path, "delete from audit_events where id = 2")
    assert audit.verify().broken_at == 3


def test_reordered_rows_are_detected(tmp_path: Path) -> None:
    """Swapping the contents of two rows is detected."""
    path, audit = _log(tmp_path)
    attacker.swap_audit_rows(path, 2, 4)
    assert audit.verify().broken_at == 2


def test_truncated_tail_is_detected(tmp_path: Path) -> None:
    """Deleting the newest rows is detected through the separately kept head."""
    path, audit = _log(tmp_path)
    attacker.execute(path, "delete from audit_events where id >= 4")
    check = audit.verify()
    assert not check.ok
    assert "newest rows were removed" in check.problem


def test_secrets_in_details_are_redacted(tmp_path: Path) -> None:
    """Detail keys naming a secret are stored as [redacted]."""
    _, audit = _log(tmp_path, 0)
    event = audit.record(
        "link.created", actor="U1", details={"refresh_token": "abc", "client_secret": "x", "grant_id": "g-1"}
    )
    assert "abc" not in event.details_json
    assert '"grant_id":"g-1"' in event.details_json


@given(st.lists(st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=8), max_size=3), max_size=8))
def test_chain_of_any_rows_verifies_and_any_edit_breaks_it(details: list[dict[str, object]]) -> None:
    """For any sequence of events the built chain verifies, and editing any row breaks it there."""
    head = ChainHead(0, audit_chain.GENESIS)
    events: list[AuditEvent] = []
    for i, d in enumerate(details, start=1):
        event = audit_chain.next_event(
            head, ts=i, actor="a", action="x", target="t", outcome="ok", reason="", request_id="", details=d
        )
        head = ChainHead(event.id, event.hash)
        events.append(event)
    assert audit_chain.verify(events).ok
    if events:
        victim = len(events) // 2
        events[victim] = AuditEvent(**{**vars(events[victim]), "actor": "mallory"})
        assert audit_chain.verify(events).broken_at == victim + 1


@given(
    st.fixed_dictionaries(
        {
            "id": st.integers(min_value=1),
            "ts": st.integers(),
            "actor": st.text(max_size=10),
            "action": st.text(max_size=10),
            "target": st.text(max_size=10),
            "outcome": st.text(max_size=5),
            "reason": st.text(max_size=10),
            "request_id": st.text(max_size=5),
            "details": st.text(max_size=20),
        }
    ),
    st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
)
def test_link_hash_is_sha256_of_prev_hash_and_canonical_json(row: dict[str, object], prev: str) -> None:
    """The hash is exactly sha256(prev_hash + canonical_json(row)), as documented for external verifiers."""
    import hashlib

    expected = hashlib.sha256((prev + audit_chain.canonical_json(audit_chain.chained_part(row))).encode()).hexdigest()
    assert audit_chain.link_hash(prev, row) == expected
    fields = {k: v for k, v in row.items() if k != "details"}
    event = AuditEvent(**fields, details_json=str(row["details"]), prev_hash=prev, hash="")  # type: ignore[arg-type]
    assert audit_chain.event_hash(prev, event) == expected
