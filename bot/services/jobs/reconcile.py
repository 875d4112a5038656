"""Reconciliation: compare tagged Rancher bindings with the grants, execute core.drift's plan, report what it found.

The planner is pure (core.drift); this job reads the bindings first (each collection listed once) and the grants
second (the order the plan's correctness needs), then deletes orphans, marks or repairs missing bindings, finishes
grants a crash left in `activating` or `revoking`, and reports standing access to governed roles once. It also
hands the full list to the standing-binding gauge of the access reviews, which keeps one count a day.

It acts on a consistent view: the sweep runs beside it, so before it deletes or reports anything it reads the
grant and the binding again. A binding the sweep already deleted (gone, or `removed` while its finalizers run) is
not an orphan, and a delete that finds nothing (404) is not reported: the security channel carries only real
anomalies.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from bot.core import audit_actions as A
from bot.core import drift, grant_lifecycle
from bot.core.errors import NotLinked, UpstreamError
from bot.core.grant_lifecycle import OPEN
from bot.core.model import Deletion, Grant, GrantChange, GrantState, RoleBinding, Scope
from bot.core.notices import BindingMissing, BindingRepaired, OrphanDeleted, StandingAccessFound
from bot.core.ports import RancherApi
from bot.core.storage import GrantStore, JobMarks, Transactions
from bot.services.audit import AuditLog
from bot.services.grants import Bindings, Directory, Lifecycle, grant_details
from bot.services.jobs.sweep import SYSTEM, RevocationSweep
from bot.services.outbox import Outbox

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReconcileSettings:
    """What reconciliation may do, and when a grant counts as stuck (seconds)."""

    grant_label: str = "accessbot.io/grant"
    repair_drift: bool = False
    report_untagged: bool = False
    stuck_after: int = 120


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


class Reconciler:
    """Brings Rancher and the grants back in line."""

    def __init__(
        self,
        *,
        tx: Transactions,
        grants: GrantStore,
        marks: JobMarks,
        rancher: RancherApi,
        directory: Directory,
        bindings: Bindings,
        lifecycle: Lifecycle,
        sweep: RevocationSweep,
        audit: AuditLog,
        outbox: Outbox,
        settings: ReconcileSettings,
        measure: Callable[[Sequence[RoleBinding], int], object] | None = None,
    ) -> None:
        self._tx = tx
        self._grants = grants
        self._marks = marks
        self._rancher = rancher
        self._dir = directory
        self._bindings = bindings
        self._lifecycle = lifecycle
        self._sweep = sweep
        self._audit = audit
        self._outbox = outbox
        self.settings = settings
        self._measure = measure

    async def reconcile(self, now: int) -> ReconcileResult:
        """Compare tagged Rancher bindings with the grants: delete orphans, report/repair drift, finish stuck grants."""
        label = self.settings.grant_label
        everything = await self._rancher.list_all_bindings()  # bindings first, then grants
        if self._measure is not None:  # the standing-binding gauge reads the same list (services.reviews.measures)
            with self._tx.atomic():
                self._measure(everything, now)
        bindings = [b for b in everything if label in b.labels or label in b.annotations]
        governed: set[str] = set()
        if self.settings.report_untagged:
            governed = self._dir.governed_roles()
            bindings += [b for b in everything if b.role_id in governed and not b.terminating and label not in b.labels]
        grants = self._grants.find(states=OPEN, limit=1_000_000)
        known = {g.id for g in grants}
        for tag in {b.labels.get(label) or b.annotations.get(label) for b in bindings} - known - {None, ""}:
            found = self._grants.get(str(tag))
            if found is not None:
                grants.append(found)
        plan = drift.plan(grants, bindings, label, governed, now)
        errors: list[str] = []
        deleted = await self._delete_orphans(plan.delete, now, errors)
        missing, repaired = await self._handle_missing(plan.missing, now, errors)
        grace = timedelta(seconds=self.settings.stuck_after)
        busy = self._sweep.busy
        activated = 0
        for grant in [a.grant for a in plan.adopt] + list(plan.unfinished_activation):
            if grant.id in busy or not grant_lifecycle.stuck(grant, now, grace):
                continue
            try:
                await self._lifecycle.finish_activation(grant)
                activated += 1
            except Exception as err:
                errors.append(f"finish activation of {grant.id}: {err}")
                log.warning("finishing activation of %s failed: %s", grant.id, err)
        stuck_revokes = [
            p.grant for p in plan.finish_revoke if p.grant.id not in busy and grant_lifecycle.stuck(p.grant, now, grace)
        ]
        outcomes = await self._sweep.revoke_all([self._sweep.ending(g, now) for g in stuck_revokes], now)
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

    async def _delete_orphans(self, orphans: Iterable[drift.Orphan], now: int, errors: list[str]) -> int:
        deleted = 0
        for orphan in orphans:
            binding = orphan.binding
            try:
                if not await self._still_orphan(orphan):
                    continue
                outcome = await self._rancher.delete_binding(binding)
            except UpstreamError as err:
                errors.append(f"delete {binding.id}: {err}")
                log.warning("deleting orphan binding %s failed: %s", binding.id, err)
                continue
            if outcome is Deletion.ALREADY_GONE:
                continue  # someone (the sweep) deleted it between the re-read and the delete: nothing to report
            target = binding.project_id or binding.cluster_id or ""
            with self._tx.atomic():
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
                        "terminating": outcome is Deletion.TERMINATING,
                    },
                )
                self._outbox.post("security", f"orphan:{binding.id}:{now}", OrphanDeleted(binding, orphan.why))
            deleted += 1
        return deleted

    async def _still_orphan(self, orphan: drift.Orphan) -> bool:
        """Re-read before deleting: the binding still there and live, its grant (if any) still over."""
        grant = self._grants.get(orphan.grant_id) if orphan.grant_id else None
        if grant is not None and grant.state in OPEN and orphan.binding.id == grant.binding_id:
            return False  # the grant has recorded this very binding since the plan was made
        now = await self._rancher.get_binding(orphan.binding)
        return now is not None and not now.terminating

    async def _still_missing(self, grant: Grant) -> Grant | None:
        """Re-read before reporting: the grant still active, and its recorded binding really gone or terminating."""
        current = self._grants.get(grant.id)
        if current is None or current.state is not GrantState.ACTIVE:
            return None  # the sweep claimed it meanwhile
        if current.binding_id:
            binding = await self._rancher.get_binding(
                RoleBinding(
                    id=current.binding_id,
                    scope=Scope.PROJECT if current.target.project_id else Scope.CLUSTER,
                    role_id=current.role_id,
                )
            )
            if binding is not None and not binding.terminating:
                return None  # created after the bindings were listed
        return current

    async def _handle_missing(self, grants: Iterable[Grant], now: int, errors: list[str]) -> tuple[int, int]:
        found = repaired = 0
        for planned in grants:
            try:
                grant = await self._still_missing(planned)
            except UpstreamError as err:
                errors.append(f"re-read {planned.id}: {err}")
                continue
            if grant is None:
                continue
            if not grant.drifted:
                with self._tx.atomic():
                    if not self._grants.update(grant.id, [GrantState.ACTIVE], GrantChange(drifted=True), now):
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
                    self._outbox.post(
                        "security", f"drift-missing:{grant.id}:{now}", BindingMissing(grant, self.settings.repair_drift)
                    )
                found += 1
            if self.settings.repair_drift:
                try:
                    await self._repair(grant, now)
                    repaired += 1
                except (UpstreamError, NotLinked) as err:
                    errors.append(f"repair {grant.id}: {err}")
                    log.warning("recreating the binding of %s failed: %s", grant.id, err)
        return found, repaired

    async def _repair(self, grant: Grant, now: int) -> None:
        binding = await self._bindings.ensure(grant, adopt=False)
        with self._tx.atomic():
            if not self._grants.update(
                grant.id,
                [GrantState.ACTIVE],
                GrantChange(drifted=False, binding_id=binding.id, binding_name=binding.name),
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
            self._outbox.post("security", f"drift-repaired:{grant.id}:{now}", BindingRepaired(grant))

    def _report_untagged(self, bindings: Iterable[RoleBinding], now: int) -> int:
        reported = 0
        for binding in bindings:
            target = binding.project_id or binding.cluster_id or ""
            with self._tx.atomic():
                if not self._marks.claim(f"untagged:{binding.id}", str(now), now):
                    continue
                self._audit.record(
                    A.DRIFT_UNTAGGED,
                    actor=SYSTEM,
                    target=target,
                    reason="standing access to a governed role that nobody requested through the bot",
                    details={"binding_id": binding.id, "role": binding.role_id, "target": target, "why": "untagged"},
                )
                self._outbox.post("security", f"untagged:{binding.id}", StandingAccessFound(binding))
            reported += 1
        return reported
