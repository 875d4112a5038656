"""Benchmark "what can I access" (AccessService.describe) against a large emulated Rancher estate.

Run: /work/venv/bin/python bench/access_list.py [--clusters 1000 --projects 10000 --bindings 100000 --groups 500]
Prints p50/p95 per answer, Rancher requests per answer, and the ratio to one bare Rancher round trip.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.adapters.rancher import RancherClient
from bot.core.principals import principal_set
from bot.devtools.rancher_api import DEMO_FIXTURE, EmulatorSettings, generate_estate, load_fixture, run_emulator
from bot.services.access import AccessService

BOT_USER = "u-yenqfdbhnr"
GRANT_LABEL = "accessbot.io/grant"


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile of a non-empty list."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


@contextmanager
def serve_estate(
    args: argparse.Namespace,
) -> Iterator[tuple[str, Callable[[], None], Callable[[], tuple[int, int]]]]:
    """Serve the estate (own process by default, as Rancher would be); yield url, reset and count functions."""
    sizes = f"{args.clusters},{args.projects},{args.bindings},{args.groups},{args.users},{args.seed}"
    if args.in_process:
        estate = generate_estate(
            clusters=args.clusters,
            projects=args.projects,
            bindings=args.bindings,
            groups=args.groups,
            users=args.users,
            seed=args.seed,
        )
        settings = EmulatorSettings(latency=args.latency, page_size=args.page_size)
        with run_emulator(estate, settings) as emulator:

            def counts() -> tuple[int, int]:
                got = emulator.request_counts()
                return int(got["total"]), int(got["bytes"])

            yield emulator.url, emulator.reset_counters, counts
        return
    command = [
        sys.executable,
        "-c",
        "import sys; from bot.devtools.rancher_api import main; sys.exit(main(sys.argv[1:]))",
        "--generate",
        sizes,
        "--latency",
        str(args.latency),
        "--page-size",
        str(args.page_size),
    ]
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen(command, cwd=root, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if "http://" not in line:
            raise RuntimeError(f"emulator did not start: {line!r}")
        url = line.split()[3]
        control = httpx.Client(base_url=url)

        def reset() -> None:
            control.post("/_emulator/requests/reset")

        def count() -> tuple[int, int]:
            got = control.get("/_emulator/requests").json()
            return int(got["total"]), int(got["bytes"])

        try:
            yield url, reset, count
        finally:
            control.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


async def measure(args: argparse.Namespace) -> int:
    """Build the estate, serve it, and time describe() for users in 3 and 50 groups."""
    started = time.perf_counter()
    bot_key = next(
        f"{t['name']}:{t['secret']}" for t in load_fixture(DEMO_FIXTURE)["tokens"] if t["userId"] == BOT_USER
    )
    with serve_estate(args) as (url, reset_counters, request_total):
        setup = time.perf_counter() - started
        where = "in this process" if args.in_process else "in its own process"
        print(
            f"estate: {args.clusters} clusters, {args.projects} projects, {args.bindings} bindings, "
            f"{args.groups} groups, {args.users} users; latency {args.latency * 1000:.0f} ms; "
            f"page size {args.page_size}; emulator {where}, ready in {setup:.1f} s"
        )
        async with RancherClient(
            url, bot_key, max_connections=args.connections, filter_chunk=args.chunk, page_size=args.limit
        ) as rancher:
            base: list[float] = []
            for _ in range(args.iterations):
                t0 = time.perf_counter()
                await rancher.server_version()
                base.append(time.perf_counter() - t0)
            baseline = statistics.median(base)
            service = AccessService(rancher, GRANT_LABEL)
            rows: list[tuple[str, int, int, int, float, float, float, float]] = []
            for index, (label, user_no, n_groups) in enumerate((("3 groups", 0, 3), ("50 groups", 1, 50))):
                groups = [f"group-{(user_no * 7 + g) % args.groups:04d}" for g in range(n_groups)]
                pset = principal_set("genericoidc", f"user-{user_no:05d}", groups)
                if index == 0:
                    reset_counters()
                    t0 = time.perf_counter()
                    await service.describe(pset, [], int(time.time()))
                    cold = time.perf_counter() - t0
                    reqs, size = request_total()
                    print(
                        f"cold first answer (names not cached): {cold * 1000:.0f} ms, {reqs} requests, {size >> 10} KiB"
                    )
                timings: list[float] = []
                counts: list[int] = []
                sizes: list[int] = []
                rights = 0
                for _ in range(args.iterations):
                    reset_counters()
                    t0 = time.perf_counter()
                    report = await service.describe(pset, [], int(time.time()))
                    timings.append(time.perf_counter() - t0)
                    reqs, size = request_total()
                    counts.append(reqs)
                    sizes.append(size)
                    rights = len(report.rights)
                p50, p95 = percentile(timings, 50), percentile(timings, 95)
                rows.append(
                    (label, rights, min(counts), max(counts), statistics.median(sizes), p50, p95, p50 / baseline)
                )
    target = 3 * args.latency + 0.050
    print()
    print(f"baseline: one bare Rancher round trip p50 = {baseline * 1000:.1f} ms")
    print(f"target: p50 <= 3 x latency + 50 ms = {target * 1000:.0f} ms (warm name cache)")
    print()
    print(
        f"{'user':<10} {'rights':>6} {'requests/answer':>16} {'KiB/answer':>11} {'p50 ms':>8} {'p95 ms':>8} "
        f"{'p50/baseline':>13}  target"
    )
    for label, rights, lo, hi, body, p50, p95, ratio in rows:
        per_answer = f"{lo}" if lo == hi else f"{lo}-{hi}"
        verdict = "met" if p50 <= target else "MISSED"
        print(
            f"{label:<10} {rights:>6} {per_answer:>16} {body / 1024:>11.0f} {p50 * 1000:>8.1f} {p95 * 1000:>8.1f} "
            f"{ratio:>13.1f}  {verdict}"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument("--projects", type=int, default=10000)
    parser.add_argument("--bindings", type=int, default=100000)
    parser.add_argument("--groups", type=int, default=500)
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.020, help="seconds per Rancher request")
    parser.add_argument("--page-size", type=int, default=1000, help="Rancher's default collection limit")
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--connections", type=int, default=20, help="client connection pool size")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--chunk", type=int, default=20, help="values per `_in` filter request")
    parser.add_argument("--limit", type=int, default=None, help="`limit` the client sends (default: Rancher's)")
    parser.add_argument("--in-process", action="store_true", help="run the emulator in this process (shares the GIL)")
    return asyncio.run(measure(parser.parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
