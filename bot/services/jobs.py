"""Scheduled job bodies: revocation sweep, reconciliation, outbox delivery, refresh, digest, and the leader lease.

The scheduler only decides *when* these run; each body takes `now` (epoch seconds), is idempotent, and is safe to
interrupt (a cancelled run leaves rows in states the next run picks up).

Outbox delivery is at-least-once with a narrow window: a message is marked sent (with its Slack ts and message
reference) in one transaction right after Slack accepts it. Slack's chat.postMessage has no idempotency key, so a
crash after Slack accepted a message but before that transaction commits re-sends that one message once after the
restart; nothing else can be sent twice, and nothing is dropped.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol

from bot.core import audit_actions as A
from bot.core import digest as digest_core
from bot.core import drift, grant_lifecycle, mrkdwn
from bot.core.digest_view import (
    DigestPeriod,
    fire_time,
    last_complete_week,
    render_digest_blocks,
    render_digest_text,
    utc_iso,
)
from bot.core.durations import format_duration
from bot.core.errors import PermanentUpstreamError, TransientUpstreamError, UpstreamError
from bot.core.model import Grant, GrantState, OutboxMessage, RoleBinding
from bot.core.ports import Clock, Notifier, RancherApi, Store
from bot.services.audit import AuditLog
from bot.services.granting import SLACK_USER_ANNOTATION, binding_name, grant_details
from bot.services.notifications import Notifications

log = logging.getLogger(__name__)

SYSTEM = "system"
LEASE_NAME = "jobs"
PARKED = 2**53
"""next_attempt_at of an outbox message Slack refused for good (kept for the record, never retried)."""

LIVE_STATES: tuple[GrantState, ...] = (
    GrantState.REQUESTED,
    GrantState.APPROVED,
    GrantState.ACTIVATING,
    GrantState.ACTIVE,
    GrantState.REVOKING,
)


class GrantingJobs(Protocol):
    """What the jobs need from services.granting.GrantingService."""

    async def finish_revocation(
        self, grant: Grant, *, final_state: GrantState = ..., actor: str = ..., reason: str = ...
    ) -> Grant:
        """Delete the binding of a `revoking` grant and mark it ended (idempotent)."""
        ...

    async def finish_activation(self, grant: Grant) -> Grant:
        """Find or create the binding of an `activating` grant and mark it active (idempotent)."""
        ...

    async def expire_requests(self, now: int) -> int:
        """Expire undecided requests past their deadline; return how many."""
        ...

    async def warn_expiring(self, now: int, lead_s: int) -> int:
        """Warn holders whose grant ends within `lead_s`; return how many."""
        ...

    def governed_roles(self) -> set[str]:
        """Role ids named by any policy rule."""
        ...


RefreshAll = Callable[[int], Awaitable[object]]


@dataclass(frozen=True)
class JobSettings:
    """Plain values the jobs need from the configuration (seconds for durations)."""

    grant_label: str = "accessbot.io/grant"
    revoke_concurrency: int = 16
    overdue_alert_after: int = 120
    expiry_warning: int = 600
    repair_drift: bool = False
    report_untagged: bool = False
    stuck_after: int = 120
    retry_base: float = 5.0
    retry_cap: float = 300.0
    outbox_batch: int = 200
    outbox_retry_base: float = 2.0
    outbox_retry_cap: float = 300.0
    digest_day: str = "monday"
    digest_time: str = "09:00"
    digest_timezone: str = "UTC"


@dataclass(frozen=True)
class SweepResult:
    """What one run of the revocation sweep did."""

    claimed: int = 0
    retried: int = 0
    revoked: int = 0
    failed: int = 0
    alerted: int = 0
    resolved: int = 0


@dataclass(frozen=True)
class ReconcileResult:
    """What one reconciliation run found and did."""

    orphans_deleted: int = 0
    missing: int = 0
    repaired: int = 0
    activations_finished: int = 0
    revocations_finished: int = 0
    untagged_reported: int = 0
    errors: tuple[str, ...] = ()


@dataclass(frozen=True)
class OutboxResult:
    """What one outbox delivery run did."""

    sent: int = 0
    failed: int = 0
    parked: int = 0
    paused_until: int | None = None


def backoff(attempt: int, base: float, cap: float, rng: random.Random) -> int:
    """Seconds to wait before try `attempt + 1`: exponential from `base`, capped, with jitter in [½, 1]."""
    raw = min(cap, base * (1 << min(30, max(0, attempt - 1))))
    return max(1, round(raw * (0.5 + rng.random() / 2)))


def _describe(grant: Grant) -> str:
    who, role, where = mrkdwn.user(grant.slack_user), mrkdwn.code(grant.role_id), mrkdwn.code(grant.target.key)
    return f"{mrkdwn.code(grant.id)} ({who} {role} on {where})"


def _binding_text(binding: RoleBinding) -> str:
    where = binding.project_id or binding.cluster_id or "global"
    subject = binding.user_principal_id or binding.user_id or binding.group_principal_id or "?"
    return (
        f"{mrkdwn.code(binding.id)} ({mrkdwn.code(binding.role_id)} on {mrkdwn.code(where)} for {mrkdwn.code(subject)})"
    )


def build_period_digest(store: Store, audit: AuditLog, start: int, end: int) -> digest_core.Digest:
    """The digest of [start, end) with the change against the equally long period before it and the chain check.

    Per-action numbers are counted by SQLite; only the rows the digest needs to read are fetched.
    """
    check = audit.verify()
    length = end - start
    return digest_core.build_digest(
        store.audit_detail_rows(start, end, digest_core.DETAIL_ACTIONS),
        store.audit_detail_rows(start - length, start, digest_core.DETAIL_ACTIONS),
        start,
        end,
        check.ok,
        check.count,
        counts=store.audit_action_counts(start, end),
        previous_counts=store.audit_action_counts(start - length, start),
    )


async def build_period_digest_off_loop(store: Store, start: int, end: int) -> digest_core.Digest:
    """Build a period's digest on a worker thread with its own connection, so Slack stays answered meanwhile."""

    def work() -> digest_core.Digest:
        reader = store.open_reader()
        try:
            return build_period_digest(reader, AuditLog(reader, _NoClock()), start, end)
        finally:
            reader.close()

    return await asyncio.to_thread(work)


class _NoClock:
    """The reader's audit log only verifies; it never stamps an event."""

    def now(self) -> int:
        """Never called while verifying."""
        raise RuntimeError("the digest reader does not record events")


class Jobs:
    """The job bodies, built once per process with their ports and services."""

    def __init__(
        self,
        *,
        store: Store,
        rancher: RancherApi,
        notifier: Notifier,
        notifications: Notifications,
        audit: AuditLog,
        granting: GrantingJobs,
        clock: Clock,
        settings: JobSettings,
        refresh_all: RefreshAll | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._store = store
        self._rancher = rancher
        self._notifier = notifier
        self._notifications = notifications
        self._audit = audit
        self._granting = granting
        self._clock = clock
        self.settings = settings
        self._refresh_all = refresh_all
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not crypto
        self._busy: set[str] = set()
        self._slack_paused_until = 0

    # --- revocation -----------------------------------------------------------------------------------

    async def expire_grants(self, now: int) -> SweepResult:
        """Claim every due grant (active → revoking), revoke with bounded concurrency, retry, alert when overdue."""
        claimed = self._store.claim_due_grants(now)
        if claimed:
            with self._store.atomic():
                for grant in claimed:
                    self._store.add_history(
                        grant.id, GrantState.ACTIVE.value, GrantState.REVOKING.value, now, SYSTEM, "expired"
                    )
        claimed_ids = {g.id for g in claimed}
        retries = [
            g
            for g in self._store.revocations_due(now, now - self.settings.stuck_after)
            if g.id not in claimed_ids and g.id not in self._busy
        ]
        work = [(g, GrantState.EXPIRED, SYSTEM, "expired") for g in claimed if g.id not in self._busy]
        work += [(g, *self._ending(g, now)) for g in retries]
        outcomes = await self._revoke_all(work, now)
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

    def _ending(self, grant: Grant, now: int) -> tuple[GrantState, str, str]:
        """How a grant found in `revoking` should end: REVOKED by a person, else EXPIRED when its time is up."""
        for row in reversed(self._store.grant_history(grant.id)):
            if row["to_state"] == GrantState.REVOKING.value:
                if row["actor"] != SYSTEM:
                    return GrantState.REVOKED, str(row["actor"]), str(row["reason"] or "")
                break
        if grant.expires_at is not None and grant.expires_at <= now:
            return GrantState.EXPIRED, SYSTEM, "expired"
        return GrantState.REVOKED, SYSTEM, "revoked"

    async def _revoke_all(self, work: Sequence[tuple[Grant, GrantState, str, str]], now: int) -> list[bool]:
        semaphore = asyncio.Semaphore(self.settings.revoke_concurrency)

        async def one(grant: Grant, final: GrantState, actor: str, reason: str) -> bool:
            async with semaphore:
                return await self._finish_revocation(grant, final, actor, reason, now)

        for grant, *_ in work:
            self._busy.add(grant.id)
        try:
            return list(await asyncio.gather(*(one(*item) for item in work)))
        finally:
            for grant, *_ in work:
                self._busy.discard(grant.id)

    async def _finish_revocation(self, grant: Grant, final: GrantState, actor: str, reason: str, now: int) -> bool:
        try:
            await self._granting.finish_revocation(grant, final_state=final, actor=actor, reason=reason)
        except Exception as err:
            attempts = self._store.grant_retry(grant.id)[0] + 1
            delay = backoff(attempts, self.settings.retry_base, self.settings.retry_cap, self._rng)
            self._store.transition_grant(
                grant.id, [GrantState.REVOKING], {"attempts": attempts, "next_attempt_at": now + delay}, now
            )
            if isinstance(err, UpstreamError):
                log.warning("revoking %s failed (try %d, next in %ds): %s", grant.id, attempts, delay, err)
            else:
                log.exception("revoking %s failed unexpectedly (try %d, next in %ds)", grant.id, attempts, delay)
            return False
        return True

    def _alert_overdue(self, now: int) -> int:
        alerted = 0
        for grant in self._store.overdue_grants(now - self.settings.overdue_alert_after):
            overdue_s = now - (grant.expires_at or now)
            with self._store.atomic():
                if not self._store.transition_grant(
                    grant.id, [GrantState.ACTIVE, GrantState.REVOKING], {"overdue_alerted": 1}, now
                ):
                    continue
                self._audit.record(
                    A.GRANT_REVOCATION_OVERDUE,
                    actor=SYSTEM,
                    target=grant.target.key,
                    outcome="failed",
                    reason=f"binding still present {format_duration(timedelta(seconds=overdue_s))} after expiry",
                    request_id=grant.id,
                    details=grant_details(grant, overdue_s=overdue_s),
                )
                self._notifications.to_channel(
                    "security",
                    f"overdue:{grant.id}",
                    f":rotating_light: Revocation overdue: grant {_describe(grant)} expired "
                    f"{format_duration(timedelta(seconds=overdue_s))} ago and its Rancher binding is still in place. "
                    "The bot keeps retrying; check Rancher.",
                )
            alerted += 1
        return alerted

    def _resolve_overdue(self, now: int) -> int:
        resolved = 0
        for grant in self._store.overdue_resolved():
            overdue_s = max(0, (grant.ended_at or now) - (grant.expires_at or now))
            with self._store.atomic():
                if not self._store.transition_grant(grant.id, [grant.state], {"overdue_alerted": 2}, now):
                    continue
                self._audit.record(
                    A.GRANT_REVOCATION_RECOVERED,
                    actor=SYSTEM,
                    target=grant.target.key,
                    request_id=grant.id,
                    details=grant_details(grant, overdue_s=overdue_s),
                )
                self._notifications.to_channel(
                    "security",
                    f"overdue-resolved:{grant.id}",
                    f":white_check_mark: Resolved: grant {_describe(grant)} is now {grant.state.value}, "
                    f"{format_duration(timedelta(seconds=overdue_s))} after it expired.",
                )
            resolved += 1
        return resolved

    # --- reconciliation -------------------------------------------------------------------------------

    async def reconcile(self, now: int) -> ReconcileResult:
        """Compare tagged Rancher bindings with the grants: delete orphans, report/repair drift, finish stuck grants."""
        label = self.settings.grant_label
        bindings = list(await self._rancher.list_labelled_bindings(label))  # bindings first, then grants
        governed: set[str] = set()
        if self.settings.report_untagged:
            governed = self._granting.governed_roles()
            bindings += await self._untagged_candidates(governed, {b.id for b in bindings})
        grants = self._store.grants(states=LIVE_STATES, limit=1_000_000)
        known = {g.id for g in grants}
        for tag in {b.labels.get(label) or b.annotations.get(label) for b in bindings} - known - {None, ""}:
            found = self._store.grant(str(tag))
            if found is not None:
                grants.append(found)
        plan = drift.plan(grants, bindings, label, governed, now)
        errors: list[str] = []
        deleted = await self._delete_orphans(plan.delete, now, errors)
        missing, repaired = await self._handle_missing(plan.missing, now, errors)
        grace = timedelta(seconds=self.settings.stuck_after)
        activations = [a.grant for a in plan.adopt] + list(plan.unfinished_activation)
        activated = 0
        for grant in activations:
            if grant.id in self._busy or not grant_lifecycle.stuck(grant, now, grace):
                continue
            try:
                await self._granting.finish_activation(grant)
                activated += 1
            except Exception as err:
                errors.append(f"finish activation of {grant.id}: {err}")
                log.warning("finishing activation of %s failed: %s", grant.id, err)
        stuck_revokes = [
            p.grant
            for p in plan.finish_revoke
            if p.grant.id not in self._busy and grant_lifecycle.stuck(p.grant, now, grace)
        ]
        outcomes = await self._revoke_all([(g, *self._ending(g, now)) for g in stuck_revokes], now)
        untagged = self._report_untagged(plan.untagged, now)
        result = ReconcileResult(
            orphans_deleted=deleted,
            missing=missing,
            repaired=repaired,
            activations_finished=activated,
            revocations_finished=sum(outcomes),
            untagged_reported=untagged,
            errors=tuple(errors),
        )
        if not plan.empty:
            log.info("reconciliation: %s", result)
        return result

    async def _untagged_candidates(self, governed: set[str], seen: set[str]) -> list[RoleBinding]:
        """Every cluster and project binding of a governed role that the bot did not tag (for the report)."""
        if not governed:
            return []
        clusters = await self._rancher.list_clusters()
        projects = await self._rancher.list_projects()
        semaphore = asyncio.Semaphore(self.settings.revoke_concurrency)

        async def of(cluster_id: str, project_id: str | None) -> Sequence[RoleBinding]:
            async with semaphore:
                return await self._rancher.list_target_bindings(cluster_id, project_id)

        lists = await asyncio.gather(*(of(c.id, None) for c in clusters), *(of(p.cluster_id, p.id) for p in projects))
        out: list[RoleBinding] = []
        for binding in (b for found in lists for b in found):
            if binding.id in seen or binding.role_id not in governed:
                continue
            if self.settings.grant_label in binding.labels:
                continue
            seen.add(binding.id)
            out.append(binding)
        return out

    async def _delete_orphans(self, orphans: Iterable[drift.Orphan], now: int, errors: list[str]) -> int:
        deleted = 0
        for orphan in orphans:
            binding = orphan.binding
            try:
                existed = await self._rancher.delete_binding(binding)
            except UpstreamError as err:
                errors.append(f"delete {binding.id}: {err}")
                log.warning("deleting orphan binding %s failed: %s", binding.id, err)
                continue
            target = binding.project_id or binding.cluster_id or ""
            with self._store.atomic():
                self._audit.record(
                    A.DRIFT_ORPHAN_DELETED,
                    actor=SYSTEM,
                    target=target,
                    reason=orphan.why,
                    request_id=orphan.grant_id,
                    details={
                        "grant_id": orphan.grant_id,
                        "binding_id": binding.id,
                        "role": binding.role_id,
                        "target": target,
                        "why": orphan.why,
                        "existed": existed,
                    },
                )
                self._notifications.to_channel(
                    "security",
                    f"orphan:{binding.id}:{now}",
                    f":broom: Deleted a binding the bot had tagged but no live grant owns: {_binding_text(binding)}; "
                    f"{mrkdwn.escape(orphan.why)}.",
                )
            deleted += 1
        return deleted

    async def _handle_missing(self, grants: Iterable[Grant], now: int, errors: list[str]) -> tuple[int, int]:
        found = repaired = 0
        for grant in grants:
            if not grant.drifted:
                with self._store.atomic():
                    if not self._store.transition_grant(grant.id, [GrantState.ACTIVE], {"drifted": True}, now):
                        continue
                    self._audit.record(
                        A.DRIFT_MISSING_BINDING,
                        actor=SYSTEM,
                        target=grant.target.key,
                        outcome="failed",
                        reason="binding deleted outside the bot",
                        request_id=grant.id,
                        details=grant_details(grant, binding_id=grant.binding_id or "", why="binding missing"),
                    )
                    repair = (
                        "it will be recreated" if self.settings.repair_drift else "not recreated (repair_drift is off)"
                    )
                    self._notifications.to_channel(
                        "security",
                        f"drift-missing:{grant.id}:{now}",
                        f":warning: Drift: the Rancher binding of active grant {_describe(grant)} is gone "
                        f"(deleted outside the bot); {repair}.",
                    )
                found += 1
            if self.settings.repair_drift:
                try:
                    await self._repair(grant, now)
                    repaired += 1
                except (UpstreamError, ValueError) as err:
                    errors.append(f"repair {grant.id}: {err}")
                    log.warning("recreating the binding of %s failed: %s", grant.id, err)
        return found, repaired

    async def _repair(self, grant: Grant, now: int) -> None:
        if not grant.user_principal_id:
            raise ValueError(f"grant {grant.id} has no user principal to bind")
        label = self.settings.grant_label
        binding = await self._rancher.create_binding(
            name=grant.binding_name or binding_name(grant.id),
            cluster_id=grant.target.cluster_id,
            project_id=grant.target.project_id,
            role_id=grant.role_id,
            user_id=None,
            user_principal_id=grant.user_principal_id,
            labels={label: grant.id},
            annotations={SLACK_USER_ANNOTATION: grant.slack_user},
        )
        with self._store.atomic():
            if not self._store.transition_grant(
                grant.id,
                [GrantState.ACTIVE],
                {"drifted": False, "binding_id": binding.id, "binding_name": binding.name},
                now,
            ):
                return  # the grant ended meanwhile; the next run deletes the binding as an orphan
            self._audit.record(
                A.DRIFT_REPAIRED,
                actor=SYSTEM,
                target=grant.target.key,
                request_id=grant.id,
                details=grant_details(grant, binding_id=binding.id, why="binding recreated"),
            )
            self._notifications.to_channel(
                "security",
                f"drift-repaired:{grant.id}:{now}",
                f":wrench: Recreated the Rancher binding of grant {_describe(grant)} until it expires.",
            )

    def _report_untagged(self, bindings: Iterable[RoleBinding], now: int) -> int:
        reported = 0
        for binding in bindings:
            target = binding.project_id or binding.cluster_id or ""
            with self._store.atomic():
                if not self._store.claim_state(f"untagged:{binding.id}", str(now), now):
                    continue
                self._audit.record(
                    A.DRIFT_UNTAGGED,
                    actor=SYSTEM,
                    target=target,
                    reason="standing access to a governed role that nobody requested through the bot",
                    details={"binding_id": binding.id, "role": binding.role_id, "target": target, "why": "untagged"},
                )
                self._notifications.to_channel(
                    "security",
                    f"untagged:{binding.id}",
                    f":mag: Standing access to a role the policy governs, not granted through the bot: "
                    f"{_binding_text(binding)}. Reported once; nothing was changed.",
                )
            reported += 1
        return reported

    # --- outbox ---------------------------------------------------------------------------------------

    async def deliver_outbox(self, now: int) -> OutboxResult:
        """Send due outbox messages in order; honour Retry-After, back off on errors, park what Slack refuses."""
        if now < self._slack_paused_until:
            return OutboxResult(paused_until=self._slack_paused_until)
        sent = failed = parked = 0
        for message in self._store.due_outbox(now, self.settings.outbox_batch):
            try:
                result_ts, ref = await self._send(message)
            except TransientUpstreamError as err:
                failed += 1
                retry_after = getattr(err, "retry_after", None)
                if isinstance(retry_after, int | float) and retry_after > 0:
                    wait = int(retry_after)
                else:
                    wait = backoff(
                        message.attempts + 1,
                        self.settings.outbox_retry_base,
                        self.settings.outbox_retry_cap,
                        self._rng,
                    )
                self._store.mark_outbox_failed(message.id, str(err), now + wait)
                self._slack_paused_until = now + wait  # Slack is rate limiting or down: stop this run, keep order
                log.warning("outbox %s (%s) not delivered, retry in %ds: %s", message.key, message.kind, wait, err)
                return OutboxResult(sent=sent, failed=failed, parked=parked, paused_until=now + wait)
            except (PermanentUpstreamError, ValueError, KeyError, TypeError) as err:
                parked += 1
                self._store.mark_outbox_failed(message.id, f"refused: {err}", PARKED)
                log.error("outbox %s (%s) refused, parked: %s", message.key, message.kind, err)
                continue
            with self._store.atomic():
                if ref is not None:
                    self._store.set_message_ref(*ref)
                self._store.mark_outbox_sent(message.id, now, result_ts)
            sent += 1
        return OutboxResult(sent=sent, failed=failed, parked=parked)

    async def _send(self, message: OutboxMessage) -> tuple[str, tuple[str, str, str] | None]:
        """Deliver one message; return the Slack ts and the (ref, channel, ts) to remember, if any."""
        payload: Mapping[str, object] = message.payload
        text = str(payload.get("text") or "")
        raw_blocks = payload.get("blocks")
        blocks = list(raw_blocks) if isinstance(raw_blocks, list) and raw_blocks else None
        ref = str(payload.get("ref") or "")
        if message.kind == "post":
            known = self._store.message_ref(ref) if ref else None
            if known is not None:
                return known[1], None  # a later update already posted this message fresh; do not post a second copy
            ts = await self._notifier.post(message.channel, text, blocks)
            return ts, ((ref, message.channel, ts) if ref else None)
        if message.kind == "update":
            known = self._store.message_ref(ref) if ref else None
            if known is not None:
                await self._notifier.update(known[0], known[1], text, blocks)
                return known[1], None
            if not message.channel:
                return "", None  # nothing was ever posted and there is nowhere to post: nothing to update
            ts = await self._notifier.post(message.channel, text, blocks)
            return ts, ((ref, message.channel, ts) if ref else None)
        if message.kind == "dm":
            return await self._notifier.dm(message.channel, text, blocks), None
        if message.kind == "file":
            content = str(payload.get("content") or "").encode()
            await self._notifier.upload(
                message.channel, str(payload.get("filename") or "file.txt"), content, str(payload.get("comment") or "")
            )
            return "", None
        raise ValueError(f"unknown outbox message kind {message.kind!r}")

    # --- delegated periodic work ----------------------------------------------------------------------

    async def refresh_identities(self, now: int) -> object:
        """Refresh every linked identity at the IdP (the linking service decides what a failure means)."""
        if self._refresh_all is None:
            return None
        return await self._refresh_all(now)

    async def expire_requests(self, now: int) -> int:
        """Expire requests nobody decided in time."""
        return await self._granting.expire_requests(now)

    async def warn_expiring(self, now: int) -> int:
        """DM holders whose grant ends within `expiry_warning`."""
        return await self._granting.warn_expiring(now, self.settings.expiry_warning)

    # --- digest ---------------------------------------------------------------------------------------

    def digest_due(self, now: int) -> DigestPeriod | None:
        """The period whose digest should be posted at `now`, or None before this week's configured time."""
        s = self.settings
        if now < fire_time(now, s.digest_timezone, s.digest_day, s.digest_time):
            return None
        return last_complete_week(now, s.digest_timezone)

    async def post_digest(self, now: int, *, force: bool = False) -> str | None:
        """Queue the last complete ISO week's digest and grants CSV, once per period; return the period key."""
        s = self.settings
        period = last_complete_week(now, s.digest_timezone) if force else self.digest_due(now)
        if period is None or not self._notifications.channel("digest"):
            return None
        state_key = f"digest:{period.key}"
        if self._store.get_state(state_key) is not None:
            return None
        digest = await build_period_digest_off_loop(self._store, period.start, period.end)
        text = render_digest_text(digest, period_key=period.key, timezone=s.digest_timezone, slack=True)
        blocks = render_digest_blocks(digest, period_key=period.key, timezone=s.digest_timezone)
        csv_text = digest_core.grants_csv(self._store.grants_between(period.start, period.end))
        with self._store.atomic():
            if not self._store.claim_state(state_key, str(now), now):
                return None
            self._notifications.to_channel("digest", f"digest:{period.key}", text, blocks)
            self._notifications.file(
                "digest",
                f"digest-csv:{period.key}",
                f"accessbot-grants-{period.key}.csv",
                csv_text,
                f"Every grant of {period.key} ({utc_iso(period.start)} to {utc_iso(period.end)})",
            )
            self._audit.record(
                A.DIGEST_POSTED,
                actor=SYSTEM,
                target=period.key,
                details={"period_start": period.start, "period_end": period.end, "events": digest.events},
            )
        return period.key


def default_owner_id() -> str:
    """A lease owner id unique to this process: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class LeaderLease:
    """The single-runner lease: one row in SQLite taken by compare-and-set, renewed, taken over once expired."""

    store: Store
    owner_id: str
    ttl: int
    clock: Clock | None = None
    name: str = LEASE_NAME
    _held_until: int = field(default=0, init=False, repr=False)

    def _now(self, now: int | None) -> int:
        if now is not None:
            return now
        return self.clock.now() if self.clock is not None else int(time.time())

    def try_acquire(self, now: int | None = None) -> bool:
        """Take the lease if it is free or expired, or renew it if held; True when this process holds it."""
        at = self._now(now)
        if self.store.try_lease(self.name, self.owner_id, at, self.ttl):
            self._held_until = at + self.ttl
            return True
        self._held_until = 0
        return False

    def renew(self, now: int | None = None) -> bool:
        """Extend the lease by `ttl`; False (and standby) when another process took it over."""
        return self.try_acquire(now)

    def release(self) -> None:
        """Give the lease up so a standby process can take over at once."""
        self.store.release_lease(self.name, self.owner_id)
        self._held_until = 0

    def is_leader(self, now: int | None = None) -> bool:
        """True while the last successful take or renewal has not run out."""
        return self._now(now) < self._held_until

    def holder(self, now: int | None = None) -> str | None:
        """Which owner holds the lease now, if anyone."""
        return self.store.lease_holder(self.name, self._now(now))
