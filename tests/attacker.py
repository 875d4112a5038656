"""What someone with write access to the database file can do to it (the audit chain's tamper tests).

This is the one place tests write SQL: it plays the attacker, who edits the file directly, never the bot.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path


def execute(database: str | Path, statement: str, params: Sequence[object] = ()) -> None:
    """Run one statement against the file and commit, as a hand with sqlite3 would."""
    conn = sqlite3.connect(database)
    try:
        conn.execute(statement, list(params))
        conn.commit()
    finally:
        conn.close()


def swap_audit_rows(database: str | Path, a: int, b: int) -> None:
    """Exchange the contents (and hashes) of two audit rows, keeping their ids."""
    conn = sqlite3.connect(database)
    try:
        columns = "ts, actor, details, prev_hash, hash"
        rows = {r[0]: r[1:] for r in conn.execute(f"select id, {columns} from audit_events where id in (?, ?)", (a, b))}  # noqa: S608
        for target, source in ((a, b), (b, a)):
            conn.execute(
                "update audit_events set ts=?, actor=?, details=?, prev_hash=?, hash=? where id=?",
                (*rows[source], target),
            )
        conn.commit()
    finally:
        conn.close()


# --- rewriting the audit chain the way the README documents it --------------------------------------------------
# The attacker below holds the database file but no key: everything they compute is what the README says the hash
# is, `hash = sha256(prev_hash + canonical_json(row))` over the chained fields, sorted keys, no spaces, UTF-8 kept.

CHAINED = ("id", "ts", "actor", "action", "target", "outcome", "reason", "request_id", "details")


def readme_hash(prev_hash: str, row: sqlite3.Row) -> str:
    """An audit row's hash as the README documents it (the unkeyed chain)."""
    part = {name: row[name] for name in CHAINED}
    text = json.dumps(part, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256((prev_hash + text).encode("utf-8")).hexdigest()


def rechain(database: str | Path, *, start: int, downgrade: bool = False) -> None:
    """Recompute every hash from event `start` on the unkeyed way, relink prev_hash, and move the kept head.

    With `downgrade`, each rewritten row also loses its key id, so it claims to be from before the chain was keyed.
    """
    conn = sqlite3.connect(database)
    conn.row_factory = sqlite3.Row
    try:
        before = conn.execute(
            "select hash from audit_events where id < ? order by id desc limit 1", (start,)
        ).fetchone()
        prev = before["hash"] if before else "0" * 64
        rows = conn.execute("select * from audit_events where id >= ? order by id", (start,)).fetchall()
        for row in rows:
            digest = readme_hash(prev, row)
            key_id = "" if downgrade else row["key_id"]
            conn.execute(
                "update audit_events set prev_hash = ?, hash = ?, key_id = ? where id = ?",
                (prev, digest, key_id, row["id"]),
            )
            prev = digest
        last = rows[-1]["id"] if rows else start - 1
        conn.execute("update audit_head set last_id = ?, last_hash = ? where id = 1", (last, prev))
        conn.commit()
    finally:
        conn.close()


def truncate_audit(database: str | Path, *, keep_through: int) -> None:
    """Delete every audit event after `keep_through` and move the kept head back to it (a consistent-looking log)."""
    conn = sqlite3.connect(database)
    try:
        (digest,) = conn.execute("select hash from audit_events where id = ?", (keep_through,)).fetchone()
        conn.execute("delete from audit_events where id > ?", (keep_through,))
        conn.execute("update audit_head set last_id = ?, last_hash = ? where id = 1", (keep_through, digest))
        conn.commit()
    finally:
        conn.close()
