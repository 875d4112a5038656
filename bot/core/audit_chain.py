"""The audit log's hash chain: canonical bytes of an event, linking, and verification."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

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


def verify(rows: Iterable[Mapping[str, object]], head: tuple[int, str] | None = None) -> ChainCheck:
    """Walk rows in id order; report the first row whose prev_hash or hash does not hold.

    `head` is the (last id, last hash) recorded separately, so that deleting the newest rows is detected too.
    """
    prev = GENESIS
    count = 0
    last_id: int | None = None
    for row in rows:
        row_id = int(str(row["id"]))
        if last_id is not None and row_id <= last_id:
            return ChainCheck(count, row_id, "rows out of order")
        if row["prev_hash"] != prev:
            return ChainCheck(count, row_id, "previous hash does not match (a row before it was removed or reordered)")
        if link_hash(prev, row) != row["hash"]:
            return ChainCheck(count, row_id, "contents do not match the hash (the row was edited)")
        prev = str(row["hash"])
        last_id = row_id
        count += 1
    if head is not None and head[0] and (last_id != head[0] or prev != head[1]):
        return ChainCheck(count, head[0] if last_id is None else last_id, "the newest rows were removed")
    return ChainCheck(count, None)
