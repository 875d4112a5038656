"""Benchmark: build the weekly digest over 1,000,000 audit events, in memory and streamed from SQLite.

Run: /work/venv/bin/python bench/digest.py [--events 1000000] [--runs 5]
Prints the median of the runs for each source against the 2 s target: a list of dicts in memory, every row
streamed through AuditStore.digest_rows() for every action, and the split path (SQLite counts the actions, Python
reads only the DETAIL_ACTIONS rows) that build_digest(counts=...) supports. All three must give the same Digest.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.adapters.store import SqliteDatabase, open_storage
from bot.core import audit_actions
from bot.core import audit_actions as A
from bot.core.audit_chain import canonical_json
from bot.core.digest import DETAIL_ACTIONS, build_digest
from bot.core.storage import Storage

TARGET_S = 2.0
WEEK = 7 * 86400
START = 1_790_000_000

_NOISE = (
    (A.TOKEN_REFRESHED, 60),
    (A.SLACK_REQUEST_REJECTED, 2),
    (A.TOKEN_REFRESH_FAILED, 2),
    (A.LINK_CREATED, 1),
    (A.LINK_REPLACED, 1),
    (A.LINK_REMOVED, 1),
    (A.DRIFT_UNTAGGED, 1),
    (A.DRIFT_MISSING_BINDING, 1),
    (A.DRIFT_REPAIRED, 1),
    (A.CONFIG_LOADED, 1),
)


def synthetic_rows(n: int, seed: int = 7) -> list[dict[str, object]]:
    """n audit rows over one week: grant lifecycles (about 40% of rows) mixed with link/token/drift noise."""
    rnd = random.Random(seed)
    users = [f"U{i:07d}" for i in range(500)]
    targets = [f"cluster-{c}/project-{p}" for c in range(20) for p in range(10)] + [f"cluster-{c}" for c in range(20)]
    roles = ["project-member", "project-owner", "cluster-member", "read-only"]
    noise_actions = [a for a, w in _NOISE for _ in range(w)]
    rows: list[dict[str, object]] = []
    grant_no = 0
    while len(rows) < n:
        ts = START + rnd.randrange(WEEK)
        if rnd.random() < 0.12:  # one grant lifecycle: 4-6 rows
            grant_no += 1
            user, target, role = rnd.choice(users), rnd.choice(targets), rnd.choice(roles)
            duration = rnd.choice((1800, 3600, 7200, 14400))
            flags = {"break_glass": rnd.random() < 0.01, "self_service": rnd.random() < 0.5}
            base = {"grant_id": f"g-{grant_no}", "slack_user": user, "role": role, "target": target, "rule": "dev"}
            steps: list[tuple[str, dict[str, object]]] = [(A.GRANT_REQUESTED, {})]
            if not flags["self_service"]:
                if rnd.random() < 0.1:
                    steps.append((A.GRANT_DENIED, {"approver": rnd.choice(users), "why": "no"}))
                    steps = steps[: len(steps)]
                else:
                    steps.append((A.GRANT_APPROVED, {"approver": rnd.choice(users), "final": True}))
            if steps[-1][0] != A.GRANT_DENIED:
                steps += [(A.GRANT_ACTIVATING, {}), (A.GRANT_ACTIVE, {"binding_id": f"b-{grant_no}"})]
                if rnd.random() < 0.1:
                    duration += 3600
                    steps.append((A.GRANT_EXTENDED, {"extra_s": 3600, "extensions": 1}))
                steps.append((A.GRANT_REVOKED if rnd.random() < 0.1 else A.GRANT_EXPIRED, {"held_s": duration}))
            for offset, (action, extra) in enumerate(steps):
                details = base | flags | {"duration_s": duration} | extra
                rows.append(_row(ts + offset * 60, user, action, target, details))
        else:
            user = rnd.choice(users)
            rows.append(_row(ts, "system", rnd.choice(noise_actions), user, {"slack_user": user}))
    del rows[n:]
    rows.sort(key=lambda r: int(str(r["ts"])))
    for i, row in enumerate(rows, 1):
        row["id"] = i
    return rows


def _row(ts: int, actor: str, action: str, target: str, details: dict[str, object]) -> dict[str, object]:
    return {
        "ts": min(ts, START + WEEK - 1),
        "actor": actor,
        "action": action,
        "target": target,
        "outcome": "ok",
        "reason": "",
        "request_id": "",
        "details": canonical_json(details),
    }


def load_sqlite(path: Path, rows: list[dict[str, object]]) -> Storage:
    """Create the schema with the store's migrations and bulk-insert the rows with executemany (fake hashes)."""
    sql = SqliteDatabase(path)
    sql.migrate()
    conn = sql.db.conn
    fake = hashlib.sha256(b"bench").hexdigest()
    with conn:
        conn.executemany(
            "insert into audit_events (id, ts, actor, action, target, outcome, reason, request_id, details,"
            " prev_hash, hash) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                (r["id"], r["ts"], r["actor"], r["action"], r["target"], r["outcome"], r["reason"], r["request_id"],
                 r["details"], fake, fake)
                for r in rows
            ),
        )  # fmt: skip
    sql.close()
    return open_storage(path, migrate=False)


def timed(runs: int, build: Callable[[], object]) -> list[tuple[float, float]]:
    """(wall-clock, CPU) seconds of each run; CPU time is the fairer figure on a shared machine."""
    out = []
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        build()
        out.append((time.perf_counter() - wall, time.process_time() - cpu))
    return out


def timed_in_memory(rows: list[dict[str, object]], runs: int) -> list[tuple[float, float]]:
    """Time build_digest over a list of dict rows."""
    return timed(runs, lambda: build_digest(rows, None, START, START + WEEK, True, 0))


def main() -> None:
    """Generate, load, time and print."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    began = time.perf_counter()
    rows = synthetic_rows(args.events)
    count = len(rows)
    print(f"generated {count:,} events in {time.perf_counter() - began:.1f}s")
    end = START + WEEK

    results: list[tuple[str, list[tuple[float, float]]]] = [
        ("in memory (list of dicts)", timed_in_memory(rows, args.runs))
    ]
    expected = build_digest(rows, None, START, end, True, 0)

    with tempfile.TemporaryDirectory() as tmp:
        began = time.perf_counter()
        store = load_sqlite(Path(tmp) / "bench.db", rows)
        print(f"loaded SQLite with executemany in {time.perf_counter() - began:.1f}s")
        del rows  # a million live dicts would make every GC pass of the SQLite runs slower
        gc.collect()

        audit = store.audit

        def streamed() -> object:
            return build_digest(audit.digest_rows(START, end, audit_actions.ALL), None, START, end, True, 0)

        def store_path() -> object:
            # what the weekly job does (bot.services.jobs.digest.build_period_digest), minus the chain verification
            counts = audit.action_counts(START, end)
            return build_digest(audit.digest_rows(START, end, DETAIL_ACTIONS), None, START, end, True, 0, counts=counts)

        results.append(("SQLite, every row of every action", timed(args.runs, streamed)))
        results.append(("SQLite, counts + detail rows (job)", timed(args.runs, store_path)))
        if streamed() != expected or store_path() != expected:
            raise SystemExit("a SQLite digest differs from the in-memory one")
        store.database.close()

    print(f"target: under {TARGET_S:.1f}s for {count:,} events; median of {args.runs} runs (wall / CPU):")
    for name, values in results:
        wall = statistics.median(v[0] for v in values)
        cpu = statistics.median(v[1] for v in values)
        verdict = "OK" if wall < TARGET_S else "OVER"
        runs = ", ".join(f"{w:.2f}/{c:.2f}" for w, c in values)
        print(f"  {name:40s} {wall:6.3f}s / {cpu:6.3f}s  [{verdict}]  runs: {runs}")
    print(f"load average during the runs: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
