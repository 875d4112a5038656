"""The revocation sweep: claim due grants, revoke them with bounded concurrency, retry, alert when overdue.

Each run takes `now`, is idempotent and safe to interrupt: a cancelled run leaves grants in `revoking`, which the
next run (or the reconciler) finishes.

Rancher deletes run concurrently; the ends they allow are recorded in batches (`_Recorder`): one transaction, one
fence check and one audit-chain append per batch of up to `record_batch` grants (or whatever finished within
`record_interval`), instead of one of each per grant. On PostgreSQL every statement is a round trip made on the
event loop, so this is what keeps a wave of thousands fast and the loop free to answer between batches. Nothing is
weakened: the claim (`active → revoking`) is committed before Rancher is touched, and a crash after Rancher's delete
but before the batch commits leaves those grants `revoking` (not announced), which the next run finishes (deleting
again is harmless: 404 counts as gone).

A batch is recorded synchronously on the event loop (a transaction never spans an await: another coroutine's
statements would land in it), so `record_batch` bounds how long the loop is held at once: about 3 ms a grant on
PostgreSQL, so 32 holds it for about 0.1 s (bench/revocation.py measures it). Recording batches on a worker
thread kept the loop freer but cost more in thread switches than it saved (measured: 61 s against 54 s for 10,000).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from bot.core import audit_actions as A
from bot.core.durations import format_duration
from bot.core.errors import FencedOut, UpstreamError
from bot.core.model import Grant, GrantChange, GrantState, HistoryEntry
from bot.core.notices import RevocationOverdue, RevocationRecovered
from bot.core.retry import backoff
from bot.core.storage import GrantStore, Transactions
from bot.services.audit import AuditLog
from bot.services.grants import Lifecycle, Released, grant_details
from bot.services.outbox import Outbox

log = logging.getLogger(__name__)

SYSTEM = "system"
Ending = tuple[Grant, GrantState, str, str]
"""A grant to revoke, the state it should end in, who ended it and why."""


@dataclass(frozen=True)
class SweepSettings:
    """Concurrency and timing of revocations (seconds)."""

    revoke_concurrency: int = 16
    overdue_alert_after: int = 120
    stuck_after: int = 120
    retry_base: float = 5.0
    retry_cap: float = 300.0
    record_batch: int = 32  # revocations recorded per transaction (bounds how long one batch holds the loop)
    record_interval: float = 0.2  # a finished revocation waits at most about this long to be recorded


@dataclass(frozen=True)
class SweepResult:
    """What one run of the revocation sweep did."""

    claimed: int = 0
    retried: int = 0
    revoked: int = 0
    failed: int = 0
    alerted: int = 0
    resolved: int = 0


class RevocationSweep:
    """Ends grants on time; the reconciler uses `revoke_all` for grants a crash left in `revoking`."""

    def __init__(
        self,
        *,
        tx: Transactions,
        grants: GrantStore,
        lifecycle: Lifecycle,
        audit: AuditLog,
        outbox: Outbox,
        settings: SweepSettings,
        rng: random.Random | None = None,
    ) -> None:
        self._tx = tx
        self._grants = grants
        self._lifecycle = lifecycle
        self._audit = audit
        self._outbox = outbox
        self.settings = settings
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not crypto
        self.busy: set[str] = set()
        """Grants being revoked right now by this process (the reconciler leaves them alone)."""

    async def expire_grants(self, now: int) -> SweepResult:
        """Claim every due grant (active → revoking), revoke with bounded concurrency, retry, alert when overdue."""
        with self._tx.atomic():  # the claim and its history together: a crash leaves both or neither
            claimed = self._grants.claim_due(now)
            self._grants.add_history_many(
                [
                    HistoryEntry(grant.id, GrantState.ACTIVE.value, GrantState.REVOKING.value, now, SYSTEM, "expired")
                    for grant in claimed
                ]
            )
        claimed_ids = {g.id for g in claimed}
        retries = [
            g
            for g in self._grants.revocations_due(now, now - self.settings.stuck_after)
            if g.id not in claimed_ids and g.id not in self.busy
        ]
        work: list[Ending] = [(g, GrantState.EXPIRED, SYSTEM, "expired") for g in claimed if g.id not in self.busy]
        work += [self.ending(g, now) for g in retries]
        outcomes = await self.revoke_all(work, now)
        revoked = sum(outcomes)
        alerted = self._alert_overdue(now)
        resolved = self._resolve_overdue(now)
        result = SweepResult(
            claimed=len(claimed),
            retried=len(retries),
            revoked=revoked,
            failed=len(outcomes) - revoked,
            alerted=alerted,
            resolved=resolved,
        )
        if claimed or retries or alerted or resolved:
            log.info("revocation sweep: %s", result)
        return result

    async def resume_claimed(self, now: int) -> SweepResult:
        """On becoming leader: finish at once the revocations a former leader's jobs had claimed.

        The former leader is fenced out (its writes are refused), so those are no longer in flight and need not
        wait `stuck_after`. Revocations a person started keep waiting: the replica serving that request may still
        be finishing them.
        """
        revoking = self._grants.find(states=[GrantState.REVOKING], limit=1_000_000)
        work = [self.ending(g, now) for g in revoking if g.id not in self.busy]
        work = [item for item in work if item[2] == SYSTEM]
        outcomes = await self.revoke_all(work, now)
        revoked = sum(outcomes)
        if work:
            log.info("resumed %d revocations a former leader had claimed (%d finished)", len(work), revoked)
        return SweepResult(retried=len(work), revoked=revoked, failed=len(outcomes) - revoked)

    def ending(self, grant: Grant, now: int) -> Ending:
        """How a grant found in `revoking` should end: REVOKED by a person, else EXPIRED when its time is up."""
        for entry in reversed(self._grants.history(grant.id)):
            if entry.to_state == GrantState.REVOKING.value:
                if entry.actor != SYSTEM:
                    return grant, GrantState.REVOKED, entry.actor, entry.reason
                break
        if grant.expires_at is not None and grant.expires_at <= now:
            return grant, GrantState.EXPIRED, SYSTEM, "expired"
        return grant, GrantState.REVOKED, SYSTEM, "revoked"

    async def revoke_all(self, work: Sequence[Ending], now: int) -> list[bool]:
        """Finish each revocation with at most `revoke_concurrency` in flight; True for each that ended.

        The ends are recorded in batches as the deletes complete (see the module docstring).
        """
        semaphore = asyncio.Semaphore(self.settings.revoke_concurrency)
        recorder = _Recorder(
            lambda batch: self._record(batch, now), self.settings.record_batch, self.settings.record_interval
        )

        async def one(index: int, grant: Grant, final: GrantState, actor: str, reason: str) -> None:
            async with semaphore:
                released = await self._release(grant, final, actor, reason, now)
            if isinstance(released, Released):
                recorder.add(index, released)
            else:
                recorder.outcomes[index] = released

        for grant, *_ in work:
            self.busy.add(grant.id)
        ticker = asyncio.create_task(recorder.tick())
        try:
            await asyncio.gather(*(one(i, *item) for i, item in enumerate(work)))
            if recorder.fenced is not None:
                raise recorder.fenced
            recorder.flush()
        finally:
            ticker.cancel()
            for grant, *_ in work:
                self.busy.discard(grant.id)
        return [recorder.outcomes.get(i, False) for i in range(len(work))]

    async def _release(self, grant: Grant, final: GrantState, actor: str, reason: str, now: int) -> Released | bool:
        """Delete the grant's binding: Released to record, else whether the grant has ended (failures retried)."""
        try:
            released = await self._lifecycle.release_binding(grant, final_state=final, actor=actor, reason=reason)
        except Exception as err:
            self._failed(grant, err, now)
            return False
        if isinstance(released, Released):
            return released
        return released.state is not GrantState.REVOKING  # still there, `removed`: checked again at its next try

    def _record(self, batch: Sequence[Released], now: int) -> list[bool]:
        """Record a batch in one transaction; when that fails, each on its own, so one bad grant fails alone."""
        try:
            ended = self._lifecycle.record_revocations(batch)
        except FencedOut:
            raise  # a standby leads now: it finishes these grants (they are still `revoking`)
        except Exception:
            log.warning("recording %d revocations at once failed; recording them one by one", len(batch), exc_info=True)
        else:
            return [g.state is not GrantState.REVOKING for g in ended]
        outcomes = []
        for item in batch:
            try:
                (one,) = self._lifecycle.record_revocations([item])
            except FencedOut:
                raise
            except Exception as err:
                self._failed(item.grant, err, now)
                outcomes.append(False)
            else:
                outcomes.append(one.state is not GrantState.REVOKING)
        return outcomes

    def _failed(self, grant: Grant, err: Exception, now: int) -> None:
        """Schedule the next try of a revocation that failed (backoff with jitter)."""
        attempts = (self._grants.get(grant.id) or grant).attempts + 1
        delay = backoff(attempts, self.settings.retry_base, self.settings.retry_cap, self._rng)
        self._grants.update(
            grant.id, [GrantState.REVOKING], GrantChange(attempts=attempts, next_attempt_at=now + delay), now
        )
        if isinstance(err, UpstreamError):
            log.warning("revoking %s failed (try %d, next in %ds): %s", grant.id, attempts, delay, err)
        else:
            log.exception("revoking %s failed unexpectedly (try %d, next in %ds)", grant.id, attempts, delay)

    def _revoking_too_long(self, now: int) -> list[tuple[Grant, int, bool]]:
        """Grants past expiry still bound, and early revocations under way for longer than the alert delay."""
        late = now - self.settings.overdue_alert_after
        out = [(g, now - (g.expires_at or now), False) for g in self._grants.overdue(late)]
        seen = {g.id for g, _, _ in out}
        for grant in self._grants.find(states=(GrantState.REVOKING,), limit=10000):
            if grant.id in seen or grant.overdue_alerted or (grant.expires_at or 0) <= late:
                continue  # past expiry: overdue() above covers it
            began = next(
                (e.at for e in reversed(self._grants.history(grant.id)) if e.to_state == GrantState.REVOKING.value),
                None,
            )
            if began is not None and began <= late:
                out.append((grant, now - began, True))
        return out

    def _alert_overdue(self, now: int) -> int:
        alerted = 0
        for grant, overdue_s, early in self._revoking_too_long(now):
            with self._tx.atomic():
                if not self._grants.update(
                    grant.id, [GrantState.ACTIVE, GrantState.REVOKING], GrantChange(overdue_alerted=1), now
                ):
                    continue
                self._audit.record(
                    A.GRANT_REVOCATION_OVERDUE,
                    actor=SYSTEM,
                    target=grant.target.key,
                    outcome="failed",
                    reason=f"binding still present {format_duration(timedelta(seconds=overdue_s))} after "
                    + ("the revocation began" if early else "expiry"),
                    request_id=grant.id,
                    details=grant_details(grant, overdue_s=overdue_s),
                )
                self._outbox.post("security", f"overdue:{grant.id}", RevocationOverdue(grant, overdue_s, early))
            alerted += 1
        return alerted

    def _resolve_overdue(self, now: int) -> int:
        resolved = 0
        for grant in self._grants.overdue_resolved():
            overdue_s = max(0, (grant.ended_at or now) - (grant.expires_at or now))
            with self._tx.atomic():
                if not self._grants.update(grant.id, [grant.state], GrantChange(overdue_alerted=2), now):
                    continue
                self._audit.record(
                    A.GRANT_REVOCATION_RECOVERED,
                    actor=SYSTEM,
                    target=grant.target.key,
                    request_id=grant.id,
                    details=grant_details(grant, overdue_s=overdue_s),
                )
                self._outbox.post("security", f"overdue-resolved:{grant.id}", RevocationRecovered(grant, overdue_s))
            resolved += 1
        return resolved


@dataclass
class _Recorder:
    """Collects revocations whose bindings are gone and records them in batches (by size, or by age on a tick).

    Recording is synchronous, so one batch is recorded at a time and no coroutine sees a half-recorded batch.
    """

    record: Callable[[Sequence[Released]], list[bool]]
    size: int
    interval: float
    outcomes: dict[int, bool] = field(default_factory=dict)
    pending: list[tuple[int, Released]] = field(default_factory=list)
    oldest: float = 0.0
    fenced: FencedOut | None = None

    def add(self, index: int, released: Released) -> None:
        """Queue one for recording; record now when the batch is full or its oldest has waited long enough."""
        if not self.pending:
            self.oldest = time.monotonic()
        self.pending.append((index, released))
        if len(self.pending) >= self.size or time.monotonic() - self.oldest >= self.interval:
            self.flush()

    def flush(self) -> None:
        """Record everything queued, a batch at a time."""
        while self.pending:
            batch, self.pending = self.pending[: self.size], self.pending[self.size :]
            self.oldest = time.monotonic()
            ended = self.record([released for _, released in batch])
            for (index, _), outcome in zip(batch, ended, strict=True):
                self.outcomes[index] = outcome

    async def tick(self) -> None:
        """Record what waits every `interval` seconds while slow deletes keep the batch from filling."""
        while True:
            await asyncio.sleep(self.interval)
            if self.pending and time.monotonic() - self.oldest >= self.interval:
                try:
                    self.flush()
                except FencedOut as err:  # kept for the run to raise: a task's own exception would go unseen
                    self.fenced = err
                    return
