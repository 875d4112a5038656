"""Applying a campaign's decisions to Rancher, and undoing one: the plan, the crash-safe apply, the undo, and the
finishing of an apply or undo a crash interrupted.

Apply, for each decided remove or convert (a few at a time):
1. re-read the binding from Rancher;
2. in one transaction: move the item `decided → applying` with the binding just read stored on it (the full binding,
   for undo) and audit the intent (`review.applying`, binding included); a binding gone, or changed since the
   campaign's read (core.review_bindings.fingerprint), goes on to `skipped` in the same transaction, audited and
   reported;
3. delete it; then `applying → applied`, audited, and a converted holder is told how to request it;
   a failure moves it back to `decided` with the reason (applied again by the next apply).
A crash between 2 and 3 leaves the item `applying`: `finish` re-reads the binding and completes the step (gone:
applied; unchanged: deleted, applied; changed: skipped). Undo mirrors it (`applied → undoing → undone`): the stored
binding is recreated with its name, role, subject and the labels and annotations people set
(core.review_bindings.restorable).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from bot.core import audit_actions as A
from bot.core.errors import ConflictError, UpstreamError, UserError
from bot.core.model import Deletion, Identity, RoleBinding
from bot.core.review_bindings import binding_json, restorable
from bot.core.review_notices import AccessConverted
from bot.core.review_plan import Plan, PlanEntry, PlanStatus, plan_entry, to_apply
from bot.core.reviews import (
    CHANGES,
    Campaign,
    ItemChange,
    ItemEvent,
    ItemFilter,
    ItemState,
    ReviewItem,
    Verdict,
    outcome,
    sources,
)
from bot.core.storage import Transactions
from bot.services.audit import AuditLog
from bot.services.outbox import Outbox
from bot.services.reviews.directory import ReviewDirectory


@dataclass(frozen=True)
class ApplyReport:
    """What one apply did: items applied, skipped (changed or gone, with why) and failed (with why)."""

    campaign: Campaign
    applied: tuple[ReviewItem, ...] = ()
    skipped: tuple[ReviewItem, ...] = ()
    failed: tuple[ReviewItem, ...] = ()


class Changes:
    """Plan, apply and undo a campaign's decisions."""

    def __init__(self, *, directory: ReviewDirectory, tx: Transactions, audit: AuditLog, outbox: Outbox) -> None:
        self._dir = directory
        self._tx = tx
        self._audit = audit
        self._outbox = outbox

    # --- the plan -----------------------------------------------------------------------------------------

    async def plan(self, name: str) -> Plan:
        """What `apply` would delete now, and what it would leave alone (changed or gone), from one fresh read."""
        campaign = self._dir.campaign(name)
        store = self._dir.store
        result = outcome(store.counts(campaign.id))
        pending = to_apply(store.items(campaign.id, ItemFilter(states=(ItemState.DECIDED,), verdicts=CHANGES)))
        live = {(b.scope, b.id): b for b in await self._dir.rancher.list_all_bindings()} if pending else {}
        entries = tuple(plan_entry(i, live.get((i.binding.scope, i.binding.id))) for i in pending)
        return Plan(entries=entries, kept=result.kept, undecided=result.undecided)

    # --- applying -----------------------------------------------------------------------------------------

    async def apply(self, name: str, *, actor: str) -> ApplyReport:
        """Delete the bindings of every decided remove and convert of a campaign (see the module docstring)."""
        campaign = self._dir.campaign(name)
        return await self.apply_campaign(campaign, actor=actor)

    async def apply_campaign(self, campaign: Campaign, *, actor: str) -> ApplyReport:
        """Apply `campaign`'s decided changes, a few Rancher calls at a time."""
        items = to_apply(self._dir.store.items(campaign.id, ItemFilter(states=(ItemState.DECIDED,), verdicts=CHANGES)))
        gate = asyncio.Semaphore(max(1, self._dir.settings.apply_concurrency))

        async def one(item: ReviewItem) -> ReviewItem:
            async with gate:
                return await self._apply_one(campaign, item, actor)

        done = await asyncio.gather(*(one(i) for i in items))
        return ApplyReport(
            campaign,
            applied=tuple(i for i in done if i.state is ItemState.APPLIED),
            skipped=tuple(i for i in done if i.state is ItemState.SKIPPED),
            failed=tuple(i for i in done if i.state is ItemState.DECIDED),
        )

    async def _apply_one(self, campaign: Campaign, item: ReviewItem, actor: str) -> ReviewItem:
        store, now = self._dir.store, self._dir.clock.now()
        try:
            live = await self._dir.rancher.get_binding(item.binding)
        except UpstreamError as err:
            return self._failed(campaign, item, f"Rancher could not be read: {err.message}", actor)
        entry = plan_entry(item, live)
        with self._tx.atomic():
            change = ItemChange(state=ItemState.APPLYING, deleted=live if entry.status is PlanStatus.READY else None)
            if not store.move(item.id, sources(ItemEvent.BEGIN_APPLY), change, now):
                return self._dir.item(item.id)  # decided again or applied by someone else meanwhile
            self._note(A.REVIEW_APPLYING, campaign, item, actor, binding=binding_json(live or item.binding))
            if entry.status is not PlanStatus.READY:
                return self._skip(campaign, item, entry, actor)
        assert live is not None
        return await self._delete(campaign, self._dir.item(item.id), live, actor)

    async def _delete(self, campaign: Campaign, item: ReviewItem, live: RoleBinding, actor: str) -> ReviewItem:
        try:
            outcome_ = await self._dir.rancher.delete_binding(live)
        except UpstreamError as err:
            return self._abort(campaign, item, f"Rancher refused the deletion: {err.message}", actor)
        return self._applied(campaign, item, actor, already=outcome_ is Deletion.ALREADY_GONE)

    def _applied(self, campaign: Campaign, item: ReviewItem, actor: str, *, already: bool = False) -> ReviewItem:
        now = self._dir.clock.now()
        note = "it was already gone when the bot deleted it" if already else ""
        with self._tx.atomic():
            change = ItemChange(state=ItemState.APPLIED, applied_at=now, applied_by=actor, note=note)
            if not self._dir.store.move(item.id, sources(ItemEvent.APPLIED), change, now):
                return self._dir.item(item.id)
            self._note(A.REVIEW_APPLIED, campaign, item, actor, why=note)
            if item.verdict is Verdict.CONVERT:
                self._tell_converted(campaign, item)
        return self._dir.item(item.id)

    def _skip(self, campaign: Campaign, item: ReviewItem, entry: PlanEntry, actor: str) -> ReviewItem:
        """Inside the apply transaction: leave a changed or vanished binding alone, audited and reported."""
        now = self._dir.clock.now()
        self._dir.store.move(item.id, sources(ItemEvent.SKIP), ItemChange(state=ItemState.SKIPPED, note=entry.why), now)
        self._note(A.REVIEW_SKIPPED, campaign, item, actor, why=entry.why, outcome="refused")
        return self._dir.item(item.id)

    def _abort(self, campaign: Campaign, item: ReviewItem, why: str, actor: str) -> ReviewItem:
        now = self._dir.clock.now()
        with self._tx.atomic():
            change = ItemChange(state=ItemState.DECIDED, note=why)
            if self._dir.store.move(item.id, sources(ItemEvent.ABORT), change, now):
                self._note(A.REVIEW_FAILED, campaign, item, actor, why=why, outcome="failed")
        return self._dir.item(item.id)

    def _failed(self, campaign: Campaign, item: ReviewItem, why: str, actor: str) -> ReviewItem:
        """A decided item that could not even be read: noted and audited, left decided."""
        now = self._dir.clock.now()
        with self._tx.atomic():
            if self._dir.store.move(item.id, (ItemState.DECIDED,), ItemChange(note=why), now):
                self._note(A.REVIEW_FAILED, campaign, item, actor, why=why, outcome="failed")
        return self._dir.item(item.id)

    def _tell_converted(self, campaign: Campaign, item: ReviewItem) -> None:
        """DM the holder (a group's linked members) how to request the access from now on."""
        target = item.target_name
        notice = AccessConverted(item, campaign.name, ", ".join(item.rules[:1]), target)
        for ident in self._holders(item):
            self._outbox.dm(ident.slack_user, f"review:{campaign.id}:converted:{item.id}:{ident.slack_user}", notice)

    def _holders(self, item: ReviewItem) -> list[Identity]:
        holder = item.holder
        if not holder.is_group:
            return [i for i in self._dir.linked() if i.slack_user == holder.slack_user] if holder.slack_user else []
        pid = holder.principals[0] if holder.principals else ""
        return [i for i in self._dir.linked() if pid in self._dir.principals(i).group_principal_ids]

    # --- undo ---------------------------------------------------------------------------------------------

    async def undo(self, item_id: int, *, actor: str) -> ReviewItem:
        """Recreate the binding an applied remove or convert deleted, as it was (see the module docstring)."""
        item = self._dir.item(item_id)
        if item.state is not ItemState.APPLIED or item.deleted is None:
            raise UserError(
                f"item {item_id} is {item.state.value}; only applied removals and conversions can be undone"
            )
        campaign = self._dir.campaign_by_id(item.campaign_id)
        now = self._dir.clock.now()
        with self._tx.atomic():
            if not self._dir.store.move(
                item.id, sources(ItemEvent.BEGIN_UNDO), ItemChange(state=ItemState.UNDOING), now
            ):
                raise UserError(f"item {item_id} changed meanwhile", "look at it again")
            self._note(A.REVIEW_RESTORING, campaign, item, actor, binding=binding_json(item.deleted))
        return await self._restore(campaign, self._dir.item(item.id), actor)

    async def _restore(self, campaign: Campaign, item: ReviewItem, actor: str) -> ReviewItem:
        deleted = item.deleted
        assert deleted is not None
        labels, annotations = restorable(deleted, self._dir.settings.grant_label, f"review item {item.id}")
        try:
            created = await self._dir.rancher.create_binding(
                name=deleted.name,
                cluster_id=deleted.cluster_id or "",
                project_id=deleted.project_id,
                role_id=deleted.role_id,
                user_id=None if deleted.group_principal_id else deleted.user_id,
                user_principal_id=None if deleted.group_principal_id or deleted.user_id else deleted.user_principal_id,
                group_principal_id=deleted.group_principal_id,
                labels=labels,
                annotations=annotations,
            )
        except ConflictError as err:
            why = f"Rancher already holds a different binding named {deleted.name}: {err.message}"
            self._undo_failed(campaign, item, why, actor)
            raise UserError(f"item {item.id} was not restored: {why}") from err
        except UpstreamError as err:
            self._undo_failed(campaign, item, f"Rancher refused: {err.message}", actor)
            raise
        now = self._dir.clock.now()
        with self._tx.atomic():
            change = ItemChange(state=ItemState.UNDONE, restored_id=created.id, note="")
            self._dir.store.move(item.id, sources(ItemEvent.UNDONE), change, now)
            self._note(A.REVIEW_RESTORED, campaign, item, actor, restored_id=created.id)
        return self._dir.item(item.id)

    def _undo_failed(self, campaign: Campaign, item: ReviewItem, why: str, actor: str) -> None:
        now = self._dir.clock.now()
        with self._tx.atomic():
            change = ItemChange(state=ItemState.APPLIED, note=f"undo failed: {why}")
            if self._dir.store.move(item.id, sources(ItemEvent.UNDO_FAILED), change, now):
                self._note(A.REVIEW_FAILED, campaign, item, actor, why=why, outcome="failed")

    # --- finishing what a crash interrupted -------------------------------------------------------------

    async def finish(self, now: int, *, actor: str = "system") -> int:
        """Complete every apply or undo left in flight longer than `stuck_after` (a crash); return how many."""
        stale = now - self._dir.settings.stuck_after_s
        finished = 0
        for item in self._dir.store.in_flight():
            if item.updated_at > stale:
                continue  # an apply or undo under way right now (another process, or this one)
            campaign = self._dir.campaign_by_id(item.campaign_id)
            try:
                if item.state is ItemState.APPLYING:
                    await self._finish_apply(campaign, item, actor)
                else:
                    await self._restore(campaign, item, actor)
            except (UpstreamError, UserError):
                continue  # noted on the item; the next run tries again
            finished += 1
        return finished

    async def _finish_apply(self, campaign: Campaign, item: ReviewItem, actor: str) -> None:
        recorded = item.deleted
        if recorded is None:  # the crash came after the intent of a skip: its transaction never committed
            self._abort(campaign, item, "interrupted before the binding was read", actor)
            return
        live = await self._dir.rancher.get_binding(recorded)
        if live is None or live.terminating:
            self._applied(campaign, item, actor)
            return
        entry = plan_entry(item, live)
        if entry.status is PlanStatus.CHANGED:
            with self._tx.atomic():
                self._skip(campaign, item, entry, actor)
            return
        await self._delete(campaign, item, live, actor)

    # --- the audit trail ----------------------------------------------------------------------------------

    def _note(
        self,
        action: str,
        campaign: Campaign,
        item: ReviewItem,
        actor: str,
        *,
        why: str = "",
        outcome: str = "ok",
        **extra: object,
    ) -> None:
        self._audit.record(
            action,
            actor=actor,
            target=item.target_name,
            outcome=outcome,
            reason=why,
            details={
                "campaign_id": campaign.id,
                "campaign": campaign.name,
                "item_id": item.id,
                "verdict": item.verdict.value if item.verdict is not None else "",
                "binding_id": item.binding.id,
                "role": item.binding.role_id,
                "holder": item.holder.name,
                **({"why": why} if why else {}),
                **extra,
            },
        )
