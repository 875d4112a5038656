"""Starting and closing access review campaigns, and what operators read about them.

A campaign starts from one read of Rancher: every CRTB and PRTB (each collection listed once), the clusters,
projects and role templates, and the users, all requested at once. Each standing binding of the scope becomes an
item with its binding as read (and its fingerprint), its holder and its reviewers; the campaign, its items, the audit
event, the channel message and every reviewer's DM are stored in one transaction (the DMs go out through the paced
outbox). Closing gives undecided items the campaign's `on_timeout` verdict (a conversion no rule allows stays kept).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from bot.core import audit_actions as A
from bot.core.errors import UserError
from bot.core.model import RancherUser, RoleBinding
from bot.core.review_bindings import fingerprint
from bot.core.review_commands import ReviewStart
from bot.core.review_notices import ReviewerAsked, ReviewerItems, ReviewProgress
from bot.core.review_scope import select
from bot.core.reviewers import PeopleIndex, Reviewers, conversion, holder_groups, holder_of, reviewers_for
from bot.core.reviews import (
    Campaign,
    CampaignScope,
    CampaignStatus,
    Decision,
    ItemChange,
    ItemEvent,
    ItemFilter,
    ItemState,
    Outcome,
    ReviewItem,
    Verdict,
    outcome,
    sources,
)
from bot.core.storage import Transactions
from bot.services.audit import AuditLog
from bot.services.outbox import Outbox
from bot.services.reviews.directory import Estate, ReviewDirectory

SYSTEM = "system"


@dataclass(frozen=True)
class StartReport:
    """A started campaign: its items, the people asked to review, the items nobody but the admins can review."""

    campaign: Campaign
    items: int
    reviewers: int
    unassigned: int
    excluded: int


def progress_ref(campaign: Campaign) -> str:
    """The outbox reference of a campaign's channel message."""
    return f"review:{campaign.id}"


def ask_ref(campaign: Campaign, slack_user: str) -> str:
    """The outbox reference of a reviewer's DM for a campaign."""
    return f"review:{campaign.id}:ask:{slack_user}"


class Campaigns:
    """Start, close, list and show campaigns."""

    def __init__(
        self,
        *,
        directory: ReviewDirectory,
        tx: Transactions,
        audit: AuditLog,
        outbox: Outbox,
        governed_roles: Callable[[], set[str]],
    ) -> None:
        self._dir = directory
        self._tx = tx
        self._audit = audit
        self._outbox = outbox
        self._governed = governed_roles

    # --- starting -----------------------------------------------------------------------------------------

    def scope_of(self, start: ReviewStart) -> CampaignScope:
        """What a start request covers (every governed role when it names none)."""
        scope = start.scope(tuple(sorted(self._governed())))
        if not scope.roles:
            raise UserError("no roles to review", "name them with --roles, or add rules to the policy")
        return scope

    async def start(self, start: ReviewStart, *, actor: str, template: str = "") -> StartReport:
        """Start a campaign from one consistent read of Rancher (see the module docstring)."""
        store, settings = self._dir.store, self._dir.settings
        if store.campaign(name=start.name) is not None:
            raise UserError(f"a review named {start.name} exists already", "choose another name")
        scope = self.scope_of(start)
        rancher = self._dir.rancher
        bindings, users, estate = await asyncio.gather(
            rancher.list_all_bindings(), rancher.list_users(), self._dir.estate()
        )
        chosen = select(bindings, scope, estate.clusters, estate.projects, settings.grant_label)
        if len(chosen.bindings) > settings.max_items:
            raise UserError(
                f"{len(chosen.bindings)} bindings match, over review.max_items ({settings.max_items})",
                "narrow the review with --roles or --targets",
            )
        now = self._dir.clock.now()
        due = start.due.total_seconds() if start.due is not None else settings.due_s
        verdict = start.on_timeout or Verdict(settings.on_timeout)
        campaign = Campaign(
            id=0,
            name=start.name,
            scope=scope,
            created_by=actor,
            created_at=now,
            due_at=now + int(due),
            on_timeout=verdict,
            template=template,
            excluded=chosen.excluded,
        )
        items = self._items(chosen.bindings, estate, {u.id: u for u in users}, now)
        with self._tx.atomic():
            stored = store.create(campaign)
            if stored is None:
                raise UserError(f"a review named {start.name} exists already", "choose another name")
            store.add_items(stored.id, items)
            reviewers = self._dir.reviewers(stored)
            asked = {i.id for _, mine in reviewers for i in mine}
            unassigned = sum(1 for i in store.items(stored.id) if i.id not in asked)
            self._audit.record(
                A.REVIEW_STARTED,
                actor=actor,
                target=stored.name,
                details={
                    "campaign_id": stored.id,
                    "campaign": stored.name,
                    "items": len(items),
                    "excluded": chosen.excluded,
                    "roles": ",".join(scope.roles),
                    "targets": ",".join(scope.targets),
                    "subjects": scope.subjects.value,
                    "due_at": stored.due_at,
                    "on_timeout": verdict.value,
                    "template": template,
                },
            )
            facts = replace(self._dir.facts(stored), reviewers=len(reviewers), unassigned=unassigned)
            self._outbox.post(
                self._channel(), progress_ref(stored) + ":post", ReviewProgress(facts), ref=progress_ref(stored)
            )
            for ident, mine in reviewers:
                ref = ask_ref(stored, ident.slack_user)
                view = ReviewerItems(stored, tuple(mine), now)
                self._outbox.dm(ident.slack_user, ref, ReviewerAsked(view), ref=ref)
        return StartReport(stored, len(items), len(reviewers), unassigned, chosen.excluded)

    def _items(
        self, bindings: Sequence[RoleBinding], estate: Estate, users: dict[str, RancherUser], now: int
    ) -> list[ReviewItem]:
        settings = self._dir.settings
        people = self._dir.people()
        policy = self._dir.policy
        cache: dict[tuple[str, str, tuple[str, ...] | None], Reviewers] = {}
        items: list[ReviewItem] = []
        for binding in bindings:
            target = estate.target(binding)
            holder = holder_of(binding, users, people)
            ident = people.identity_of(holder.principals, holder.user_id) if not holder.is_group else None
            groups = holder_groups(holder, ident)
            display = estate.display(binding)
            key = (binding.role_id, display, tuple(groups) if groups is not None else None)
            found = cache.get(key)
            if found is None:
                if target is None:
                    found = Reviewers(tuple(settings.reviewer_groups), (), "reviewer_groups")
                else:
                    found = reviewers_for(
                        policy, estate.catalog, target, binding.role_id, groups, fallback=settings.reviewer_groups
                    )
                cache[key] = found
            items.append(
                ReviewItem(
                    id=0,
                    campaign_id=0,
                    binding=binding,
                    fingerprint=fingerprint(binding),
                    target_name=display,
                    role_name=estate.catalog.name(binding.role_id),
                    holder=holder,
                    reviewer_groups=found.groups,
                    rules=found.rules,
                    updated_at=now,
                )
            )
        return items

    def _channel(self) -> str:
        return "reviews" if self._outbox.channel("reviews") else "security"

    # --- closing ------------------------------------------------------------------------------------------

    async def close(self, name: str, *, actor: str) -> Campaign:
        """Close an open campaign: undecided items get its on_timeout verdict (see the module docstring)."""
        campaign = self._dir.campaign(name)
        if campaign.status is CampaignStatus.CLOSED:
            raise UserError(f"review {campaign.name} is closed already", f"see it with `accessbot review show {name}`")
        return await self.close_campaign(campaign, actor=actor)

    async def close_campaign(self, campaign: Campaign, *, actor: str) -> Campaign:
        """Close `campaign` (no-op when another process closed it first)."""
        verdict = campaign.on_timeout
        pending = self._dir.store.items(campaign.id, ItemFilter(states=(ItemState.PENDING,)))
        estate = await self._dir.estate() if verdict is Verdict.CONVERT and pending else None
        people = self._dir.people()
        now = self._dir.clock.now()
        with self._tx.atomic():
            if not self._dir.store.close(campaign.id, now, actor):
                return self._dir.campaign_by_id(campaign.id)
            decided = 0
            for item in pending:
                chosen, note = verdict, ""
                if estate is not None:
                    chosen, note = self._timeout_conversion(item, estate, people)
                decision = Decision(chosen, "no decision before the deadline", SYSTEM, "", now, timed_out=True)
                change = ItemChange(state=ItemState.DECIDED, decision=decision, note=note)
                if self._dir.store.move(item.id, sources(ItemEvent.DECIDE), change, now):
                    decided += 1
            closed = self._dir.campaign_by_id(campaign.id)
            result = outcome(self._dir.store.counts(campaign.id))
            self._audit.record(
                A.REVIEW_CLOSED,
                actor=actor,
                target=closed.name,
                details={
                    "campaign_id": closed.id,
                    "campaign": closed.name,
                    "timed_out": decided,
                    "on_timeout": verdict.value,
                    "kept": result.kept,
                    "to_apply": result.to_apply,
                },
            )
            self._outbox.update(
                progress_ref(closed), f"{progress_ref(closed)}:closed", ReviewProgress(self._dir.facts(closed))
            )
            for ident, _ in self._dir.reviewers(closed):
                ref = ask_ref(closed, ident.slack_user)
                if self._outbox.queued(ref):
                    view = self._dir.reviewer_view(closed, ident.slack_user)
                    self._outbox.update(ref, f"{ref}:closed", ReviewerAsked(view))
        return closed

    def _timeout_conversion(self, item: ReviewItem, estate: Estate, people: PeopleIndex) -> tuple[Verdict, str]:
        """CONVERT when a rule would let the holder request it, else KEEP (a timeout never deletes more)."""
        target = estate.target(item.binding)
        ident = people.identity_of(item.holder.principals, item.holder.user_id) if not item.holder.is_group else None
        if target is None:
            return Verdict.KEEP, "kept: the target is gone from Rancher, so it could not be converted"
        found = conversion(
            self._dir.policy, estate.catalog, target, item.binding.role_id, holder_groups(item.holder, ident)
        )
        if found.allowed:
            return Verdict.CONVERT, ""
        return Verdict.KEEP, f"kept: could not convert ({found.why})"

    # --- reading ------------------------------------------------------------------------------------------

    def listing(self, limit: int = 100) -> list[tuple[Campaign, Outcome]]:
        """Campaigns, newest first, with their outcomes."""
        return [(c, outcome(self._dir.store.counts(c.id))) for c in self._dir.store.campaigns(limit=limit)]

    def items(self, campaign: Campaign) -> list[ReviewItem]:
        """Every item of a campaign."""
        return self._dir.store.items(campaign.id)
