"""Benchmark: N grants expiring at the same second with three `accessbot serve` replicas on one PostgreSQL.

Run: python bench/replicas.py [--grants 10000] [--replicas 3] [--latency 0.02]

The Rancher emulator runs in its own process (bench/revocation.py's, one tagged binding per grant, 20 ms a call),
a throwaway PostgreSQL cluster holds the grants, and the replicas are real `python -m bot serve` processes: one
holds the jobs lease and revokes, the others serve HTTP and stand by. Prints the seconds from the expiry second to
the last grant `expired`, the rate, and which replica did the work; compare with bench/revocation.py (one process,
no HTTP replicas) and bench/databases.py (the same sweep on SQLite and PostgreSQL).
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import revocation  # bench/revocation.py: the emulator process and its fixture

from accessbot_emulators.postgres import free_port, running_cluster
from bot.adapters.store import open_storage
from bot.demo import botconfig

ROOT = Path(__file__).resolve().parent.parent

UNREACHABLE = "http://127.0.0.1:9"


def main() -> int:
    """Seed the grants, start the replicas, time the wave."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grants", type=int, default=10_000)
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name, running_cluster() as pg, contextlib.ExitStack() as stack:
        tmp = Path(tmp_name)
        child, base = revocation.start_emulator(tmp, args.grants, args.latency)
        stack.callback(child.terminate)
        ids = {b["name"]: b["id"] for b in httpx.get(f"{base}/_emulator/state").json()["projectRoleTemplateBinding"]}
        url = pg.create_database("replicas")
        store = open_storage(url)
        stack.callback(store.database.close)
        expires = int(time.time()) + 20 + 2 * args.replicas
        revocation.insert_grants(store, ids, args.grants, expires)
        data = botconfig.config_data(
            database=url,
            public_url=UNREACHABLE,
            slack_api_url=UNREACHABLE + "/api/",
            oidc_issuer=UNREACHABLE,
            rancher_url=base,
            rancher_token=revocation.BOT_KEY,
            overrides={
                "rancher": {"max_connections": args.concurrency, "timeout": "30s"},
                "schedule": {"revoke_concurrency": args.concurrency, "sweep_interval": "1s", "lease_ttl": "15s"},
            },
        )
        config = tmp / "config.yaml"
        config.write_text(yaml.safe_dump(data))
        urls = []
        for i in range(args.replicas):
            port = free_port()
            log = (tmp / f"replica-{i}.log").open("wb")
            argv = [sys.executable, "-m", "bot", "--config", str(config), "serve", "--host", "127.0.0.1"]
            process = subprocess.Popen(
                [*argv, "--port", str(port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )
            stack.callback(process.wait, 30)
            stack.callback(process.terminate)
            urls.append(f"http://127.0.0.1:{port}")
        while time.time() < expires:
            time.sleep(0.05)
        roles = []
        for replica in urls:
            with contextlib.suppress(httpx.HTTPError):
                roles.append(httpx.get(f"{replica}/healthz", timeout=5).json()["jobs"])
        while store.grants.counts().get("expired", 0) < args.grants:
            if time.time() > expires + 600:
                print("FAIL: not every grant expired within 10 minutes", store.grants.counts())
                return 1
            time.sleep(0.1)
        seconds = time.time() - expires
    print(f"{args.grants:,} grants expiring at once, {args.replicas} replicas on PostgreSQL (roles {roles})")
    print(f"  all expired {seconds:.1f} s after the expiry second ({args.grants / seconds:.0f} per second)")
    print(f"  Rancher at {args.latency * 1000:.0f} ms a call, revoke_concurrency {args.concurrency}, sweep every 1 s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
