"""Job bodies against the Rancher and Slack emulators over HTTP and a real SQLite store."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from slack_sdk.web.async_client import AsyncWebClient

from accessbot_emulators.rancher import RancherEmulator, run_emulator
from accessbot_emulators.slack import SlackEmulator
from bot.adapters.clock import SystemClock
from bot.adapters.rancher import RancherClient
from bot.adapters.slack_notifier import SlackNotifier
from bot.adapters.store import open_storage
from bot.core import audit_actions as A
from bot.core import fencing
from bot.core.digest import CATEGORIES
from bot.core.errors import FencedOut
from bot.core.model import AuditEvent, Grant, GrantChange, GrantState, Target
from bot.core.policy import Policy, Rule
from bot.core.storage import Storage
from bot.demo import botconfig
from bot.scheduler import JobBodies, JobScheduler, Schedule
from bot.services.audit import AuditLog
from bot.services.grants import GrantServices, binding_name
from bot.services.jobs.activations import ActivationRetries
from bot.services.jobs.digest import DigestSettings, WeeklyDigest
from bot.services.jobs.lease import LeaderLease
from bot.services.jobs.reconcile import Reconciler, ReconcileSettings
from bot.services.jobs.sweep import RevocationSweep, SweepSettings
from bot.services.outbox import Outbox
from tests import factories
from tests.conftest import BOT_KEY, FakeClock

ALICE = "U0ALICE001"
ALICE_SUB = "3f2a9c1e-5b7d-4e8a-9c0f-1a2b3c4d5e6f"
ALICE_RANCHER = "u-x7xfihrhhs"
LABEL = "accessbot.io/grant"
PAYMENTS = Target("c-7xk2p", "c-7xk2p:p-4mz8q")
CHANNELS = botconfig.CHANNELS
SECURITY = CHANNELS["security"]
T0 = 1_800_000_000  # Fri 2027-01-15 08:00 UTC
POLICY = Policy(
    rules=(
        Rule(
            name="dev-self-service",
            groups=("engineering",),
            roles=("project-member", "cluster-member"),
            max_duration=timedelta(hours=8),
            default_duration=timedelta(hours=1),
            clusters=("dev-*",),
            projects=("dev-*/*",),
        ),
    )
)


@dataclass(frozen=True)
class JobSettings:
    """The settings these tests vary (the rest are the defaults wiring uses)."""

    revoke_concurrency: int = 16
    repair_drift: bool = False
    report_untagged: bool = False


@dataclass
class World:
    """Jobs wired to real adapters: SQLite, the Rancher client and the Slack notifier on the emulators."""

    store: Storage
    rancher: RancherEmulator
    slack: SlackEmulator
    clock: Any
    jobs: JobBodies
    grants: GrantServices
    audit: AuditLog
    outbox: Outbox
    client: Any
    db_path: Path

    def active_grant(self, *, expires_in: int, activated_ago: int = 600, bind: bool = True) -> Grant:
        """Insert an active grant through the store, with its tagged binding created in the emulator."""
        now = self.clock.now()
        gid = self.store.grants.new_id()
        binding_id = None
        if bind:
            obj = self.rancher.add_binding(
                "prtb",
                name=binding_name(gid),
                projectId=PAYMENTS.project_id,
                roleTemplateId="project-member",
                userId=ALICE_RANCHER,
                labels={LABEL: gid},
                annotations={"accessbot.io/slack-user": ALICE},
            )
            binding_id = obj["id"]
        grant = Grant(
            id=gid,
            slack_user=ALICE,
            subject=ALICE_SUB,
            target=PAYMENTS,
            role_id="project-member",
            duration_s=activated_ago + expires_in,
            rule="dev-self-service",
            state=GrantState.ACTIVE,
            requested_at=now - activated_ago,
            self_service=True,
            activated_at=now - activated_ago,
            expires_at=now + expires_in,
            binding_id=binding_id,
            binding_name=binding_name(gid),
            user_principal_id=f"genericoidc_user://{ALICE_SUB}",
        )
        return factories.grant(self.store, grant, now=now - activated_ago)

    def tagged(self, grant_id: str) -> list[dict[str, Any]]:
        """Emulator bindings carrying the grant's tag."""
        out = []
        for kind in ("clusterRoleTemplateBinding", "projectRoleTemplateBinding"):
            out += [b for b in self.rancher.objects(kind) if (b.get("labels") or {}).get(LABEL) == grant_id]
        return out

    def audit_rows(self, action: str) -> list[AuditEvent]:
        """Audit events of one action."""
        return [e for e in self.store.audit.events() if e.action == action]

    def security_posts(self, prefix: str) -> list[str]:
        """Keys of queued security-channel messages starting with `prefix`."""
        return factories.queued_keys(self.store, SECURITY, prefix)

    def state(self, grant_id: str) -> GrantState:
        """The stored state of a grant."""
        grant = self.store.grants.get(grant_id)
        assert grant is not None
        return grant.state

    def grant(self, grant_id: str) -> Grant:
        """The stored grant."""
        grant = self.store.grants.get(grant_id)
        assert grant is not None
        return grant


@pytest.fixture(scope="module")
def emulator() -> Iterator[RancherEmulator]:
    """One Rancher emulator for this module (reset per test)."""
    with run_emulator() as emu:
        yield emu


def make_world(
    store: Storage,
    emulator: RancherEmulator,
    slack: SlackEmulator,
    clock: Any,
    settings: JobSettings,
    *,
    db_path: Path,
    wrap: Callable[[RancherClient], Any] | None = None,
    key: str = BOT_KEY,
) -> tuple[World, list[Any]]:
    """Wire the job bodies, the grant use cases and adapters around one store; return the world and clients to close."""
    slack.add_user(ALICE, "alice@example.com", "alice")
    if store.links.get(ALICE) is None:
        factories.link(
            store.links, ALICE, ALICE_SUB, ["engineering"], now=clock.now(), name="Alice", email="alice@example.com"
        )
    real = RancherClient(emulator.url, key, retries=0, timeout=5)
    client = wrap(real) if wrap is not None else real
    notifier = SlackNotifier(AsyncWebClient(token=botconfig.BOT_TOKEN, base_url=slack.api_url))
    built = factories.build_grant_world(
        store, rancher=client, clock=clock, policy=POLICY, channels=CHANNELS, notifier=notifier
    )
    grants, audit, outbox = built.grants, built.audit, built.outbox
    sweep = RevocationSweep(
        tx=store.tx,
        grants=store.grants,
        lifecycle=grants.lifecycle,
        audit=audit,
        outbox=outbox,
        settings=SweepSettings(revoke_concurrency=settings.revoke_concurrency),
    )
    reconciler = Reconciler(
        tx=store.tx,
        grants=store.grants,
        marks=store.marks,
        rancher=client,
        directory=grants.directory,
        bindings=grants.bindings,
        lifecycle=grants.lifecycle,
        sweep=sweep,
        audit=audit,
        outbox=outbox,
        settings=ReconcileSettings(
            grant_label=LABEL, repair_drift=settings.repair_drift, report_untagged=settings.report_untagged
        ),
    )
    digest = WeeklyDigest(
        tx=store.tx,
        grants=store.grants,
        marks=store.marks,
        audit=audit,
        outbox=outbox,
        open_reader=lambda: open_storage(db_path, migrate=False),
        clock=clock,
        settings=DigestSettings(),
    )

    async def warn(now: int) -> int:
        return await grants.lifecycle.warn_expiring(now, 600)

    activations = ActivationRetries(grants=store.grants, lifecycle=grants.lifecycle)
    jobs = JobBodies(
        expire_grants=sweep.expire_grants,
        finish_activations=activations.run,
        expire_requests=grants.approvals.expire_requests,
        warn_expiring=warn,
        reconcile=reconciler.reconcile,
        deliver_outbox=outbox.deliver,
        refresh_identities=_nothing,
        post_digest=digest.post,
        post_anchor=_nothing,
        resume_revocations=sweep.resume_claimed,
        reviews=_nothing,
    )
    return World(store, emulator, slack, clock, jobs, grants, audit, outbox, client, db_path), [real]


async def _nothing(now: int) -> None:
    return None


@pytest.fixture
async def world(emulator: RancherEmulator, slack: SlackEmulator, tmp_path: Path) -> AsyncIterator[World]:
    """A fresh store, reset emulators and the jobs wired to them."""
    emulator.reset()
    emulator.configure(latency=0.0, failure_rate=0.0)
    for binding in emulator.objects("clusterRoleTemplateBinding"):  # the demo estate ships one tagged orphan
        if LABEL in (binding.get("labels") or {}):
            emulator.remove_binding(binding["id"])
    slack.reset()
    slack.set_down(False)
    path = tmp_path / "bot.db"
    store = open_storage(path)
    w, clients = make_world(store, emulator, slack, FakeClock(), JobSettings(), db_path=path)
    yield w
    for client in clients:
        await client.aclose()
    store.database.close()


def with_settings(world: World, **changes: Any) -> World:
    """The same world with other job settings."""
    w, _ = make_world(
        world.store,
        world.rancher,
        world.slack,
        world.clock,
        replace(JobSettings(), **changes),
        db_path=world.db_path,
        wrap=lambda _: world.client,
    )
    return w


# --- revocation ---------------------------------------------------------------------------------------------


async def test_sweep_revokes_a_due_grant_and_leaves_others_alone(world: World) -> None:
    """A grant past its expiry loses its binding and becomes expired; an unexpired one is untouched."""
    due = world.active_grant(expires_in=60)
    later = world.active_grant(expires_in=3600)
    world.clock.value += 61
    result = await world.jobs.expire_grants(world.clock.now())
    assert (result.claimed, result.revoked, result.failed) == (1, 1, 0)
    assert world.state(due.id) is GrantState.EXPIRED
    assert world.tagged(due.id) == []
    assert world.state(later.id) is GrantState.ACTIVE
    assert len(world.tagged(later.id)) == 1
    assert len(world.audit_rows(A.GRANT_EXPIRED)) == 1
    again = await world.jobs.expire_grants(world.clock.now())
    assert (again.claimed, again.revoked) == (0, 0)


async def test_overdue_grants_are_revoked_on_the_first_run_after_downtime(
    emulator: RancherEmulator, slack: SlackEmulator, tmp_path: Path
) -> None:
    """Grants that expired while no process ran (wall clock moved 3 h) are all revoked by the first sweep."""
    emulator.reset()
    slack.reset()
    path = tmp_path / "bot.db"
    store = open_storage(path)
    with time_machine.travel(datetime(2027, 1, 15, 8, 0, tzinfo=UTC), tick=True) as traveller:
        w, clients = make_world(store, emulator, slack, SystemClock(), JobSettings(), db_path=path)
        grants = [w.active_grant(expires_in=300 + 60 * i) for i in range(5)]
        traveller.shift(timedelta(hours=3))  # the bot was down for three hours
        result = await w.jobs.expire_grants(w.clock.now())
        assert result.claimed == 5
        assert result.revoked == 5
        assert all(w.state(g.id) is GrantState.EXPIRED and w.tagged(g.id) == [] for g in grants)
        ended = [w.grant(g.id).ended_at for g in grants]
        assert all(e is not None and e >= int(datetime(2027, 1, 15, 11, 0, tzinfo=UTC).timestamp()) for e in ended)
    for client in clients:
        await client.aclose()
    store.database.close()


async def test_rancher_outage_delays_revocation_with_one_alert_and_one_resolution(world: World) -> None:
    """With Rancher answering 503 the grant stays revoking, alerts once past 2 minutes, and resolves once later."""
    grant = world.active_grant(expires_in=10)
    world.rancher.configure(failure_rate=1.0, failure_status=503)
    world.clock.value += 11
    first = await world.jobs.expire_grants(world.clock.now())
    assert (first.claimed, first.failed, first.alerted) == (1, 1, 0)
    assert world.state(grant.id) is GrantState.REVOKING
    attempts, next_at = world.grant(grant.id).attempts, world.grant(grant.id).next_attempt_at
    assert attempts == 1
    assert world.clock.now() < next_at <= world.clock.now() + 5
    for step in (60, 130, 400, 900):  # 2 minutes pass: one alert, however many sweeps fail
        world.clock.value = T0 + 10 + step
        await world.jobs.expire_grants(world.clock.now())
    assert world.state(grant.id) is GrantState.REVOKING
    assert len(world.tagged(grant.id)) == 1
    assert len(world.audit_rows(A.GRANT_REVOCATION_OVERDUE)) == 1
    assert world.security_posts(f"overdue:{grant.id}") == [f"overdue:{grant.id}"]
    assert world.grant(grant.id).attempts >= 3
    world.rancher.configure(failure_rate=0.0)
    world.clock.value += 3600
    done = await world.jobs.expire_grants(world.clock.now())
    assert (done.revoked, done.resolved) == (1, 1)
    assert world.state(grant.id) is GrantState.EXPIRED
    assert world.tagged(grant.id) == []
    world.clock.value += 60
    await world.jobs.expire_grants(world.clock.now())
    assert len(world.audit_rows(A.GRANT_REVOCATION_RECOVERED)) == 1
    assert world.security_posts(f"overdue-resolved:{grant.id}") == [f"overdue-resolved:{grant.id}"]
    assert len(world.audit_rows(A.GRANT_REVOCATION_OVERDUE)) == 1


async def test_revocation_of_a_binding_already_gone_counts_as_done(world: World) -> None:
    """A binding someone already deleted (404) does not block the grant from expiring."""
    grant = world.active_grant(expires_in=5)
    assert grant.binding_id is not None
    world.rancher.remove_binding(grant.binding_id)
    world.clock.value += 6
    result = await world.jobs.expire_grants(world.clock.now())
    assert result.revoked == 1
    assert world.state(grant.id) is GrantState.EXPIRED


class CountingRancher:
    """The real Rancher client, counting how many binding deletions are in flight at once."""

    def __init__(self, inner: RancherClient) -> None:
        self._inner = inner
        self.in_flight = 0
        self.peak = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def delete_binding(self, binding: Any) -> bool:
        """Delete through the real client while counting."""
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            return await self._inner.delete_binding(binding)
        finally:
            self.in_flight -= 1


async def test_sweep_revokes_with_bounded_concurrency(
    emulator: RancherEmulator, slack: SlackEmulator, tmp_path: Path
) -> None:
    """Forty due grants at 20 ms per Rancher call are revoked with at most `revoke_concurrency` deletes in flight."""
    emulator.reset()
    path = tmp_path / "bot.db"
    store = open_storage(path)
    counting: list[CountingRancher] = []

    def wrap(client: RancherClient) -> Any:
        counting.append(CountingRancher(client))
        return counting[0]

    w, clients = make_world(
        store, emulator, slack, FakeClock(), JobSettings(revoke_concurrency=4), db_path=path, wrap=wrap
    )
    grants = [w.active_grant(expires_in=1) for _ in range(40)]
    emulator.configure(latency=0.02)
    w.clock.value += 2
    try:
        result = await w.jobs.expire_grants(w.clock.now())
    finally:
        emulator.configure(latency=0.0)
    assert result.revoked == 40
    assert all(w.tagged(g.id) == [] for g in grants)
    assert counting[0].peak == 4
    for client in clients:
        await client.aclose()
    store.database.close()


class HeldRancher:
    """The real Rancher client whose first binding deletion waits until the test lets it go (a slow Rancher call)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.release = asyncio.Event()
        self._first = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def delete_binding(self, binding: Any) -> Any:
        """Delete through the real client; the first call waits for `release` first."""
        if self._first:
            self._first = False
            await self.release.wait()
        return await self._inner.delete_binding(binding)


def batching_sweep(world: World, rancher: HeldRancher, interval: float = 3600) -> RevocationSweep:
    """A sweep whose batches never fill: it records on a tick every `interval` s (by default, only at the end)."""
    lifecycle = factories.build_grant_world(
        world.store, rancher=rancher, clock=world.clock, policy=POLICY, channels=CHANNELS
    ).grants.lifecycle
    return RevocationSweep(
        tx=world.store.tx,
        grants=world.store.grants,
        lifecycle=lifecycle,
        audit=world.audit,
        outbox=world.outbox,
        settings=SweepSettings(revoke_concurrency=4, record_batch=1000, record_interval=interval),
    )


async def until_deleted(world: World, grants: list[Grant], count: int) -> None:
    """Wait (bounded) until Rancher no longer has the bindings of `count` of `grants`."""
    for _ in range(500):
        if sum(1 for g in grants if world.tagged(g.id) == []) >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the bindings were not deleted")


def announced(world: World, grants: list[Grant]) -> list[int]:
    """How many `expired` DMs are queued for each grant, and how many grant.expired events it has."""
    events = Counter(e.details.get("grant_id") for e in world.audit_rows(A.GRANT_EXPIRED))
    return [len(factories.queued_keys(world.store, ALICE, f"dm:{g.id}:expired")) + events[g.id] for g in grants]


async def test_a_crash_between_rancher_deletes_and_the_batch_commit_leaves_grants_revoking_for_the_next_sweep(
    world: World,
) -> None:
    """Deleted in Rancher, not yet recorded when the process dies: still `revoking`, then finished, announced once."""
    grants = [world.active_grant(expires_in=1) for _ in range(6)]
    held = HeldRancher(world.client)
    world.clock.value += 2
    run = asyncio.create_task(batching_sweep(world, held).expire_grants(world.clock.now()))
    await until_deleted(world, grants, 5)  # every deletion but the held one is done, none recorded yet
    run.cancel()  # the process dies here
    with pytest.raises(asyncio.CancelledError):
        await run
    assert [world.state(g.id) for g in grants] == [GrantState.REVOKING] * 6
    assert announced(world, grants) == [0] * 6
    world.clock.value += SweepSettings().stuck_after + 1
    result = await world.jobs.expire_grants(world.clock.now())  # the next run (a fresh process) finishes them
    assert (result.retried, result.revoked, result.failed) == (6, 6, 0)
    assert all(world.state(g.id) is GrantState.EXPIRED and world.tagged(g.id) == [] for g in grants)
    assert announced(world, grants) == [2] * 6  # one DM and one audit event each
    assert world.audit.verify().ok


async def test_revocations_that_finished_are_recorded_within_the_interval_while_a_slow_delete_waits(
    world: World,
) -> None:
    """A slow Rancher call does not hold back the others: they are recorded (and announced) on the next tick."""
    grants = [world.active_grant(expires_in=1) for _ in range(6)]
    held = HeldRancher(world.client)
    world.clock.value += 2
    run = asyncio.create_task(batching_sweep(world, held, interval=0.05).expire_grants(world.clock.now()))
    for _ in range(500):
        if sum(1 for g in grants if world.state(g.id) is GrantState.EXPIRED) == 5:
            break
        await asyncio.sleep(0.01)
    assert sorted(world.state(g.id).value for g in grants) == ["expired"] * 5 + ["revoking"]
    held.release.set()
    result = await run
    assert (result.revoked, result.failed) == (6, 0)
    assert announced(world, grants) == [2] * 6
    assert world.audit.verify().ok


async def test_a_batch_commit_refused_by_the_fencing_check_writes_nothing(world: World) -> None:
    """A standby took the lease while the deletes ran: the batch raises FencedOut, changes nothing, and the new
    leader finishes every grant, each announced once."""
    old = world.store.leases.take("jobs", "leader-a", now=world.clock.now(), ttl=60)
    assert old is not None
    grants = [world.active_grant(expires_in=1) for _ in range(6)]
    held = HeldRancher(world.client)
    world.clock.value += 2
    with fencing.fenced(fencing.Fence("jobs", "leader-a", old)):
        run = asyncio.create_task(batching_sweep(world, held).expire_grants(world.clock.now()))
    await until_deleted(world, grants, 5)
    assert [world.state(g.id) for g in grants] == [GrantState.REVOKING] * 6  # the claim was committed first
    events_before = world.store.audit.count()
    new = world.store.leases.take("jobs", "leader-b", now=world.clock.now() + 120, ttl=60)
    assert new is not None
    held.release.set()
    with pytest.raises(FencedOut):
        await run
    assert [world.state(g.id) for g in grants] == [GrantState.REVOKING] * 6
    assert world.store.audit.count() == events_before
    assert announced(world, grants) == [0] * 6
    world.clock.value += 120
    with fencing.fenced(fencing.Fence("jobs", "leader-b", new)):
        result = await world.jobs.resume_revocations(world.clock.now())
    assert (result.revoked, result.failed) == (6, 0)
    assert all(world.state(g.id) is GrantState.EXPIRED for g in grants)
    assert announced(world, grants) == [2] * 6
    assert world.audit.verify().ok


# --- reconciliation -----------------------------------------------------------------------------------------


async def test_orphan_tagged_binding_is_deleted_audited_and_reported(world: World) -> None:
    """A binding tagged with a grant the bot does not know is deleted, audited and reported to security."""
    orphan = world.rancher.add_binding(
        "prtb",
        name="accessbot-g-999",
        projectId=PAYMENTS.project_id,
        roleTemplateId="project-member",
        userId=ALICE_RANCHER,
        labels={LABEL: "g-999"},
    )
    kept = world.active_grant(expires_in=3600)
    result = await world.jobs.reconcile(world.clock.now())
    assert result.orphans_deleted == 1
    assert world.rancher.get("projectRoleTemplateBinding", orphan["id"]) is None
    assert len(world.tagged(kept.id)) == 1
    (row,) = world.audit_rows(A.DRIFT_ORPHAN_DELETED)
    assert row.details["binding_id"] == orphan["id"]
    assert len(world.security_posts("orphan:")) == 1


async def test_binding_of_an_ended_grant_is_deleted(world: World) -> None:
    """A tagged binding whose grant is already expired in the database is removed as an orphan."""
    grant = world.active_grant(expires_in=-30)
    world.store.grants.update(grant.id, [GrantState.ACTIVE], GrantChange(state=GrantState.EXPIRED), world.clock.now())
    result = await world.jobs.reconcile(world.clock.now())
    assert result.orphans_deleted == 1
    assert world.tagged(grant.id) == []


async def test_missing_binding_marks_the_grant_drifted_once_without_repair(world: World) -> None:
    """An active grant whose binding was deleted in Rancher is marked drifted and reported once, not recreated."""
    grant = world.active_grant(expires_in=3600)
    assert grant.binding_id is not None
    world.rancher.remove_binding(grant.binding_id)
    first = await world.jobs.reconcile(world.clock.now())
    assert (first.missing, first.repaired) == (1, 0)
    stored = world.store.grants.get(grant.id)
    assert stored is not None
    assert stored.drifted
    assert stored.state is GrantState.ACTIVE
    assert world.tagged(grant.id) == []
    world.clock.value += 600
    await world.jobs.reconcile(world.clock.now())
    assert len(world.audit_rows(A.DRIFT_MISSING_BINDING)) == 1
    assert len(world.security_posts("drift-missing:")) == 1


async def test_missing_binding_is_recreated_when_repair_is_on(world: World) -> None:
    """With repair_drift the binding comes back tagged, the grant records it and is no longer drifted."""
    w = with_settings(world, repair_drift=True)
    grant = w.active_grant(expires_in=3600)
    assert grant.binding_id is not None
    w.rancher.remove_binding(grant.binding_id)
    result = await w.jobs.reconcile(w.clock.now())
    assert (result.missing, result.repaired) == (1, 1)
    (binding,) = w.tagged(grant.id)
    assert binding["name"] == binding_name(grant.id)
    assert binding["roleTemplateId"] == "project-member"
    stored = w.store.grants.get(grant.id)
    assert stored is not None
    assert not stored.drifted
    assert stored.binding_id == binding["id"]
    assert len(w.audit_rows(A.DRIFT_REPAIRED)) == 1
    again = await w.jobs.reconcile(w.clock.now())
    assert (again.missing, again.repaired, again.orphans_deleted) == (0, 0, 0)


async def test_stuck_activating_and_revoking_grants_are_finished(world: World) -> None:
    """A grant left activating gets its binding and turns active; one left revoking loses it and expires."""
    now = world.clock.now()
    gid = world.store.grants.new_id()
    activating = Grant(
        id=gid,
        slack_user=ALICE,
        subject=ALICE_SUB,
        target=PAYMENTS,
        role_id="project-member",
        duration_s=3600,
        rule="dev-self-service",
        state=GrantState.ACTIVATING,
        requested_at=now - 900,
        binding_name=binding_name(gid),
        user_principal_id=f"genericoidc_user://{ALICE_SUB}",
    )
    factories.grant(world.store, activating, now=now - 900)
    revoking = world.active_grant(expires_in=-300)
    world.store.grants.update(revoking.id, [GrantState.ACTIVE], GrantChange(state=GrantState.REVOKING), now - 900)
    fresh = world.active_grant(expires_in=3600)
    world.store.grants.update(fresh.id, [GrantState.ACTIVE], GrantChange(state=GrantState.REVOKING), now)
    result = await world.jobs.reconcile(now)
    assert (result.activations_finished, result.revocations_finished) == (1, 1)
    assert world.state(gid) is GrantState.ACTIVE
    assert len(world.tagged(gid)) == 1
    assert world.state(revoking.id) is GrantState.EXPIRED
    assert world.tagged(revoking.id) == []
    assert world.state(fresh.id) is GrantState.REVOKING  # just started by someone else: not stuck yet


async def test_untagged_standing_bindings_are_reported_once(world: World) -> None:
    """With report_untagged, standing bindings of governed roles are reported (not deleted), each only once."""
    w = with_settings(world, report_untagged=True)
    before = {b["id"] for b in w.rancher.objects("clusterRoleTemplateBinding")}
    first = await w.jobs.reconcile(w.clock.now())
    assert first.untagged_reported >= 1
    assert {b["id"] for b in w.rancher.objects("clusterRoleTemplateBinding")} == before
    second = await w.jobs.reconcile(w.clock.now())
    assert second.untagged_reported == 0
    assert len(w.audit_rows(A.DRIFT_UNTAGGED)) == first.untagged_reported


# --- two processes ------------------------------------------------------------------------------------------


async def test_two_processes_on_one_database_run_each_job_once(
    emulator: RancherEmulator, slack: SlackEmulator, tmp_path: Path
) -> None:
    """Two schedulers with their own connections and owners: only the lease holder runs; each grant ends once."""
    emulator.reset()
    slack.reset()
    path = tmp_path / "shared.db"
    stores = [open_storage(path), open_storage(path)]
    clock = FakeClock()
    worlds, closers = [], []
    for store in stores:
        w, clients = make_world(store, emulator, slack, clock, JobSettings(), db_path=path)
        worlds.append(w)
        closers += clients
    grants = [worlds[0].active_grant(expires_in=5) for _ in range(6)]
    factories.queue(worlds[0].store, "post", CHANNELS["grants"], "hello", "hello", now=clock.now())
    schedulers = [
        JobScheduler(w.jobs, LeaderLease(w.store.leases, f"proc-{i}", 60, clock=clock), Schedule(), clock)
        for i, w in enumerate(worlds)
    ]
    for s in schedulers:
        s.register()
    assert [s._bid() for s in schedulers] == [True, False]
    clock.value += 10
    emulator.reset_counters()
    for job_id in ("expire_grants", "deliver_outbox"):
        await asyncio.gather(*(s.run_now(job_id) for s in schedulers))
    assert all(worlds[1].state(g.id) is GrantState.EXPIRED for g in grants)
    assert len(worlds[1].audit_rows(A.GRANT_EXPIRED)) == 6
    deletes = sum(n for p, n in emulator.request_counts()["by_path"].items() if p.startswith("DELETE "))
    assert deletes == 6
    dms = sorted(m.text or "" for m in slack.dms(ALICE))
    assert len(dms) == len(set(dms)) == 6  # one "expired" DM per grant, none twice
    await asyncio.gather(*(s.run_now("reconcile") for s in schedulers))
    assert len(worlds[1].audit_rows(A.DRIFT_ORPHAN_DELETED)) == 1  # the demo estate's orphan, deleted once
    assert len(slack.messages(CHANNELS["grants"])) >= 1
    assert [m.text for m in slack.messages(CHANNELS["grants"])].count("hello") == 1
    # the leader releases the lease on shutdown: the standby takes over at its next bid
    schedulers[0].lease.release()
    assert schedulers[1]._bid() is True
    for c in closers:
        await c.aclose()
    for store in stores:
        store.database.close()


async def test_concurrent_sweeps_claim_each_grant_once(
    emulator: RancherEmulator, slack: SlackEmulator, tmp_path: Path
) -> None:
    """Even without the lease, two sweeps on two connections never revoke the same grant twice."""
    emulator.reset()
    slack.reset()
    path = tmp_path / "shared.db"
    stores = [open_storage(path), open_storage(path)]
    clock = FakeClock()
    pair = [make_world(s, emulator, slack, clock, JobSettings(), db_path=path) for s in stores]
    grants = [pair[0][0].active_grant(expires_in=5) for _ in range(10)]
    clock.value += 10
    results = await asyncio.gather(*(w.jobs.expire_grants(clock.now()) for w, _ in pair))
    assert sum(r.claimed for r in results) == 10
    assert all(pair[0][0].state(g.id) is GrantState.EXPIRED for g in grants)
    assert len(pair[0][0].audit_rows(A.GRANT_EXPIRED)) == 10
    for _, clients in pair:
        for c in clients:
            await c.aclose()
    for s in stores:
        s.database.close()


def test_lease_is_taken_over_only_after_it_expires(tmp_path: Path) -> None:
    """A second owner cannot take a live lease, takes it once the TTL passed, and the first then steps down."""
    path = tmp_path / "lease.db"
    a_store, b_store = open_storage(path), open_storage(path)
    a = LeaderLease(a_store.leases, "a", 30)
    b = LeaderLease(b_store.leases, "b", 30)
    assert a.try_acquire(T0)
    assert a.is_leader(T0)
    assert not b.try_acquire(T0 + 10)
    assert not b.is_leader(T0 + 10)
    assert a.renew(T0 + 20)
    assert not b.try_acquire(T0 + 45)
    assert b.try_acquire(T0 + 51)
    assert b.holder(T0 + 51) == "b"
    assert not a.renew(T0 + 52)
    assert not a.is_leader(T0 + 52)
    a_store.database.close()
    b_store.database.close()


# --- digest -------------------------------------------------------------------------------------------------


_TABLE_ROW = re.compile(r"^\s+(?P<label>\S.*?)\s{2,}(?P<count>\d+)(?:\s+\((?P<change>[^)]+)\))?$")


def _week_start(moment: datetime) -> int:
    monday = (moment - timedelta(days=moment.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
    return int(monday.timestamp())


async def test_digest_numbers_equal_counts_over_the_audit_table(world: World) -> None:
    """The posted digest counts each action exactly as SQL counts the audit table, once per ISO week."""
    this_week = _week_start(datetime.fromtimestamp(T0, UTC))
    last_week, before = this_week - 7 * 86400, this_week - 14 * 86400
    plan = {
        before: {A.GRANT_REQUESTED: 2, A.GRANT_EXPIRED: 1, A.LINK_CREATED: 4},
        last_week: {A.GRANT_REQUESTED: 5, A.GRANT_EXPIRED: 3, A.GRANT_REVOKED: 1, A.LINK_CREATED: 1},
        this_week: {A.GRANT_REQUESTED: 9},
    }
    for start, actions in plan.items():
        offset = 3600
        for action, count in actions.items():
            for i in range(count):
                world.clock.value = start + offset
                offset += 600
                world.audit.record(action, actor=f"U0USER{i:04d}", target="dev-eu/payments", details={"grant_id": i})
    world.clock.value = this_week + 9 * 3600 + 60  # Monday 09:01 UTC
    key = await world.jobs.post_digest(world.clock.now())
    assert key is not None
    assert key.endswith(f"W{datetime.fromtimestamp(last_week, UTC).isocalendar()[1]:02d}")
    assert await world.jobs.post_digest(world.clock.now() + 3600) is None
    sql = Counter(e.action for e in world.store.audit.events(since=last_week, until=this_week))
    message = world.store.outbox.get(f"digest:{key}")
    assert message is not None
    text = str(message.payload["text"])
    rows = {m["label"]: m for m in map(_TABLE_ROW.match, text.splitlines()) if m}
    labels = dict(CATEGORIES)
    for cat, action, previous in (
        ("grants_requested", A.GRANT_REQUESTED, 2),
        ("grants_expired", A.GRANT_EXPIRED, 1),
        ("revoked_early", A.GRANT_REVOKED, 0),
        ("links", A.LINK_CREATED, 4),
        ("unlinks", A.LINK_REMOVED, 0),
    ):
        row = rows[labels[cat]]
        assert int(row["count"]) == sql.get(action, 0)
        delta = sql.get(action, 0) - previous
        assert row["change"] == (f"{delta:+d}" if delta else "±0")
    assert "Audit chain: verified" in text
    await world.jobs.deliver_outbox(world.clock.now())
    (posted,) = world.slack.messages(CHANNELS["digest"])
    assert "Access digest" in (posted.text or "")
    (csv_file,) = world.slack.files(CHANNELS["digest"])
    assert csv_file.filename == f"accessbot-grants-{key}.csv"


async def test_a_fresh_install_posts_no_digest_for_a_week_before_it_existed(world: World) -> None:
    """With no record older than this week, Monday's digest of last week is skipped; the next week's is posted."""
    monday = _week_start(datetime.fromtimestamp(T0, UTC)) + 7 * 86400 + 9 * 3600 + 5
    world.clock.value = monday - 3600  # installed on Monday morning
    world.audit.record(A.LINK_CREATED, actor="U0USER0001", target="U0USER0001")
    assert await world.jobs.post_digest(monday) is None
    assert factories.queued_keys(world.store, CHANNELS["digest"], "digest:") == []
    assert await world.jobs.post_digest(monday + 7 * 86400) is not None


async def test_digest_is_posted_once_per_period_across_restarts(world: World, tmp_path: Path) -> None:
    """A second process (a restart) finds the period claimed and posts nothing."""
    monday = _week_start(datetime.fromtimestamp(T0, UTC)) + 9 * 3600 + 5
    world.clock.value = monday - 3 * 86400  # the bot was running during the week before
    world.audit.record(A.LINK_CREATED, actor="U0USER0001", target="U0USER0001")
    assert await world.jobs.post_digest(monday - 3600) is None  # before Monday 09:00: not due yet
    assert await world.jobs.post_digest(monday) is not None
    other = open_storage(world.db_path, migrate=False)
    w2, clients = make_world(other, world.rancher, world.slack, world.clock, JobSettings(), db_path=world.db_path)
    assert await w2.jobs.post_digest(monday + 600) is None
    assert len(factories.queued_keys(world.store, CHANNELS["digest"], "digest:")) == 1
    for c in clients:
        await c.aclose()
    other.database.close()
