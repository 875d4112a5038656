"""The audit log's hash chain: canonical bytes of an event, keyed chaining of the next event, and verification.

Each event's hash covers the previous hash and the event's fields. Events chained with a key (`key_id` set) are
HMAC-SHA256 under that key, so only someone holding the key can produce them; events from before the chain was keyed
are plain SHA-256 and are protected by the first keyed event, whose hash covers theirs. Once a keyed event exists,
every later event must be keyed (no downgrade). Removing the newest events is caught only against an anchor: an
(id, hash) pair kept outside the database (the security channel, the weekly digest).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

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


@dataclass(frozen=True)
class ChainKey:
    """A key the chain is signed with; `key_id` names it in each event without revealing it."""

    secret: bytes = field(repr=False)

    @property
    def key_id(self) -> str:
        """The first 16 hex digits of the key's SHA-256 (its name in the chain)."""
        return hashlib.sha256(b"accessbot-audit-key-id:" + self.secret).hexdigest()[:16]


def event_hash(prev_hash: str, event: AuditEvent, key: ChainKey | None = None) -> str:
    """An event's hash: SHA-256 of the previous hash and its sorted fields, or HMAC-SHA256 with `key` when keyed."""
    part: dict[str, object] = {
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
    if not event.key_id:
        return hashlib.sha256((prev_hash + _ENCODER.encode(part)).encode("utf-8")).hexdigest()
    if key is None or key.key_id != event.key_id:
        raise KeyError(event.key_id)
    part = {**part, "key_id": event.key_id}
    payload = (prev_hash + json.dumps(part, sort_keys=True, separators=(",", ":"), ensure_ascii=False)).encode()
    return hmac.new(key.secret, payload, hashlib.sha256).hexdigest()


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
    key: ChainKey | None = None,
) -> AuditEvent:
    """The event that follows `head`: the next id, details scrubbed of secrets as canonical JSON, and its hash
    (keyed when `key` is given)."""
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
        key_id=key.key_id if key is not None else "",
    )
    return AuditEvent(**{**vars(event), "hash": event_hash(head.last_hash, event, key)})


def verify(
    events: Iterable[AuditEvent],
    head: ChainHead | None = None,
    *,
    keys: Iterable[ChainKey] = (),
    anchors: Iterable[ChainHead] = (),
) -> ChainCheck:
    """Walk events in id order; report the first whose link, hash or key does not hold.

    `head` is the (last id, last hash) recorded apart from the rows, so deleting the newest rows is noticed when the
    head was left alone; `anchors` are (id, hash) pairs kept outside the database, which catch a rewritten head too.
    With `keys` configured, the chain must be keyed: an event with an unknown key, an unkeyed event after a keyed one,
    or a chain with no keyed event at all is refused.
    """
    known = {key.key_id: key for key in keys}
    expected = {anchor.last_id: anchor.last_hash for anchor in anchors}
    prev = GENESIS
    count = 0
    last_id: int | None = None
    keyed = False
    for event in events:
        if last_id is not None and event.id <= last_id:
            return ChainCheck(count, event.id, "rows out of order")
        if event.prev_hash != prev:
            return ChainCheck(
                count, event.id, "previous hash does not match (a row before it was removed or reordered)"
            )
        if event.key_id:
            key = known.get(event.key_id)
            if key is None:
                return ChainCheck(
                    count, event.id, f"chained with key {event.key_id}, which is not configured (cannot verify it)"
                )
            keyed = True
        elif keyed:
            return ChainCheck(count, event.id, "an unkeyed event after the chain was keyed (the log was rewritten)")
        else:
            key = None
        if event_hash(prev, event, key) != event.hash:
            return ChainCheck(count, event.id, "contents do not match the hash (the row was edited)")
        if event.id in expected and expected.pop(event.id) != event.hash:
            return ChainCheck(count, event.id, "does not match its anchor (the log was rewritten)")
        prev = event.hash
        last_id = event.id
        count += 1
    if expected:
        missing = min(expected)
        return ChainCheck(count, missing, f"anchored event {missing} is missing (the newest rows were removed)")
    if head is not None and head.last_id and (last_id != head.last_id or prev != head.last_hash):
        return ChainCheck(count, head.last_id if last_id is None else last_id, "the newest rows were removed")
    if known and count and not keyed:
        return ChainCheck(count, last_id, "the chain is not keyed although a key is configured (start the bot once)")
    return ChainCheck(count, None)
