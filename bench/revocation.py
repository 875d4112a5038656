"""Benchmark: N grants expiring at the same moment, revoked by one sweep against a Rancher emulator at 20 ms a call.

Run: python bench/revocation.py [--grants 10000] [--concurrency 16] [--latency 0.02] [--database URL] [--json FILE]

The Rancher emulator runs in a child process (so its CPU does not share the bot's GIL), seeded from a generated
fixture holding one tagged PRTB per grant; a small ASGI wrapper there counts the requests in flight. The grants
are inserted into a fresh SQLite file in bulk, all expired at the same second. The bot side is the production
code path, wired by bot.wiring: the sweep (RevocationSweep.expire_grants) → Lifecycle.finish_revocation →
RancherClient over HTTP, with the audit
events and outbox messages every revocation writes. Prints the concurrency, total seconds, revocations per
second, Rancher requests by method, the peak of concurrent requests the emulator saw, and how long the event loop
was held at once during the wave (a task asks to wake every 10 ms and records how late it woke: what a `/healthz`
or a Slack command arriving meanwhile would wait). Target: 10,000 in 60 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from accessbot_emulators.rancher import DEMO_FIXTURE, EmulatorSettings, RancherEmulator, load_fixture
from accessbot_emulators.serving import bind, serve_forever
from bot import wiring
from bot.core.model import Grant, GrantState, Target
from bot.core.storage import Storage
from bot.demo import botconfig
from bot.services.grants import binding_name
from bot.services.jobs.sweep import SweepResult

TARGET_S = 60.0
BOT_KEY = "token-b9t4n:2jpfw5dxczjt4wr7nsxspmk8h57kdxmvtn6smzdfvrh7ngtrc4d7wx"
LABEL = "accessbot.io/grant"
PROJECT = "c-7xk2p:p-4mz8q"
ALICE_RANCHER = "u-x7xfihrhhs"
ALICE_SUB = "3f2a9c1e-5b7d-4e8a-9c0f-1a2b3c4d5e6f"
EXPIRY = 1_800_000_000


class _Clock:
    def __init__(self, value: int) -> None:
        self.value = value

    def now(self) -> int:
        return self.value


async def watch_loop(lateness: list[float], period: float = 0.01) -> None:
    """Until cancelled: sleep `period` again and again, recording how much later than asked each wake-up came."""
    while True:
        asked = time.perf_counter()
        await asyncio.sleep(period)
        lateness.append(time.perf_counter() - asked - period)


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of `values` by nearest rank (0.0 for none)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class PeakCounter:
    """ASGI wrapper: counts /v3 requests in flight and keeps the peak; GET /_bench/peak reads it."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.in_flight = 0
        self.peak = 0
        self._lock = threading.Lock()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] == "/_bench/peak":
            body = json.dumps({"peak": self.peak}).encode()
            await send(
                {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}
            )
            await send({"type": "http.response.body", "body": body})
            return
        counted = scope["path"].startswith("/v3")
        if counted:
            with self._lock:
                self.in_flight += 1
                self.peak = max(self.peak, self.in_flight)
        try:
            await self.app(scope, receive, send)
        finally:
            if counted:
                with self._lock:
                    self.in_flight -= 1


def serve_emulator(fixture_path: str, latency: float, port_file: str) -> None:
    """Child process: serve the emulator seeded from `fixture_path`, write the port to `port_file`, run forever."""
    emulator = RancherEmulator(load_fixture(fixture_path), EmulatorSettings(latency=latency, page_size=1000))
    sock, _ = bind()
    sock.listen(1024)
    Path(port_file).write_text(str(sock.getsockname()[1]))
    serve_forever(PeakCounter(emulator.app), sock, timeout_keep_alive=60)


def write_fixture(path: Path, grants: int) -> None:
    """The demo estate plus one tagged PRTB per grant (JSON is YAML, and much faster to write)."""
    fixture = load_fixture(DEMO_FIXTURE)
    fixture["projectRoleTemplateBindings"] = list(fixture.get("projectRoleTemplateBindings", [])) + [
        {
            "name": binding_name(f"g-{i}"),
            "projectId": PROJECT,
            "roleTemplateId": "project-member",
            "userId": ALICE_RANCHER,
            "labels": {LABEL: f"g-{i}"},
            "annotations": {"accessbot.io/slack-user": "U0ALICE001"},
        }
        for i in range(1, grants + 1)
    ]
    path.write_text(json.dumps(fixture))


def insert_grants(store: Storage, ids: dict[str, str], grants: int, expires: int = EXPIRY) -> None:
    """Insert N active grants, all expiring at `expires`, in one transaction."""
    with store.tx.atomic():
        for _ in range(grants):
            gid = store.grants.new_id()
            grant = Grant(
                id=gid,
                slack_user="U0ALICE001",
                subject=ALICE_SUB,
                target=Target("c-7xk2p", PROJECT),
                role_id="project-member",
                duration_s=3600,
                rule="bench",
                state=GrantState.ACTIVE,
                requested_at=expires - 3600,
                activated_at=expires - 3600,
                expires_at=expires,
                binding_id=ids[binding_name(gid)],
                binding_name=binding_name(gid),
            )
            store.grants.insert(grant, expires - 3600)


def start_emulator(tmp: Path, grants: int, latency: float) -> tuple[subprocess.Popen[bytes], str]:
    """The Rancher emulator with one tagged binding per grant, in a child process; returns it and its URL."""
    fixture, port_file = tmp / "estate.json", tmp / "port"
    write_fixture(fixture, grants)
    child = subprocess.Popen(
        [sys.executable, __file__, "--latency", str(latency), "--serve-emulator", str(fixture), str(port_file)],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
    )
    deadline = time.monotonic() + 120
    while not port_file.exists() or not port_file.read_text():
        if child.poll() is not None or time.monotonic() > deadline:
            child.terminate()
            raise SystemExit("the emulator process did not start")
        time.sleep(0.1)
    base = f"http://127.0.0.1:{port_file.read_text()}"
    while True:
        try:
            httpx.get(f"{base}/_emulator/settings", timeout=2)
            return child, base
        except httpx.TransportError:
            time.sleep(0.1)


async def run(args: argparse.Namespace, base: str, db: Path | str) -> dict[str, Any]:
    """Insert the grants, run one sweep, check every grant ended and every binding is gone."""
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        state = (await http.get("/_emulator/state")).json()
        ids = {b["name"]: b["id"] for b in state["projectRoleTemplateBinding"]}
        await http.post("/_emulator/requests/reset")
        config = botconfig.make_config(
            database=db,
            public_url="http://127.0.0.1:9",
            slack_api_url="http://127.0.0.1:9/api/",
            oidc_issuer="http://127.0.0.1:9",
            rancher_url=base,
            rancher_token=BOT_KEY,
            overrides={
                "rancher": {"max_connections": args.concurrency, "timeout": "30s"},
                "schedule": {"revoke_concurrency": args.concurrency},
            },
        )
        clock = _Clock(EXPIRY + 1)
        bot = wiring.build(config, clock=clock)
        insert_grants(bot.storage, ids, args.grants)
        lateness: list[float] = []
        watcher = asyncio.create_task(watch_loop(lateness))
        await asyncio.sleep(0.05)  # the watcher is asleep before the sweep starts, so the claim is measured too
        started, cpu_started = time.perf_counter(), time.process_time()
        result = await bot.scheduler.jobs.expire_grants(clock.now())
        assert isinstance(result, SweepResult)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        watcher.cancel()
        counts = (await http.get("/_emulator/requests")).json()
        peak = (await http.get("/_bench/peak")).json()["peak"]
        left = (await http.get("/_emulator/state")).json()["projectRoleTemplateBinding"]
        expired = bot.storage.grants.counts().get("expired", 0)
        outbox = bot.storage.outbox.pending_count()
        await bot.aclose()
    by_method: dict[str, int] = {}
    for path, n in counts["by_path"].items():
        method = path.split(" ", 1)[0]
        by_method[method] = by_method.get(method, 0) + n
    return {
        "grants": args.grants,
        "concurrency": args.concurrency,
        "latency_s": args.latency,
        "seconds": round(elapsed, 2),
        "revocations_per_s": round(result.revoked / elapsed, 1) if elapsed else 0.0,
        "bot_cpu_seconds": round(cpu, 2),
        "host_load_average_1m": round(os.getloadavg()[0], 2),
        "revoked": result.revoked,
        "failed": result.failed,
        "expired_in_db": expired,
        "tagged_bindings_left": sum(1 for b in left if LABEL in (b.get("labels") or {})),
        "rancher_requests": counts["total"],
        "rancher_requests_by_method": by_method,
        "peak_concurrent_requests_at_emulator": peak,
        "loop_held_p99_ms": round(percentile(lateness, 0.99) * 1000, 1),
        "loop_held_max_ms": round(max(lateness, default=0.0) * 1000, 1),
        "outbox_messages_queued": outbox,
    }


def main() -> int:
    """Parse arguments, start the emulator process, run the sweep, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grants", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=16, help="schedule.revoke_concurrency (default 16)")
    parser.add_argument("--latency", type=float, default=0.02, help="seconds per Rancher call (default 0.02)")
    parser.add_argument("--database", default="", help="a SQLite path or postgresql:// URL (default: a temporary file)")
    parser.add_argument("--json", default="", help="also write the report to this file as JSON")
    parser.add_argument("--serve-emulator", nargs=2, metavar=("FIXTURE", "PORT_FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_emulator:
        serve_emulator(args.serve_emulator[0], args.latency, args.serve_emulator[1])
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        child, base = start_emulator(Path(tmp), args.grants, args.latency)
        try:
            report = asyncio.run(run(args, base, args.database or Path(tmp) / "bench.db"))
        finally:
            child.terminate()
            child.wait(timeout=10)
    print(yaml.safe_dump(report, sort_keys=False).rstrip())
    if args.json:
        Path(args.json).write_text(json.dumps(report))
    ok = report["expired_in_db"] == args.grants and report["tagged_bindings_left"] == 0
    verdict = "PASS" if ok and report["seconds"] <= TARGET_S else "FAIL"
    print(f"{verdict}: {args.grants} grants revoked in {report['seconds']} s (target {TARGET_S:.0f} s for 10,000)")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    raise SystemExit(main())
