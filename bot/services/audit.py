"""The audit log as a use case: chaining each event onto the head, verifying the chain, exporting events."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping

from bot.core import audit_chain
from bot.core.model import AuditEvent
from bot.core.ports import Clock
from bot.core.storage import AuditStore, Transactions

EXPORT_COLUMNS = (
    "id",
    "ts",
    "actor",
    "action",
    "target",
    "outcome",
    "reason",
    "request_id",
    "details",
    "prev_hash",
    "hash",
)
_APPEND_TRIES = 5


class AuditLog:
    """Every state change and security event goes through `record`, inside the caller's transaction."""

    def __init__(self, *, tx: Transactions, store: AuditStore, clock: Clock) -> None:
        self._tx = tx
        self._store = store
        self._clock = clock

    def record(
        self,
        action: str,
        *,
        actor: str,
        target: str = "",
        outcome: str = "ok",
        reason: str = "",
        request_id: str = "",
        details: Mapping[str, object] | None = None,
    ) -> AuditEvent:
        """Chain one event onto the head and append it (secrets in `details` are redacted by key name)."""
        for _ in range(_APPEND_TRIES):
            with self._tx.atomic():
                head = self._store.head()
                event = audit_chain.next_event(
                    head,
                    ts=self._clock.now(),
                    actor=actor,
                    action=action,
                    target=target,
                    outcome=outcome,
                    reason=reason,
                    request_id=request_id,
                    details=details or {},
                )
                if self._store.append(event, head):
                    return event
        raise RuntimeError("the audit head kept moving while appending; another writer is racing")

    def first_event_at(self) -> int | None:
        """When the oldest event was recorded (None for an empty log)."""
        first = next(iter(self._store.events(batch=1)), None)
        return first.ts if first is not None else None

    def verify(self) -> audit_chain.ChainCheck:
        """Walk the whole chain and report the first broken event, if any."""
        return check_chain(self._store)

    def export(self, since: int | None, until: int | None, fmt: str) -> Iterator[str]:
        """Yield the events in [since, until) as JSON lines or CSV text chunks."""
        events = self._store.events(since=since, until=until)
        if fmt == "jsonl":
            for event in events:
                yield json.dumps(_export_row(event, parsed=True), ensure_ascii=False, sort_keys=True) + "\n"
            return
        if fmt != "csv":
            raise ValueError(f"unknown export format {fmt!r} (jsonl or csv)")
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=EXPORT_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for event in events:
            writer.writerow(_export_row(event, parsed=False))
            if buffer.tell() > 65536:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()


def check_chain(store: AuditStore) -> audit_chain.ChainCheck:
    """Verify every event of a store against the head it keeps apart from the rows."""
    return audit_chain.verify(store.events(), head=store.head())


def _export_row(event: AuditEvent, *, parsed: bool) -> dict[str, object]:
    return {
        "id": event.id,
        "ts": event.ts,
        "actor": event.actor,
        "action": event.action,
        "target": event.target,
        "outcome": event.outcome,
        "reason": event.reason,
        "request_id": event.request_id,
        "details": event.details if parsed else event.details_json,
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }
