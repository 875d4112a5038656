"""Benchmark: /healthz latency while 1,000 forged and 1,000 valid Slack requests arrive, against the same idle.

Run: python bench/hostile.py [--forged 1000] [--valid 1000] [--probes 400] [--concurrency 16] [--same-priority]
The bot (bot.web.app.create_app, the same ASGI app `accessbot serve` runs) serves on loopback in a child process, on
a fresh SQLite database, with Slack pointed at the Slack emulator (the replies of valid commands go there). A second
child process floods /slack/events: forged requests (four refusal reasons, each with a 12 KB X-Slack-Retry-Num
header, from 4,001 forwarded sources) interleaved with valid signed `/access help` commands, `--concurrency` at a
time, at the lowest CPU priority (real floods come from other machines; `--same-priority` lets it compete for
this machine's cores). Meanwhile a third child process probes /healthz one request at a time (not this one: the Slack
emulator here would share its interpreter lock). The baseline is the same number of probes
against the same bot before the flood, in the same run. Prints p50 and p99 of both and their ratio (target: p99
under flood within 2x idle), the flood's throughput, the answers by status, and how much the database grew.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from accessbot_emulators.serving import bind, serve_in_thread
from accessbot_emulators.slack import SlackEmulator, SlackSigner, slash_command_body
from bot.demo import botconfig

TEAM = "T0BENCH001"
BIG_HEADER = "9" * 12_000
FORGED_BODY = "command=%2Faccess&text=help&user_id=U0EVIL0001"


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank) of `values`."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q * len(ordered)) - 1))]


def run_bot(database: str, slack_api_url: str, ready: Any, stop: Any) -> None:
    """Child process: serve the bot on loopback until `stop` is set; put its URL on `ready`."""
    from bot.web.app import create_app

    sock, url = bind()
    config = botconfig.make_config(
        database=Path(database),
        public_url=url,
        slack_api_url=slack_api_url,
        oidc_issuer="http://127.0.0.1:9",
        rancher_url="http://127.0.0.1:9",
        rancher_token="token-abcde:notused",
    )
    with serve_in_thread(create_app(config, run_jobs=False), sock=sock, name="bench-bot"):
        ready.put(url)
        stop.wait()


def forged_headers(i: int) -> dict[str, str]:
    """The i-th forged request's headers: missing, non-numeric, stale or wrong signatures, from 4,001 sources."""
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Retry-Num": BIG_HEADER,
        "X-Forwarded-For": f"198.51.{(i % 4001) // 250}.{(i % 4001) % 250}",
    }
    now = int(time.time())
    kind = i % 4
    if kind == 1:
        headers |= {"X-Slack-Request-Timestamp": "1e9", "X-Slack-Signature": "v0=" + "0" * 64}
    elif kind == 2:
        headers |= {"X-Slack-Request-Timestamp": str(now - 3600), "X-Slack-Signature": "v0=" + "0" * 64}
    elif kind == 3:
        headers |= {"X-Slack-Request-Timestamp": str(now), "X-Slack-Signature": "v0=" + "f" * 64}
    return headers


async def flood_async(url: str, response_url: str, forged: int, valid: int, concurrency: int) -> dict[str, Any]:
    """Send the forged and valid requests interleaved, `concurrency` at a time; count the answers."""
    signer = SlackSigner(botconfig.SIGNING_SECRET)
    plan = ["forged"] * forged + ["valid"] * valid
    plan.sort(key=lambda kind: hash((kind, id(kind))) % 2)  # interleave deterministically enough
    order = iter(enumerate(plan))
    answers: Counter[str] = Counter()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:

        async def worker() -> None:
            for i, kind in order:
                if kind == "forged":
                    response = await client.post(f"{url}/slack/events", content=FORGED_BODY, headers=forged_headers(i))
                else:
                    body = slash_command_body("/access", "help", f"U0BENCH{i:04d}", TEAM, "C0GENERAL1", response_url)
                    headers = signer.headers(body)
                    response = await client.post(f"{url}/slack/events", content=body, headers=headers)
                answers[f"{kind} {response.status_code}"] += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {"answers": dict(answers), "seconds": elapsed}


def run_flood(url: str, response_url: str, counts: tuple[int, int, int, bool], out: Any) -> None:
    """Child process: the flood (forged, valid, concurrency), its result put on `out`.

    It runs at the lowest CPU priority: on a small machine the flooding client would otherwise take the cores the
    bot needs, which real traffic (arriving from other machines) does not.
    """
    forged, valid, concurrency, same_priority = counts
    if not same_priority:
        os.nice(19)
    out.put(asyncio.run(flood_async(url, response_url, forged, valid, concurrency)))


def probe(url: str, count: int | None, until: Any = None, gap: float = 0.005) -> list[float]:
    """Time /healthz one request at a time: `count` probes, or until `until()` is true."""
    times: list[float] = []
    with httpx.Client(timeout=60) as client:
        while (count is None or len(times) < count) and not (until is not None and until()):
            started = time.perf_counter()
            response = client.get(f"{url}/healthz")
            times.append(time.perf_counter() - started)
            assert response.status_code == 200, response.text
            time.sleep(gap)
    return times


def run_probe(url: str, count: int, out: Any, stop: Any) -> None:
    """Child process: `count` probes, or (count 0) probes until `stop` is set; the times put on `out`."""
    out.put(probe(url, count or None, until=stop.is_set if not count else None))


def probe_apart(ctx: Any, url: str, count: int, during: Any = None) -> list[float]:
    """Probe from a process of its own (the Slack emulator in this one must not share its interpreter lock)."""
    out, stop = ctx.Queue(), ctx.Event()
    prober = ctx.Process(target=run_probe, args=(url, 0 if during else count, out, stop), daemon=True)
    prober.start()
    if during is not None:
        during()
        stop.set()
    times: list[float] = out.get(timeout=600)
    prober.join(timeout=30)
    return times


def database_bytes(path: str) -> int:
    """Used bytes of the database with its write-ahead log folded in."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("pragma wal_checkpoint(TRUNCATE)")
        pages, size, free = (
            conn.execute(f"pragma {p}").fetchone()[0] for p in ("page_count", "page_size", "freelist_count")
        )
    finally:
        conn.close()
    return int((pages - free) * size)


def main() -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--forged", type=int, default=1000)
    parser.add_argument("--valid", type=int, default=1000)
    parser.add_argument("--probes", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--same-priority", action="store_true", help="run the flooding client at normal priority (it then competes)"
    )
    args = parser.parse_args()
    ctx = mp.get_context("spawn")
    with (
        tempfile.TemporaryDirectory() as tmp,
        SlackEmulator.running(bot_token=botconfig.BOT_TOKEN, team_id=TEAM) as slack,
    ):
        database = str(Path(tmp) / "hostile.db")
        ready, stop, results = ctx.Queue(), ctx.Event(), ctx.Queue()
        bot = ctx.Process(target=run_bot, args=(database, slack.api_url, ready, stop), daemon=True)
        bot.start()
        url = ready.get(timeout=60)
        try:
            probe(url, 50)  # warm up
            idle = probe_apart(ctx, url, args.probes)
            size_before = database_bytes(database)
            outcome: dict[str, Any] = {}

            def flood() -> None:
                flooder = ctx.Process(
                    target=run_flood,
                    args=(
                        url,
                        slack.response_url("bench"),
                        (args.forged, args.valid, args.concurrency, args.same_priority),
                        results,
                    ),
                    daemon=True,
                )
                flooder.start()
                outcome.update(results.get(timeout=600))
                flooder.join(timeout=30)

            loaded = probe_apart(ctx, url, 0, during=flood)
            growth = database_bytes(database) - size_before
        finally:
            stop.set()
            bot.join(timeout=30)
    rows = [
        ("idle", idle),
        ("under flood", loaded),
    ]
    print(
        f"/healthz while {args.forged} forged + {args.valid} valid Slack requests arrive ({args.concurrency} at a time)"
    )
    print(f"{'':<14}{'probes':>8}{'p50 ms':>10}{'p99 ms':>10}")
    for name, times in rows:
        print(
            f"{name:<14}{len(times):>8}{statistics.median(times) * 1000:>10.2f}{percentile(times, 0.99) * 1000:>10.2f}"
        )
    ratio50 = statistics.median(loaded) / statistics.median(idle)
    ratio99 = percentile(loaded, 0.99) / percentile(idle, 0.99)
    print(f"ratio flood/idle: p50 {ratio50:.2f}x, p99 {ratio99:.2f}x (target: p99 within 2x)")
    total = args.forged + args.valid
    rate = total / outcome["seconds"]
    print(f"flood: {total} requests in {outcome['seconds']:.1f} s ({rate:.0f}/s); answers {outcome['answers']}")
    print(f"database growth during the flood: {growth} bytes")


if __name__ == "__main__":
    main()
