"""The audit log's hash chain: canonical bytes of an event, chaining the next event, and verification."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from bot.core.model import AuditEvent, ChainHead

GENESIS = "0" * 64
CHAINED_FIELDS = ("id", "ts", "actor", "action", "target", "outcome", "reason", "request_id", "details")
_SECRET_HINTS = ("token", "secret", "password", "code_verifier", "verifier", "cookie", "authorization", "key")


def canonical_json(value: object) -> str:
    """Deterministic JSON: sorted keys, no spaces, UTF-8 kept."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def chained_part(row: Mapping[str, object]) -> dict[str, object]:
    """The fields of a row that the hash covers (everything except the hashes themselves)."""
    return {name: row.get(name) for name in CHAINED_FIELDS}


_SORTED_FIELDS = tuple(sorted(CHAINED_FIELDS))
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str)


def link_hash(prev_hash: str, row: Mapping[str, object]) -> str:
    """hash = sha256(prev_hash + canonical_json(row)).

    The fields are laid out in sorted order up front, so the encoder need not sort them per row (verifying a long
    chain is dominated by this function).
    """
    part = {name: row.get(name) for name in _SORTED_FIELDS}
    return hashlib.sha256((prev_hash + _ENCODER.encode(part)).encode("utf-8")).hexdigest()


def scrub(details: Mapping[str, object]) -> dict[str, object]:
    """Drop values whose key names a secret, recursively, so audit details never hold one."""
    clean: dict[str, object] = {}
    for key, value in details.items():
        lowered = key.lower()
        if any(hint in lowered for hint in _SECRET_HINTS) and not lowered.endswith(("_id", "_ids", "_count")):
            clean[key] = "[redacted]"
        elif isinstance(value, Mapping):
            clean[key] = scrub(value)
        else:
            clean[key] = value
    return clean


@dataclass(frozen=True)
class ChainCheck:
    """Result of verifying a chain: `broken_at` is the id of the first bad row, or None."""

    count: int
    broken_at: int | None
    problem: str = ""

    @property
    def ok(self) -> bool:
        """True when every link holds."""
        return self.broken_at is None


def event_hash(prev_hash: str, event: AuditEvent) -> str:
    """link_hash of an event's chained fields (laid out in sorted order directly: verification is this loop)."""
    part = {
        "action": event.action,
        "actor": event.actor,
        "details": event.details_json,
        "id": event.id,
        "outcome": event.outcome,
        "reason": event.reason,
        "request_id": event.request_id,
        "target": event.target,
        "ts": event.ts,
    }
    return hashlib.sha256((prev_hash + _ENCODER.encode(part)).encode("utf-8")).hexdigest()


def next_event(
    head: ChainHead,
    *,
    ts: int,
    actor: str,
    action: str,
    target: str,
    outcome: str,
    reason: str,
    request_id: str,
    details: Mapping[str, object],
) -> AuditEvent:
    """The event that follows `head`: the next id, details scrubbed of secrets as canonical JSON, and its hash."""
    event = AuditEvent(
        id=head.last_id + 1,
        ts=ts,
        actor=actor,
        action=action,
        target=target,
        outcome=outcome,
        reason=reason,
        request_id=request_id,
        details_json=canonical_json(scrub(details)),
        prev_hash=head.last_hash,
        hash="",
    )
    return AuditEvent(**{**vars(event), "hash": event_hash(head.last_hash, event)})


def verify(events: Iterable[AuditEvent], head: ChainHead | None = None) -> ChainCheck:
    """Walk events in id order; report the first whose prev_hash or hash does not hold.

    `head` is the (last id, last hash) recorded separately, so that deleting the newest events is detected too.
    """
    prev = GENESIS
    count = 0
    last_id: int | None = None
    for event in events:
        if last_id is not None and event.id <= last_id:
            return ChainCheck(count, event.id, "rows out of order")
        if event.prev_hash != prev:
            return ChainCheck(
                count, event.id, "previous hash does not match (a row before it was removed or reordered)"
            )
        if event_hash(prev, event) != event.hash:
            return ChainCheck(count, event.id, "contents do not match the hash (the row was edited)")
        prev = event.hash
        last_id = event.id
        count += 1
    if head is not None and head.last_id and (last_id != head.last_id or prev != head.last_hash):
        return ChainCheck(count, head.last_id if last_id is None else last_id, "the newest rows were removed")
    return ChainCheck(count, None)
