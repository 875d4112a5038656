"""Benchmark `/access list` against a large emulated Rancher estate: service level and end to end through Slack.

Run: /work/venv/bin/python bench/access_list.py [--runs 30] [--scale 1.0] [--latency 0.02] [--gc-freeze]
     (quick run: --runs 5 --scale 0.1; about 20 s at full scale)

Users: generated user-00000 in 3 generated groups and user-00001 in 50, linked in the bot's database.
Service level: AccessService.describe() on its own RancherClient.
End to end: a signed `/access list` slash command POSTed to the real bot (create_app + uvicorn on loopback, jobs
off), timed until the reply reaches the response_url served by the Slack emulator (the emulator's receipt time).
The Rancher emulator runs in its own process (default; `--in-process` for a thread) so its CPU does not compete
with the bot's event loop. Prints p50/p95, CPU per answer, Rancher requests and list calls per answer (a list call
is a GET of a collection: a full Kubernetes LIST on a real Rancher), one bare Rancher round trip (GET /v3/) as
baseline, and ratios to the target. `--gc-freeze` calls gc.freeze() once the bot has started."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from accessbot_emulators.rancher import DEMO_FIXTURE, EmulatorSettings, generate_estate, load_fixture, run_emulator
from accessbot_emulators.serving import bind, serve_in_thread
from accessbot_emulators.slack import SlackEmulator, SlackSigner, slash_command_body
from bot.adapters.clock import SystemClock
from bot.adapters.rancher import RancherClient
from bot.adapters.store import open_storage
from bot.core.model import Identity, LinkRecord
from bot.core.principals import PrincipalMapping, principal_set
from bot.demo import botconfig
from bot.services.access import AccessService
from bot.web.app import create_app

BOT_USER = "u-yenqfdbhnr"
GRANT_LABEL = "accessbot.io/grant"
TEAM = "T0BENCH001"
UNREACHABLE = "http://127.0.0.1:9"  # the IdP is not needed: links are inserted straight into the database
PROVIDER = "genericoidc"  # botconfig's rancher.auth_provider, and generate_estate's default


@dataclass(frozen=True)
class Persona:
    """A benchmark user: a generated Rancher user and some of the generated groups, linked to a Slack user."""

    label: str
    slack_user: str
    subject: str
    groups: tuple[str, ...]


@dataclass(frozen=True)
class Row:
    """One line of the results table."""

    level: str
    label: str
    rights: int
    requests: tuple[int, int]
    lists: tuple[int, int]
    rancher_kib: float
    timings: tuple[float, ...]
    cpu: tuple[float, ...]
    reply_kib: float | None = None

    @property
    def p50(self) -> float:
        """Median seconds."""
        return percentile(list(self.timings), 50)

    @property
    def p95(self) -> float:
        """95th percentile seconds."""
        return percentile(list(self.timings), 95)


Traffic = tuple[int, int, int]
"""Rancher requests, body bytes and list calls (GETs of a collection) since the last reset."""
Counters = tuple[Callable[[], None], Callable[[], Traffic]]


def traffic(got: dict[str, Any]) -> Traffic:
    """The emulator's counters as (requests, bytes, list calls)."""
    lists = sum(n for key, n in got["by_path"].items() if key.startswith("GET /v3/") and key.count("/") == 2)
    return int(got["total"]), int(got["bytes"]), lists


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile of a non-empty list."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def personas(groups: int) -> list[Persona]:
    """user-00000 in 3 groups and user-00001 in 50 groups (generate_estate's user and group names)."""
    out = []
    for user_no, (label, n_groups) in enumerate((("3 groups", 3), ("50 groups", 50))):
        names = tuple(f"group-{(user_no * 7 + g) % groups:04d}" for g in range(n_groups))
        out.append(Persona(label, f"U0BENCH{user_no:04d}", f"user-{user_no:05d}", names))
    return out


@contextmanager
def serve_estate(args: argparse.Namespace) -> Iterator[tuple[str, Callable[[], None], Callable[[], Traffic]]]:
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

            def counts() -> Traffic:
                return traffic(emulator.request_counts())

            yield emulator.url, emulator.reset_counters, counts
        return
    command = [
        sys.executable,
        "-c",
        "import sys; from accessbot_emulators.rancher import main; sys.exit(main(sys.argv[1:]))",
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

        def count() -> Traffic:
            return traffic(control.get("/_emulator/requests").json())

        try:
            yield url, reset, count
        finally:
            control.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


async def service_level(args: argparse.Namespace, url: str, key: str, counters: Counters) -> tuple[float, list[Row]]:
    """Bare round trip median, then AccessService.describe() timings for each persona."""
    reset_counters, request_total = counters
    rows: list[Row] = []
    async with RancherClient(
        url, key, max_connections=args.connections, filter_chunk=args.chunk, page_size=args.limit
    ) as rancher:
        base: list[float] = []
        for _ in range(max(args.runs, 10)):
            t0 = time.perf_counter()
            await rancher.ping()  # GET /v3/: one bare round trip (the server version is cached by the client)
            base.append(time.perf_counter() - t0)
        baseline = statistics.median(base)
        storage = open_storage(":memory:")
        service = AccessService(
            rancher=rancher,
            grant_label=GRANT_LABEL,
            links=storage.links,
            grants=storage.grants,
            principals=PrincipalMapping(PROVIDER),
            clock=SystemClock(),
        )
        for index, persona in enumerate(personas(args.groups)):
            pset = principal_set(PROVIDER, persona.subject, list(persona.groups))
            if index == 0:
                reset_counters()
                t0 = time.perf_counter()
                await service.describe(pset, [], int(time.time()))
                cold = time.perf_counter() - t0
                reqs, size, _ = request_total()
                print(f"service level, cold first answer (names not cached): {cold * 1000:.0f} ms, {reqs} requests")
                if args.gc_freeze:
                    gc.freeze()  # what the bot would do once started: long-lived objects leave the collector's scans
            timings: list[float] = []
            cpu: list[float] = []
            counts: list[int] = []
            lists: list[int] = []
            sizes: list[int] = []
            rights = 0
            for _ in range(args.runs):
                reset_counters()
                t0, c0 = time.perf_counter(), time.thread_time()
                report = await service.describe(pset, [], int(time.time()))
                timings.append(time.perf_counter() - t0)
                cpu.append(time.thread_time() - c0)
                reqs, size, listed = request_total()
                counts.append(reqs)
                lists.append(listed)
                sizes.append(size)
                rights = len(report.rights)
            kib = statistics.median(sizes) / 1024
            rows.append(
                Row(
                    "service",
                    persona.label,
                    rights,
                    (min(counts), max(counts)),
                    (min(lists), max(lists)),
                    kib,
                    tuple(timings),
                    tuple(cpu),
                )
            )
    return baseline, rows


def end_to_end(args: argparse.Namespace, url: str, key: str, counters: Counters) -> list[Row]:
    """The real bot on loopback: signed `/access list` in, reply at the Slack emulator's response_url out."""
    reset_counters, request_total = counters
    signer = SlackSigner(botconfig.SIGNING_SECRET)
    rows: list[Row] = []
    with (
        tempfile.TemporaryDirectory(prefix="accessbot-bench-") as tmp,
        SlackEmulator.running(bot_token=botconfig.BOT_TOKEN, team_id=TEAM) as slack,
    ):
        sock, bot_url = bind()
        config = botconfig.make_config(
            database=args.database or Path(tmp) / "bench.db",
            public_url=bot_url,
            slack_api_url=slack.api_url,
            oidc_issuer=UNREACHABLE,
            rancher_url=url,
            rancher_token=key,
        )
        hooks = [lambda _components: gc.freeze()] if args.gc_freeze else []
        app = create_app(config, run_jobs=False, on_start=hooks)
        with serve_in_thread(app, sock=sock), httpx.Client(timeout=30) as http:
            link_personas(config.database.reveal(), slack, personas(args.groups))
            settle(request_total)  # the bot's start-up policy check reads role templates and clusters
            bot_thread = next(t for t in threading.enumerate() if t.name == "asgi-server")
            bot_clock = time.pthread_getcpuclockid(bot_thread.ident or 0)
            serial = 0

            def ask(persona: Persona) -> tuple[float, float, Traffic, dict[str, Any]]:
                """One timed `/access list`: seconds to reply, bot CPU seconds, Rancher requests and bytes, reply."""
                nonlocal serial
                serial += 1
                reply_key = f"bench-{serial:05d}"
                body = slash_command_body(
                    "/access", "list", persona.slack_user, TEAM, "C0BENCH001", slack.response_url(reply_key)
                )
                headers = {"Content-Type": "application/x-www-form-urlencoded", **signer.sign(body)}
                reset_counters()
                started, cpu_started = time.time(), time.clock_gettime(bot_clock)
                response = http.post(f"{bot_url}/slack/events", content=body.encode(), headers=headers)
                if response.status_code != 200:
                    raise RuntimeError(f"the bot answered {response.status_code}: {response.text[:200]}")
                posts = slack.wait_for(lambda: slack.responses(reply_key), timeout=30, interval=0.01)
                post = posts[0]
                cpu_used = time.clock_gettime(bot_clock) - cpu_started
                return post.time - started, cpu_used, request_total(), dict(post.body)

            for index, persona in enumerate(personas(args.groups)):
                if index == 0:
                    cold, _, (reqs, _, _), _ = ask(persona)  # also warms the bot's name cache
                    print(
                        f"end to end, cold first answer: {cold * 1000:.0f} ms, {reqs} requests "
                        "(names not cached, except role templates and clusters read by the start-up policy check)"
                    )
                timings: list[float] = []
                cpu: list[float] = []
                counts: list[int] = []
                lists: list[int] = []
                sizes: list[int] = []
                reply: dict[str, Any] = {}
                for _ in range(args.runs):
                    seconds, cpu_used, (reqs, size, listed), reply = ask(persona)
                    timings.append(seconds)
                    cpu.append(cpu_used)
                    counts.append(reqs)
                    lists.append(listed)
                    sizes.append(size)
                rights = check_reply(persona, reply)
                rows.append(
                    Row(
                        "end-to-end",
                        persona.label,
                        rights,
                        (min(counts), max(counts)),
                        (min(lists), max(lists)),
                        statistics.median(sizes) / 1024,
                        tuple(timings),
                        tuple(cpu),
                        reply_kib=len(json.dumps(reply).encode()) / 1024,
                    )
                )
    return rows


def settle(request_total: Callable[[], Traffic], quiet: float = 0.3, limit: float = 10.0) -> None:
    """Wait until Rancher has had no request for `quiet` seconds (background reads after the bot starts)."""
    deadline = time.monotonic() + limit
    last, since = request_total()[0], time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - since < quiet:
        time.sleep(0.05)
        now = request_total()[0]
        if now != last:
            last, since = now, time.monotonic()


def link_personas(database: Path | str, slack: SlackEmulator, people: list[Persona]) -> None:
    """Insert active links for the personas straight into the bot's database (as tests/conftest.py gbot does)."""
    store = open_storage(database)
    now = int(time.time())
    try:
        for person in people:
            slack.add_user(person.slack_user, f"{person.subject}@example.com", person.subject)
            identity = Identity(
                slack_user=person.slack_user,
                team_id=TEAM,
                issuer="https://idp.example",
                subject=person.subject,
                email=f"{person.subject}@example.com",
                name=person.subject,
                groups=tuple(person.groups),
                linked_at=now,
                refreshed_at=now,
            )
            store.links.save(LinkRecord(identity))
    finally:
        store.database.close()


def check_reply(persona: Persona, reply: dict[str, Any]) -> int:
    """The number of rights the reply announces; fail loudly when it is not an access list."""
    text = str(reply.get("text", ""))
    blocks = reply.get("blocks") or []
    if not text.startswith("You have ") or not blocks or len(blocks) > 50:
        raise RuntimeError(f"unexpected reply for {persona.label}: {text[:200]!r}")
    return int(text.split()[2])


def print_table(args: argparse.Namespace, baseline: float, rows: list[Row]) -> None:
    """Baseline, target and one line per (level, persona)."""
    target = 3 * args.latency + 0.050
    print()
    print(f"baseline: one bare Rancher round trip (GET /v3/) p50 = {baseline * 1000:.1f} ms")
    print(f"target:   p50 <= 3 x {args.latency * 1000:.0f} ms + 50 ms = {target * 1000:.0f} ms (warm name cache)")
    print()
    print(
        f"{'level':<11} {'user':<10} {'rights':>6} {'req/answer':>10} {'lists/answer':>12} {'Rancher KiB':>11} "
        f"{'reply KiB':>9} {'p50 ms':>7} {'p95 ms':>7} {'CPU ms':>6} {'p50/base':>8} {'p50/target':>10}  target"
    )

    def span(pair: tuple[int, int]) -> str:
        return f"{pair[0]}" if pair[0] == pair[1] else f"{pair[0]}-{pair[1]}"

    for row in rows:
        verdict = "met" if row.p50 <= target else "MISSED"
        reply = "-" if row.reply_kib is None else f"{row.reply_kib:.0f}"
        print(
            f"{row.level:<11} {row.label:<10} {row.rights:>6} {span(row.requests):>10} {span(row.lists):>12} "
            f"{row.rancher_kib:>11.0f} {reply:>9} "
            f"{row.p50 * 1000:>7.1f} {row.p95 * 1000:>7.1f} {statistics.median(row.cpu) * 1000:>6.0f} "
            f"{row.p50 / baseline:>8.1f} {row.p50 / target:>10.2f}  "
            f"{verdict}"
        )
    print(
        "lists/answer: GETs of a collection (each a full Kubernetes LIST on a real Rancher); Rancher KiB: JSON read "
        "from Rancher per answer; reply KiB: the Slack reply; CPU ms: median CPU per answer of the thread running it "
        "(service: the benchmark's loop; end to end: the bot's server thread)"
    )


def run(args: argparse.Namespace) -> int:
    """Build the estate, serve it, and measure both levels for users in 3 and 50 groups."""
    started = time.perf_counter()
    bot_key = next(
        f"{t['name']}:{t['secret']}" for t in load_fixture(DEMO_FIXTURE)["tokens"] if t["userId"] == BOT_USER
    )
    with serve_estate(args) as (url, reset_counters, request_total):
        setup = time.perf_counter() - started
        where = "in this process (a thread)" if args.in_process else "in its own process"
        print(
            f"estate: {args.clusters} clusters, {args.projects} projects, {args.bindings} bindings, "
            f"{args.groups} groups, {args.users} users; latency {args.latency * 1000:.0f} ms; "
            f"page size {args.page_size}; {args.runs} runs; Rancher emulator {where}, ready in {setup:.1f} s"
            + ("; gc.freeze() after start" if args.gc_freeze else "")
        )
        counters = (reset_counters, request_total)
        baseline, rows = asyncio.run(service_level(args, url, bot_key, counters))
        if not args.service_only:
            rows += end_to_end(args, url, bot_key, counters)
    print_table(args, baseline, rows)
    print(f"total {time.perf_counter() - started:.0f} s")
    if args.json:
        figures = [{"level": r.level, "user": r.label, "p50_ms": r.p50 * 1000, "p95_ms": r.p95 * 1000} for r in rows]
        Path(args.json).write_text(json.dumps({"baseline_ms": baseline * 1000, "rows": figures}))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the estate sizes (groups stay >= 50)")
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument("--projects", type=int, default=10000)
    parser.add_argument("--bindings", type=int, default=100000)
    parser.add_argument("--groups", type=int, default=500)
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.020, help="seconds per Rancher request")
    parser.add_argument("--page-size", type=int, default=1000, help="Rancher's default collection limit")
    parser.add_argument("--runs", "--iterations", dest="runs", type=int, default=30, help="timed answers per user")
    parser.add_argument("--connections", type=int, default=20, help="service-level client connection pool size")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--chunk", type=int, default=100, help="service level: most values per `_in` filter request")
    parser.add_argument("--limit", type=int, default=5000, help="service level: `limit` sent (the product default)")
    parser.add_argument("--in-process", action="store_true", help="run the emulator in a thread here (shares the GIL)")
    parser.add_argument("--service-only", action="store_true", help="skip the end-to-end part")
    parser.add_argument("--database", default="", help="end to end: a SQLite path or postgresql:// URL")
    parser.add_argument("--json", default="", help="also write the medians to this file as JSON")
    parser.add_argument(
        "--gc-freeze", action="store_true", help="gc.freeze() once started (bot: an on_start hook), to measure GC cost"
    )
    args = parser.parse_args(argv)
    if args.scale != 1.0:
        for name in ("clusters", "projects", "bindings", "users"):
            setattr(args, name, max(1, round(getattr(args, name) * args.scale)))
        args.groups = max(50, round(args.groups * args.scale))
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
