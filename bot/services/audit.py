"""The audit log as a use case: chaining each event onto the head (keyed), re-keying, verifying, exporting."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

from bot.core import audit_actions, audit_chain
from bot.core.audit_chain import ChainKey
from bot.core.model import AuditEvent, ChainHead
from bot.core.ports import Clock
from bot.core.spreadsheet import csv_chunks
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
    "key_id",
)
_APPEND_TRIES = 5


@dataclass
class _Batch:
    """Events recorded inside `AuditLog.batch`: chained in memory from the head read when it began."""

    start: ChainHead
    head: ChainHead
    events: list[AuditEvent] = field(default_factory=list)


class AuditLog:
    """Every state change and security event goes through `record`, inside the caller's transaction.

    `keys` are the chain keys this deployment knows, the first one signing; with none, events are chained unkeyed
    (SHA-256), as before keying existed.
    """

    def __init__(self, *, tx: Transactions, store: AuditStore, clock: Clock, keys: tuple[ChainKey, ...] = ()) -> None:
        self._tx = tx
        self._store = store
        self._clock = clock
        self.keys = keys
        self._local = threading.local()  # the open batch belongs to the thread (and transaction) that opened it

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

        def chained_onto(head: ChainHead) -> AuditEvent:
            return self._next(head, action=action, actor=actor, target=target, outcome=outcome, reason=reason,
                              request_id=request_id, details=details)  # fmt: skip

        batch: _Batch | None = getattr(self._local, "batch", None)
        if batch is not None:
            event = chained_onto(batch.head)
            batch.events.append(event)
            batch.head = ChainHead(event.id, event.hash)
            return event
        for _ in range(_APPEND_TRIES):
            with self._tx.atomic():
                head = self._store.head()
                event = chained_onto(head)
                if self._store.append(event, head):
                    return event
        raise RuntimeError("the audit head kept moving while appending; another writer is racing")

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Inside one transaction: chain every event recorded in the block from one head read, append them at its end.

        The chain is the same as recording them one by one (same ids, hashes, order); the store is asked once, so
        a batch of N events costs one head read, one head move and one bulk insert instead of N of each. The head
        row stays locked until the transaction commits (as for single events), so no other writer can fork the
        chain; an exception in the block appends nothing. A batch inside a batch joins the outer one.
        """
        if getattr(self._local, "batch", None) is not None:
            yield
            return
        with self._tx.atomic():
            head = self._store.head()
            if head.last_id == 0:  # an empty log has no head row to lock yet: record one by one (they retry)
                yield
                return
            batch = _Batch(start=head, head=head)
            self._local.batch = batch
            try:
                yield
            finally:
                self._local.batch = None
            if not self._store.append_many(batch.events, batch.start):
                raise RuntimeError("the audit head moved during a batch; another writer is racing")

    def _next(
        self,
        head: ChainHead,
        *,
        action: str,
        actor: str,
        target: str,
        outcome: str,
        reason: str,
        request_id: str,
        details: Mapping[str, object] | None,
    ) -> AuditEvent:
        return audit_chain.next_event(
            head,
            ts=self._clock.now(),
            actor=actor,
            action=action,
            target=target,
            outcome=outcome,
            reason=reason,
            request_id=request_id,
            details=details or {},
            key=self.keys[0] if self.keys else None,
        )

    def first_event_at(self) -> int | None:
        """When the oldest event was recorded (None for an empty log)."""
        first = next(iter(self._store.events(batch=1)), None)
        return first.ts if first is not None else None

    def ensure_keyed(self) -> AuditEvent | None:
        """When the newest event is not signed with the current key, append an `audit.rekeyed` event that is.

        Run at start (and by `accessbot migrate`): the first keyed event covers every unkeyed one before it, and a
        new key takes over from the old one with a recorded hand-over. None when nothing needed doing.
        """
        if not self.keys:
            return None
        with self._tx.atomic():
            head = self._store.head()
            newest = self._store.newest()
            current = self.keys[0].key_id
            if newest is not None and newest.key_id == current:
                return None
            return self.record(
                audit_actions.AUDIT_REKEYED,
                actor="system",
                details={
                    "key_id": current,
                    "previous_key_id": newest.key_id if newest is not None else "",
                    "previous_head_id": head.last_id,
                },
            )

    def head(self) -> ChainHead:
        """The newest event's id and hash (what an anchor records)."""
        return self._store.head()

    def verify(self, anchors: Iterable[ChainHead] = ()) -> audit_chain.ChainCheck:
        """Walk the whole chain and report the first broken event, if any (against `anchors` too)."""
        return check_chain(self._store, self.keys, anchors)

    def export(self, since: int | None, until: int | None, fmt: str) -> Iterator[str]:
        """Yield the events in [since, until) as JSON lines or CSV text chunks."""
        events = self._store.events(since=since, until=until)
        if fmt == "jsonl":
            for event in events:
                yield json.dumps(_export_row(event, parsed=True), ensure_ascii=False, sort_keys=True) + "\n"
            return
        if fmt != "csv":
            raise ValueError(f"unknown export format {fmt!r} (jsonl or csv)")
        rows = (_export_row(event, parsed=False) for event in events)
        yield from csv_chunks(EXPORT_COLUMNS, ([row[column] for column in EXPORT_COLUMNS] for row in rows))


def check_chain(
    store: AuditStore, keys: Iterable[ChainKey] = (), anchors: Iterable[ChainHead] = ()
) -> audit_chain.ChainCheck:
    """Verify every event of a store against the head it keeps apart from the rows, its keys and anchors."""
    return audit_chain.verify(store.events(), head=store.head(), keys=keys, anchors=anchors)


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
        "key_id": event.key_id,
    }
