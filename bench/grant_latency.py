"""Benchmark: request-to-active latency of a self-service grant, with the Rancher emulator at 20 ms per call.

Run: python bench/grant_latency.py [--runs 30] [--latency 0.02] [--sequential-baseline] [--database URL] [--json FILE]
Each run asks Requests.request() (wired by bot.wiring) for project-member on dev-eu/payments (a self-service rule)
through a real RancherClient over HTTP to the emulator and a real SQLite store, and times it until the grant is
ACTIVE; the grant is revoked untimed between runs. The baseline, measured in the same process against the same
emulator, is the bare Rancher round trips one activation needs, made directly with the client: get the user and list
the target's bindings (concurrently, as the service does; one after the other with --sequential-baseline), then
create the binding. The service's standing-access check reads, in that one round trip, the user by principal, the
target's and its cluster's bindings and the user's and groups' global role bindings (7 requests with the create).
Prints median and p95 of both, their ratio, and the Rancher requests per grant. Cluster, project and role-template
lists are cached by the client (as in the running bot), so they are warmed before timing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from accessbot_emulators.rancher import RancherEmulator, run_emulator
from bot import wiring
from bot.adapters.rancher import RancherClient
from bot.core.model import GrantState, Identity, LinkRecord, RoleBinding, Scope
from bot.demo import botconfig

BOT_KEY = "token-b9t4n:2jpfw5dxczjt4wr7nsxspmk8h57kdxmvtn6smzdfvrh7ngtrc4d7wx"
ALICE_SUB = "3f2a9c1e-5b7d-4e8a-9c0f-1a2b3c4d5e6f"
ALICE_UID = "u-x7xfihrhhs"
PROJECT = "c-7xk2p:p-4mz8q"


def p95(values: list[float]) -> float:
    """The 95th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[max(0, round(0.95 * len(ordered)) - 1)]


async def measure(
    emulator: RancherEmulator, runs: int, latency: float, *, concurrent_reads: bool = True, database: str = ""
) -> dict[str, object]:
    """Time `runs` self-service requests and `runs` bare round-trip sequences (a temporary SQLite file by default)."""
    with tempfile.TemporaryDirectory() as tmp:
        config = botconfig.make_config(
            database=database or Path(tmp) / "bench.db",
            public_url="http://127.0.0.1:9",
            slack_api_url="http://127.0.0.1:9/api/",
            oidc_issuer="http://127.0.0.1:9",
            rancher_url=emulator.url,
            rancher_token=BOT_KEY,
        )
        bot = wiring.build(config)
        now = bot.clock.now()
        alice = Identity(
            "U0ALICE001", "T0BENCH001", "https://idp.example", ALICE_SUB, "alice@example.com", "Alice",
            ("engineering",), now, now,
        )  # fmt: skip
        bot.storage.links.save(LinkRecord(alice))
        client = RancherClient(emulator.url, BOT_KEY, retries=0)
        requests, lifecycle = bot.grants.requests, bot.grants.lifecycle
        try:
            await bot.rancher.list_clusters()
            await bot.rancher.list_projects()
            await bot.rancher.list_role_templates()
            await client.list_clusters()
            await client.list_projects()
            await client.list_role_templates()
            emulator.configure(latency=latency)
            service_s: list[float] = []
            requests_per_grant: list[int] = []
            for _ in range(runs):
                emulator.reset_counters()
                started = time.perf_counter()
                outcome = await requests.request("U0ALICE001", "dev-eu/payments", "project-member")
                service_s.append(time.perf_counter() - started)
                requests_per_grant.append(int(emulator.request_counts()["total"]))  # type: ignore[call-overload]
                if outcome.grant is None or outcome.grant.state is not GrantState.ACTIVE:
                    raise RuntimeError(f"the grant did not become active: {outcome.message}")
                await lifecycle.revoke(outcome.grant.id, actor="bench", reason="bench")
            baseline_s: list[float] = []
            for i in range(runs):
                started = time.perf_counter()
                if concurrent_reads:
                    await asyncio.gather(client.get_user(ALICE_UID), client.list_target_bindings("c-7xk2p", PROJECT))
                else:
                    await client.get_user(ALICE_UID)
                    await client.list_target_bindings("c-7xk2p", PROJECT)
                made = await client.create_binding(
                    name=f"bench-baseline-{i}",
                    cluster_id="c-7xk2p",
                    project_id=PROJECT,
                    role_id="project-member",
                    user_id=ALICE_UID,
                    user_principal_id=None,
                    labels={"bench": "1"},
                    annotations={},
                )
                baseline_s.append(time.perf_counter() - started)
                await client.delete_binding(
                    RoleBinding(id=made.id, scope=Scope.PROJECT, role_id="project-member", project_id=PROJECT)
                )
        finally:
            emulator.configure(latency=0.0)
            await client.aclose()
            await bot.aclose()
    svc_med, base_med = statistics.median(service_s), statistics.median(baseline_s)
    return {
        "runs": runs,
        "latency_ms": latency * 1000,
        "service_median_ms": svc_med * 1000,
        "service_p95_ms": p95(service_s) * 1000,
        "baseline_median_ms": base_med * 1000,
        "baseline_p95_ms": p95(baseline_s) * 1000,
        "ratio_median": svc_med / base_med,
        "rancher_requests_per_grant": statistics.median(requests_per_grant),
        "baseline": ("get user ∥ list target bindings" if concurrent_reads else "get user, list target bindings")
        + ", then create binding",
    }


def main() -> int:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--latency", type=float, default=0.02, help="seconds the emulator adds per request")
    parser.add_argument(
        "--sequential-baseline", action="store_true", help="baseline makes the two reads one after the other"
    )
    parser.add_argument("--database", default="", help="a SQLite path or postgresql:// URL (default: a temporary file)")
    parser.add_argument("--json", default="", help="also write the figures to this file as JSON")
    args = parser.parse_args()
    with run_emulator() as emulator:
        result = asyncio.run(
            measure(
                emulator, args.runs, args.latency, concurrent_reads=not args.sequential_baseline, database=args.database
            )
        )
    if args.json:
        Path(args.json).write_text(json.dumps(result))
    print(f"grant request-to-active, self-service, Rancher emulator at {result['latency_ms']:.0f} ms per call")
    print(f"  runs                         {result['runs']}")
    print(
        f"  through Requests.request      median {result['service_median_ms']:.1f} ms   "
        f"p95 {result['service_p95_ms']:.1f} ms"
    )
    print(
        f"  bare Rancher round trips     median {result['baseline_median_ms']:.1f} ms   "
        f"p95 {result['baseline_p95_ms']:.1f} ms  ({result['baseline']})"
    )
    print(f"  ratio (median)               {result['ratio_median']:.2f}x")
    print(f"  Rancher requests per grant   {result['rancher_requests_per_grant']:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
