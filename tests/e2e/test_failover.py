"""Failover without loss: three `accessbot serve` processes on one PostgreSQL, the leader killed mid-wave.

Real parts only: three replicas started as processes (`python -m bot serve`), a real PostgreSQL (the
`postgres_url` fixture), the Rancher emulator with 20 ms per call and the Slack emulator on loopback. 1,000 grants
expire at the same second; once the leader has revoked part of them it is killed with SIGKILL (no lease release, no
cleanup). A standby must lead within `schedule.lease_ttl` + one sweep interval, every grant must end `expired` with
its Rancher binding gone, each expiry must be queued for announcement exactly once, and what Slack received must
repeat at most one message (chat.postMessage has no idempotency key, so the one message in flight at the kill may be
sent twice: the outbox's documented once-after-crash window), and `accessbot audit verify` must pass on the shared
chain. The outbox paces itself to Slack's one message a second per channel (issue 12), so 1,000 DMs to one person
take over a quarter of an hour to deliver: the test checks the queue and the deliveries made so far, not the end of
the delivery.
"""

from __future__ import annotations

import collections
import contextlib
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from accessbot_emulators.postgres import free_port
from accessbot_emulators.rancher import RancherEmulator
from accessbot_emulators.slack import SlackEmulator
from bot.adapters.store import open_storage
from bot.core import audit_actions as A
from bot.core.model import Grant, GrantState, OutboxStatus, Target
from bot.demo import botconfig
from bot.services.grants import binding_name
from tests.conftest import BOT_KEY, LABEL, UNREACHABLE, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

GRANTS = 1000
LEASE_TTL, SWEEP = 6, 1
REPLICAS = 3
ALICE, ALICE_SUB, ALICE_RANCHER = "U0ALICE001", "3f2a9c1e-5b7d-4e8a-9c0f-1a2b3c4d5e6f", "u-x7xfihrhhs"
PROJECT = Target("c-7xk2p", "c-7xk2p:p-4mz8q")
EXPIRED_DM = re.compile(r"`(g-\d+)` expired")


@dataclass
class Replica:
    """One `accessbot serve` process and where it answers."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def health(self) -> dict[str, Any] | None:
        """Its /healthz answer, or None while it does not answer."""
        try:
            return dict(httpx.get(f"{self.url}/healthz", timeout=2).json())
        except (httpx.HTTPError, ValueError):
            return None


@contextlib.contextmanager
def replicas(config: Path, tmp: Path, count: int) -> Iterator[list[Replica]]:
    """Start `count` replicas on free loopback ports; stop the ones still running afterwards."""
    started: list[Replica] = []
    try:
        for i in range(count):
            port = free_port()
            log = tmp / f"replica-{i}.log"
            argv = [sys.executable, "-m", "bot", "--config", str(config), "serve", "--host", "127.0.0.1"]
            with log.open("wb") as out:
                process = subprocess.Popen(
                    [*argv, "--port", str(port)],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            started.append(Replica(process, f"http://127.0.0.1:{port}", log))
        yield started
    finally:
        for replica in started:
            if replica.process.poll() is None:
                replica.process.terminate()
        for replica in started:
            with contextlib.suppress(subprocess.TimeoutExpired):
                replica.process.wait(timeout=20)
            if replica.process.poll() is None:
                replica.process.kill()


def _leader(group: list[Replica]) -> Replica | None:
    for replica in group:
        health = replica.health()
        if health is not None and health.get("jobs") == "leader":
            return replica
    return None


def test_killing_the_leader_mid_wave_loses_and_repeats_nothing(
    postgres_url: str, rancher: RancherEmulator, slack: SlackEmulator, tmp_path: Path
) -> None:
    """SIGKILL to the leader during a 1,000-grant expiry: a standby leads in time, all end once, the chain holds."""
    rancher.reset()
    rancher.configure(latency=0.02)  # a Rancher call takes 20 ms, so the wave lasts seconds
    slack.reset()
    slack.add_user(ALICE, "alice@example.com", "alice")
    store = open_storage(postgres_url)
    now = int(time.time())
    expires = now + 10  # every grant falls due at the same second, once all three replicas run
    with store.tx.atomic():
        for _ in range(GRANTS):
            gid = store.grants.new_id()
            binding = rancher.add_binding(
                "prtb",
                name=binding_name(gid),
                projectId=PROJECT.project_id,
                roleTemplateId="project-member",
                userId=ALICE_RANCHER,
                labels={LABEL: gid},
            )
            grant = Grant(
                id=gid,
                slack_user=ALICE,
                subject=ALICE_SUB,
                target=PROJECT,
                role_id="project-member",
                duration_s=3600,
                rule="dev-self-service",
                state=GrantState.ACTIVE,
                requested_at=expires - 3600,
                activated_at=expires - 3600,
                expires_at=expires,
                binding_id=binding["id"],
                binding_name=binding_name(gid),
            )
            store.grants.insert(grant, now)
    data = botconfig.config_data(
        database=postgres_url,
        public_url="http://127.0.0.1:9",
        slack_api_url=slack.api_url,
        oidc_issuer=UNREACHABLE,
        rancher_url=rancher.url,
        rancher_token=BOT_KEY,
        overrides={
            "log_level": "info",
            "schedule": {
                "lease_ttl": f"{LEASE_TTL}s",
                "sweep_interval": f"{SWEEP}s",
                "outbox_interval": "1s",
                "reconcile_interval": "1h",
                "overdue_alert_after": "10m",
            },
        },
    )
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(data))
    try:
        with replicas(config, tmp_path, REPLICAS) as group:
            wait_until(lambda: all(r.health() for r in group), timeout=60, interval=0.2)
            leader = wait_until(lambda: _leader(group), timeout=30, interval=0.2)
            assert sum(1 for r in group if (r.health() or {}).get("jobs") == "leader") == 1
            # mid-wave: the leader has revoked some grants and not all
            wait_until(lambda: store.grants.counts().get("expired", 0) >= 100, timeout=60, interval=0.01)
            leader.process.send_signal(signal.SIGKILL)
            killed_at = time.monotonic()
            leader.process.wait(timeout=10)
            done_at_kill = store.grants.counts().get("expired", 0)
            assert done_at_kill < GRANTS, "the wave ended before the kill: nothing was tested"
            standbys = [r for r in group if r is not leader]
            successor = wait_until(lambda: _leader(standbys), timeout=LEASE_TTL + SWEEP + 30, interval=0.1)
            took = time.monotonic() - killed_at
            assert took <= LEASE_TTL + SWEEP + 1.5, f"a standby led only {took:.1f}s after the kill"
            wait_until(lambda: store.grants.counts() == {"expired": GRANTS}, timeout=90, interval=0.2)
            delivered_at_takeover = len(slack.dms(ALICE))
            wait_until(lambda: len(slack.dms(ALICE)) > delivered_at_takeover + 3, timeout=30, interval=0.2)
            assert successor.health() is not None
        tagged = [b for b in rancher.objects("projectRoleTemplateBinding") if LABEL in (b.get("labels") or {})]
        assert tagged == []
        expired_events = [e for e in store.audit.events() if e.action == A.GRANT_EXPIRED]
        every_grant = sorted(f"g-{i}" for i in range(1, GRANTS + 1))
        assert sorted(str(e.details["grant_id"]) for e in expired_events) == every_grant
        owed = store.outbox.listing([OutboxStatus.PENDING, OutboxStatus.SENT], limit=100_000)
        queued = collections.Counter(
            m.group(1)
            for message in owed
            if message.kind == "dm" and (m := EXPIRED_DM.search(str(message.payload.get("text", "")))) is not None
        )
        assert sorted(queued) == every_grant
        assert set(queued.values()) == {1}  # each expiry queued once, by whichever replica expired it
        announced = collections.Counter(
            m.group(1) for dm in slack.dms(ALICE) if (m := EXPIRED_DM.search(dm.text or "")) is not None
        )
        assert set(announced) <= set(every_grant)
        repeated = {gid: n for gid, n in announced.items() if n > 1}
        assert sum(n - 1 for n in repeated.values()) <= 1, repeated  # at most the one message in flight
        verify = subprocess.run(
            [sys.executable, "-m", "bot", "--config", str(config), "audit", "verify"],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        assert verify.returncode == 0, verify.stdout + verify.stderr
        assert "chain intact" in verify.stdout
        print(f"failover: killed after {done_at_kill}/{GRANTS} expiries, a standby led {took:.1f}s later")
    finally:
        rancher.configure(latency=0.0)
        store.database.close()
