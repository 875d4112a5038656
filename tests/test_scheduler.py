"""The scheduler: job ids and intervals from config, the weekly trigger across DST, and one leader per database."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import time_machine
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from accessbot_emulators.rancher import RancherEmulator, run_emulator
from bot import wiring
from bot.adapters.store import open_storage
from bot.config import Config
from bot.core.model import Grant, GrantState, Target
from bot.demo import botconfig
from bot.scheduler import JOB_IDS, JobBodies, JobScheduler, Schedule, digest_trigger
from bot.services.jobs.lease import LeaderLease
from tests import factories
from tests.conftest import BOT_KEY, UNREACHABLE, FakeClock, RunningBot, wait_until

BERLIN = ZoneInfo("Europe/Berlin")
MakeBot = Callable[..., contextlib.AbstractContextManager[RunningBot]]


@pytest.fixture(scope="module")
def emulator() -> Iterator[RancherEmulator]:
    """One Rancher emulator for this module."""
    with run_emulator() as emu:
        yield emu


def _fires(trigger: CronTrigger, start: datetime, count: int) -> list[datetime]:
    out: list[datetime] = []
    previous = None
    now = start
    for _ in range(count):
        fire = trigger.get_next_fire_time(previous, now)
        assert fire is not None
        out.append(fire)
        previous, now = fire, fire
    return out


def _offline_config(tmp_path: Path, overrides: dict[str, Any] | None = None) -> Config:
    """A bot config whose Slack, IdP and Rancher are unreachable (these tests never talk to them)."""
    return botconfig.make_config(
        database=tmp_path / "bot.db",
        public_url="http://127.0.0.1:1",
        slack_api_url=UNREACHABLE + "/api/",
        oidc_issuer=UNREACHABLE,
        rancher_url=UNREACHABLE,
        rancher_token=BOT_KEY,
        overrides=overrides,
    )


async def test_jobs_are_registered_with_configured_ids_and_intervals(tmp_path: Path) -> None:
    """Every job has its fixed id, its interval from `schedule.*`, coalescing, one instance and a misfire grace."""
    config = _offline_config(
        tmp_path,
        {
            "schedule": {
                "sweep_interval": "15s",
                "reconcile_interval": "7m",
                "outbox_interval": "3s",
                "lease_ttl": "45s",
                "digest": {"day": "tuesday", "time": "08:30", "timezone": "Europe/Berlin"},
            },
            "oidc": {"refresh_interval": "2h"},
        },
    )
    components = wiring.build(config)
    try:
        scheduler = components.scheduler
        scheduler.register()
        jobs = {job.id: job for job in scheduler.scheduler.get_jobs()}
        assert set(jobs) == set(JOB_IDS)
        intervals = {
            job_id: job.trigger.interval.total_seconds()
            for job_id, job in jobs.items()
            if isinstance(job.trigger, IntervalTrigger)
        }
        assert intervals == {
            "lease": 15.0,
            "expire_grants": 15.0,
            "finish_activations": 15.0,
            "expire_requests": 15.0,
            "warn_expiring": 15.0,
            "reconcile": 420.0,
            "deliver_outbox": 3.0,
            "refresh_identities": 60.0,  # links are due per row (2h); the job looks every minute
            "post_anchor": 3600.0,  # looks hourly, posts once per UTC day
            "reviews": 60.0,  # schedule.review_interval
        }
        for job in jobs.values():
            assert job.coalesce is True
            assert job.max_instances == 1
            assert job.misfire_grace_time >= 1
        digest = jobs["post_digest"].trigger
        assert isinstance(digest, CronTrigger)
        assert str(digest.timezone) == "Europe/Berlin"
        fire = digest.get_next_fire_time(None, datetime(2026, 11, 29, 12, 0, tzinfo=UTC))
        assert fire == datetime(2026, 12, 1, 8, 30, tzinfo=BERLIN)
    finally:
        await components.aclose()


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        # spring forward (29 March 2026): 09:00 stays 09:00 local, the UTC hour moves from 08 to 07
        (datetime(2026, 3, 24, tzinfo=UTC), ["2026-03-30T09:00:00+02:00", "2026-04-06T09:00:00+02:00"]),
        (datetime(2026, 3, 20, tzinfo=UTC), ["2026-03-23T09:00:00+01:00", "2026-03-30T09:00:00+02:00"]),
        # fall back (25 October 2026)
        (datetime(2026, 10, 20, tzinfo=UTC), ["2026-10-26T09:00:00+01:00", "2026-11-02T09:00:00+01:00"]),
        (datetime(2026, 10, 13, tzinfo=UTC), ["2026-10-19T09:00:00+02:00", "2026-10-26T09:00:00+01:00"]),
    ],
)
def test_weekly_trigger_fires_on_the_configured_weekday_in_local_time_across_dst(
    start: datetime, expected: list[str]
) -> None:
    """`monday 09:00 Europe/Berlin` fires on Mondays at 09:00 Berlin time on both sides of each DST change."""
    fires = _fires(digest_trigger("monday", "09:00", "Europe/Berlin"), start, 2)
    assert [f.isoformat() for f in fires] == expected
    assert all(f.astimezone(BERLIN).weekday() == 0 for f in fires)


def test_weekly_trigger_uses_day_names_not_crontab_numbers() -> None:
    """`sunday` means Sunday (a crontab `0` would be Monday in APScheduler 3), in the configured zone."""
    (fire,) = _fires(digest_trigger("sunday", "18:45", "America/New_York"), datetime(2026, 11, 2, tzinfo=UTC), 1)
    local = fire.astimezone(ZoneInfo("America/New_York"))
    assert (local.strftime("%A"), local.hour, local.minute) == ("Sunday", 18, 45)
    assert local.date().isoformat() == "2026-11-08"


def _jobs_role(bot: RunningBot) -> str:
    response = httpx.get(f"{bot.url}/healthz", timeout=5)
    return str(response.json()["jobs"])


def test_second_server_on_the_same_database_stays_standby_then_takes_over(make_bot: MakeBot, tmp_path: Path) -> None:
    """Two servers on one database: the first leads, the second stands by and takes the lease when the first stops."""
    db = tmp_path / "shared.db"
    overrides = {"schedule": {"lease_ttl": "3s", "sweep_interval": "1h", "reconcile_interval": "1h"}}
    with contextlib.ExitStack() as first_stack, contextlib.ExitStack() as second_stack:
        first = first_stack.enter_context(make_bot(database=db, overrides=overrides))
        second = second_stack.enter_context(make_bot(database=db, overrides=overrides))
        assert _jobs_role(first) == "leader"
        assert _jobs_role(second) == "standby"
        store = open_storage(db, migrate=False)
        holder = store.leases.holder("jobs", int(time.time()))
        store.database.close()
        assert holder is not None  # exactly one lease row, held by the leader
        first_stack.close()  # the leader shuts down and releases the lease
        wait_until(lambda: _jobs_role(second) == "leader", timeout=5)


def test_server_without_jobs_reports_off(make_bot: MakeBot) -> None:
    """`run_jobs=False` serves HTTP with no scheduler and /healthz says so."""
    with make_bot(run_jobs=False) as bot:
        assert _jobs_role(bot) == "off"


def test_server_start_revokes_grants_that_expired_during_downtime(
    make_bot: MakeBot, emulator: RancherEmulator, tmp_path: Path
) -> None:
    """A grant that expired while the bot was down is revoked right at start, not one sweep interval later."""
    emulator.reset()
    db = tmp_path / "down.db"
    store = open_storage(db)
    now = int(datetime.now(UTC).timestamp())
    binding = emulator.add_binding(
        "prtb",
        name="accessbot-g-1",
        projectId="c-7xk2p:p-4mz8q",
        roleTemplateId="project-member",
        userId="u-x7xfihrhhs",
        labels={"accessbot.io/grant": "g-1"},
    )
    factories.grant(
        store,
        Grant(
            id=store.grants.new_id(),
            slack_user="U0ALICE001",
            subject="3f2a9c1e-5b7d-4e8a-9c0f-1a2b3c4d5e6f",
            target=Target("c-7xk2p", "c-7xk2p:p-4mz8q"),
            role_id="project-member",
            duration_s=3600,
            rule="dev-self-service",
            state=GrantState.ACTIVE,
            requested_at=now - 7200,
            activated_at=now - 7200,
            expires_at=now - 3600,
            binding_id=binding["id"],
            binding_name="accessbot-g-1",
        ),
        now=now - 7200,
    )
    overrides: dict[str, Any] = {"schedule": {"sweep_interval": "1h", "reconcile_interval": "1h"}}
    with make_bot(database=db, rancher_url=emulator.url, rancher_token=BOT_KEY, overrides=overrides) as bot:
        assert _jobs_role(bot) == "leader"
        wait_until(lambda: (g := store.grants.get("g-1")) is not None and g.state is GrantState.EXPIRED, timeout=8)
        assert emulator.get("projectRoleTemplateBinding", binding["id"]) is None
    store.database.close()


async def test_job_after_a_stall_longer_than_the_lease_bids_again_and_runs(tmp_path: Path) -> None:
    """A lapsed lease (nobody else took it) is re-taken by the next job run instead of skipping it."""
    config = _offline_config(tmp_path, {"schedule": {"lease_ttl": "30s"}})
    components = wiring.build(config)
    ran: list[int] = []

    async def body(now: int) -> None:
        ran.append(now)

    try:
        scheduler = components.scheduler
        scheduler.register()
        assert scheduler.lease.try_acquire()
        with time_machine.travel(datetime.now(UTC) + timedelta(minutes=5), tick=False):
            assert not scheduler.lease.is_leader()
            await scheduler._run("expire_grants", body)
            assert scheduler.lease.is_leader()
        assert len(ran) == 1
    finally:
        await components.aclose()


async def test_job_failing_on_an_outside_system_logs_one_line_without_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A job stopped by Rancher or Slack being down logs one warning, not a stack trace, and counts a failure."""
    from bot.core.errors import TransientUpstreamError
    from bot.services.metrics import METRICS

    config = _offline_config(tmp_path)
    components = wiring.build(config)

    async def body(now: int) -> None:
        raise TransientUpstreamError("Rancher", "cannot connect (is Rancher up?)")

    try:
        scheduler = components.scheduler
        scheduler.register()
        assert scheduler.lease.try_acquire()
        before = METRICS.job_failures.get("reconcile", 0)
        with caplog.at_level(logging.WARNING, logger="bot.scheduler"):
            await scheduler._run("reconcile", body)
        assert "scheduled job reconcile did not finish: Rancher: cannot connect" in caplog.text
        assert "Traceback" not in caplog.text
        assert METRICS.job_failures["reconcile"] == before + 1
    finally:
        await components.aclose()


async def _idle(now: int) -> None:
    return None


IDLE = JobBodies(*([_idle] * len(fields(JobBodies))))


@pytest.fixture(params=["sqlite", "postgresql"])
def shared_target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """One database two schedulers share: a SQLite file, or a database on a real PostgreSQL."""
    if request.param == "sqlite":
        return str(tmp_path / "shared.db")
    return str(request.getfixturevalue("postgres_url"))


async def test_a_leader_paused_mid_job_cannot_write_after_a_takeover(shared_target: str) -> None:
    """A leader stalled inside a job past its lease, resumed after a standby took over, writes nothing and stands by."""
    stores = [open_storage(shared_target), open_storage(shared_target)]
    clock = FakeClock()
    first = JobScheduler(IDLE, LeaderLease(stores[0].leases, "a", 30, clock=clock), Schedule(), clock)
    second = LeaderLease(stores[1].leases, "b", 30, clock=clock)
    stalled, resume = asyncio.Event(), asyncio.Event()

    async def body(now: int) -> None:
        stores[0].marks.claim("before-the-stall", "a", now)
        stalled.set()
        await resume.wait()  # the leader is paused here (a stopped VM, a long GC, SIGSTOP)
        stores[0].marks.claim("after-the-stall", "a", now)

    try:
        assert first.lease.try_acquire()
        first.role = "leader"
        job = asyncio.create_task(first._run("expire_grants", body))
        await stalled.wait()
        clock.value += 31
        assert second.try_acquire()  # the standby takes the lapsed lease over
        resume.set()
        await job
        assert stores[1].marks.get("before-the-stall") == "a"
        assert stores[1].marks.get("after-the-stall") is None
        assert first.role == "standby"
        assert not first.lease.is_leader()
    finally:
        for store in stores:
            store.database.close()
