"""Benchmark: SQLite and PostgreSQL side by side — `/access list`, request → active, a 10,000-grant expiry.

Run: python bench/databases.py [--grants 10000] [--runs 20] [--scale 0.1] [--wave-only]

Starts a throwaway PostgreSQL cluster (accessbot_emulators.postgres: initdb/pg_ctl on loopback, durability off as
any test cluster; the ratio is what to read), then runs each benchmark of bench/ twice in a child process, once on a
fresh SQLite file and once on a fresh PostgreSQL database, and prints the medians side by side with the ratio
PostgreSQL ÷ SQLite measured in the same run:
- `/access list` end to end (bench/access_list.py, estate scaled by --scale), users in 3 and 50 groups;
- request → active of a self-service grant (bench/grant_latency.py), and its bare-Rancher baseline;
- N grants expiring at the same second, revoked by one sweep (bench/revocation.py).
The three-replica wave is bench/replicas.py. `--wave-only` runs only the expiry wave (and also prints how long the
event loop was held at once during it).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from accessbot_emulators.postgres import running_cluster

ROOT = Path(__file__).resolve().parent.parent


def _bench(script: str, args: list[str], database: str, out: Path) -> dict[str, Any]:
    """Run one benchmark script with `--database` and `--json`, return what it wrote."""
    command = [sys.executable, str(ROOT / "bench" / script), *args, "--json", str(out)]
    if database:
        command += ["--database", database]
    # revocation.py exits 1 when the wave misses its 60 s target: the figures are still what we came for
    subprocess.run(command, check=False, cwd=ROOT, stdout=subprocess.DEVNULL)
    return dict(json.loads(out.read_text()))


def main() -> int:
    """Run every benchmark on both engines and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grants", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--scale", type=float, default=0.1, help="access_list estate scale (1.0 = 100,000 bindings)")
    parser.add_argument("--wave-only", action="store_true", help="run only the expiry wave")
    args = parser.parse_args()
    rows: list[tuple[str, float, float]] = []
    with running_cluster() as pg, tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        results: dict[str, dict[str, dict[str, Any]]] = {}
        for engine in ("sqlite", "postgresql"):

            def url(engine: str = engine) -> str:
                return pg.create_database("bench") if engine == "postgresql" else ""

            wave = _bench("revocation.py", ["--grants", str(args.grants)], url(), work / f"wave-{engine}.json")
            if args.wave_only:
                results[engine] = {"wave": wave}
                continue
            results[engine] = {
                "list": _bench(
                    "access_list.py",
                    ["--scale", str(args.scale), "--runs", str(args.runs)],
                    url(),
                    work / f"list-{engine}.json",
                ),
                "grant": _bench("grant_latency.py", ["--runs", str(args.runs)], url(), work / f"grant-{engine}.json"),
                "wave": wave,
            }
    sqlite, postgres = results["sqlite"], results["postgresql"]
    if not args.wave_only:
        for row_s, row_p in zip(sqlite["list"]["rows"], postgres["list"]["rows"], strict=True):
            rows.append((f"/access list {row_s['level']}, {row_s['user']} (p50 ms)", row_s["p50_ms"], row_p["p50_ms"]))
        rows.append(
            (
                "request -> active (median ms)",
                sqlite["grant"]["service_median_ms"],
                postgres["grant"]["service_median_ms"],
            )
        )
        rows.append(
            (
                "  bare Rancher baseline (median ms)",
                sqlite["grant"]["baseline_median_ms"],
                postgres["grant"]["baseline_median_ms"],
            )
        )
    rows.append(
        (f"{args.grants:,} grants expiring at once (s)", sqlite["wave"]["seconds"], postgres["wave"]["seconds"])
    )
    rows.append(
        (
            "  event loop held at once, longest (ms)",
            sqlite["wave"]["loop_held_max_ms"],
            postgres["wave"]["loop_held_max_ms"],
        )
    )
    print(f"{'':<48} {'SQLite':>9} {'PostgreSQL':>11} {'PG/SQLite':>10}")
    for label, s, p in rows:
        print(f"{label:<48} {s:>9.1f} {p:>11.1f} {p / s:>10.2f}")
    ok = all(r["wave"]["expired_in_db"] == args.grants for r in results.values())
    print("all grants expired on both engines" if ok else "FAIL: some grants were not expired")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
