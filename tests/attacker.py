"""What someone with write access to the database file can do to it (the audit chain's tamper tests).

This is the one place tests write SQL: it plays the attacker, who edits the file directly, never the bot.
"""

from __future__ import annotations

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
