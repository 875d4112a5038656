"""APScheduler 3.x AsyncIOScheduler: registers the job bodies with fixed ids and intervals, under the leader lease.

Every job runs only while this process holds the leader lease (a database row taken by compare-and-set); any other
`serve` replica on the same database stays on standby, bids every min(ttl/3, sweep interval) and takes over when
the lease runs out. Each job body runs fenced by the lease's token (core.fencing): once another replica has taken
the lease, a former leader that was paused and resumes cannot write anything; its job stops with FencedOut and it
steps down. On start, and whenever this process becomes leader, the revocations a former leader left unfinished are
resumed, and the sweep, the reconciliation and the digest run at once, so nothing that fell due waits an interval.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.core import fencing
from bot.core.errors import FencedOut, UpstreamError
from bot.core.ports import Clock
from bot.services.jobs.lease import LeaderLease
from bot.services.metrics import METRICS

log = logging.getLogger(__name__)

LEASE_JOB: Final = "lease"
JOB_IDS: Final[tuple[str, ...]] = (
    LEASE_JOB,
    "expire_grants",
    "finish_activations",
    "expire_requests",
    "warn_expiring",
    "reconcile",
    "deliver_outbox",
    "refresh_identities",
    "post_digest",
    "post_anchor",
    "reviews",
)
"""Fixed ids of every scheduled job (memory job store; ids keep re-registration idempotent)."""

CATCH_UP: Final[tuple[str, ...]] = (
    "expire_grants",
    "finish_activations",
    "reconcile",
    "post_digest",
    "post_anchor",
    "reviews",
)
"""Jobs run immediately on start and on becoming leader (work that fell due during downtime)."""

ANCHOR_INTERVAL: Final = 3600.0
"""The anchor job looks every hour; it posts once per UTC day."""
TAKE_OVER: Final = "resume_revocations"
"""A one-off job run on becoming leader: finish the revocations a former leader had claimed."""

Role = str  # "leader" | "standby" | "off"
Body = Callable[[int], Awaitable[object]]
"""A job body: takes `now` (epoch seconds), idempotent, safe to interrupt."""


@dataclass(frozen=True)
class JobBodies:
    """What each scheduled job runs (wiring takes them from the services)."""

    expire_grants: Body
    finish_activations: Body
    expire_requests: Body
    warn_expiring: Body
    reconcile: Body
    deliver_outbox: Body
    refresh_identities: Body
    post_digest: Body
    post_anchor: Body
    resume_revocations: Body
    reviews: Body


@dataclass(frozen=True)
class Schedule:
    """Plain values from `schedule.*` and `oidc.refresh_interval` (seconds; the digest as names and HH:MM)."""

    sweep_interval: float = 30.0
    reconcile_interval: float = 600.0
    outbox_interval: float = 5.0
    refresh_interval: float = 6 * 3600.0
    lease_ttl: float = 60.0
    review_interval: float = 60.0
    digest_day: str = "monday"
    digest_time: str = "09:00"
    digest_timezone: str = "UTC"


def digest_trigger(day: str, at: str, timezone: str) -> CronTrigger:
    """The weekly digest's trigger: a day *name* (APScheduler 3 counts weekdays from Monday=0), local HH:MM."""
    hour, minute = (int(part) for part in at.split(":", 1))
    return CronTrigger(day_of_week=day.strip().lower()[:3], hour=hour, minute=minute, timezone=timezone)


class JobScheduler:
    """Owns the AsyncIOScheduler, the leader lease and the role this process plays."""

    def __init__(
        self,
        jobs: JobBodies,
        lease: LeaderLease,
        schedule: Schedule,
        clock: Clock,
        *,
        on_role: Callable[[Role], None] | None = None,
    ) -> None:
        self.jobs = jobs
        self.lease = lease
        self.schedule = schedule
        self._clock = clock
        self._on_role = on_role
        self.role: Role = "off"
        self.scheduler = AsyncIOScheduler(timezone="UTC")
        self._registered = False

    def register(self) -> None:
        """Add every job with its fixed id, trigger, `coalesce=True`, `max_instances=1` and a misfire grace."""
        s = self.schedule
        bodies: dict[str, tuple[float, Body]] = {
            "expire_grants": (s.sweep_interval, self.jobs.expire_grants),
            "finish_activations": (s.sweep_interval, self.jobs.finish_activations),
            "expire_requests": (s.sweep_interval, self.jobs.expire_requests),
            "warn_expiring": (s.sweep_interval, self.jobs.warn_expiring),
            "reconcile": (s.reconcile_interval, self.jobs.reconcile),
            "deliver_outbox": (s.outbox_interval, self.jobs.deliver_outbox),
            "refresh_identities": (s.refresh_interval, self.jobs.refresh_identities),
            "post_anchor": (ANCHOR_INTERVAL, self.jobs.post_anchor),
            "reviews": (s.review_interval, self.jobs.reviews),
        }
        # a standby bids at least once a sweep interval, so it leads within lease_ttl + one sweep of a leader's death
        lease_every = max(1.0, min(s.lease_ttl / 3, s.sweep_interval))
        self._add(LEASE_JOB, IntervalTrigger(seconds=lease_every, timezone=UTC), self._tick_lease, (), lease_every)
        for job_id, (interval, body) in bodies.items():
            self._add(job_id, IntervalTrigger(seconds=interval, timezone=UTC), self._run, (job_id, body), interval)
        self._add(
            "post_digest",
            digest_trigger(s.digest_day, s.digest_time, s.digest_timezone),
            self._run,
            ("post_digest", self.jobs.post_digest),
            3600.0,
        )
        self._registered = True

    def _add(
        self, job_id: str, trigger: Any, func: Callable[..., Awaitable[None]], args: tuple[Any, ...], grace: float
    ) -> None:
        self.scheduler.add_job(
            func,
            trigger,
            args=args,
            id=job_id,
            name=job_id,
            replace_existing=True,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=max(1, math.ceil(grace)),
        )

    async def start(self) -> Role:
        """Register the jobs, bid for the lease, start the scheduler; run the catch-up jobs now when leader."""
        if not self._registered:
            self.register()
        held = self._bid()
        self._set_role("leader" if held else "standby")
        self.scheduler.start()
        if held:
            self._catch_up()
        return self.role

    async def stop(self) -> None:
        """Stop the scheduler (running jobs are cancelled; they are safe to re-run) and release the lease."""
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if self.role == "leader":
            try:
                self.lease.release()
            except Exception:
                log.warning("could not release the jobs lease", exc_info=True)
        self._set_role("off")

    def _bid(self) -> bool:
        try:
            return self.lease.try_acquire(self._clock.now())
        except Exception:
            log.warning("could not read the jobs lease; staying on standby", exc_info=True)
            return False

    def _set_role(self, role: Role) -> None:
        if role != self.role:
            log.info("scheduled jobs: %s -> %s (lease owner %s)", self.role, role, self.lease.owner_id)
        self.role = role
        if self._on_role is not None:
            self._on_role(role)

    def _catch_up(self) -> None:
        now = datetime.now(UTC)
        self.scheduler.add_job(
            self._run,
            DateTrigger(run_date=now, timezone=UTC),
            args=(TAKE_OVER, self.jobs.resume_revocations),
            id=TAKE_OVER,
            name=TAKE_OVER,
            replace_existing=True,
            misfire_grace_time=max(1, math.ceil(self.schedule.lease_ttl)),
        )
        for job_id in CATCH_UP:
            job = self.scheduler.get_job(job_id)
            if job is not None:
                job.modify(next_run_time=now)

    async def _tick_lease(self) -> None:
        was_leader = self.role == "leader"
        held = self._bid()
        self._set_role("leader" if held else "standby")
        if held and not was_leader:
            self._catch_up()

    async def _run(self, job_id: str, body: Body) -> None:
        """Run one job body if this process holds the lease; count the run and log a failure (never raise)."""
        now = self._clock.now()
        if not self.lease.is_leader(now):
            # after a stall longer than the lease (a paused VM, a blocked loop) bid again before skipping a turn
            await self._tick_lease()
            now = self._clock.now()
            if not self.lease.is_leader(now):
                return
        try:
            with fencing.fenced(self.lease.fence()):
                await body(now)
        except asyncio.CancelledError:
            raise
        except FencedOut as err:
            # another replica took the lease while this one was stalled: stop at once and stand by
            log.warning("scheduled job %s stopped: %s; standing by", job_id, err)
            self.lease.step_down()
            self._set_role("standby")
            METRICS.job_ran(job_id, ok=False)
            return
        except UpstreamError as err:
            # an outside system is down: expected, retried at the next run, no traceback needed
            log.warning("scheduled job %s did not finish: %s", job_id, err)
            METRICS.job_ran(job_id, ok=False)
            return
        except Exception:
            log.exception("scheduled job %s failed", job_id)
            METRICS.job_ran(job_id, ok=False)
            return
        METRICS.job_ran(job_id, ok=True)

    async def run_now(self, job_id: str) -> None:
        """Run one registered job body at once (as the scheduler would), e.g. for `accessbot` operators and tests."""
        job = self.scheduler.get_job(job_id)
        if job is None:
            raise KeyError(job_id)
        await job.func(*job.args)
