"""What every review use case looks up: campaigns and items, linked people, Rancher's names, each reviewer's items."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from bot.core.errors import NotFound, NotLinked, UserError, is_number, shown
from bot.core.model import Cluster, Identity, LinkStatus, PrincipalSet, Project, RoleBinding
from bot.core.policy import Catalog, Policy, ResolvedTarget
from bot.core.ports import Clock, RancherApi
from bot.core.principals import PrincipalMapping
from bot.core.review_notices import CampaignFacts, ReviewerItems
from bot.core.review_storage import ReviewStore
from bot.core.reviewers import PeopleIndex, holds
from bot.core.reviews import (
    Campaign,
    CampaignStatus,
    ItemFilter,
    ItemState,
    ReviewItem,
    outcome,
    reviewer_groups_of,
    reviewer_key,
)
from bot.core.storage import LinkStore


@dataclass(frozen=True)
class ReviewSettings:
    """How reviews run (from `review:` and `rancher.grant_label`), in plain values; durations in seconds."""

    grant_label: str = "accessbot.io/grant"
    reviewer_groups: tuple[str, ...] = ()
    self_attestation: bool = False
    auto_apply: bool = False
    due_s: int = 14 * 86400
    on_timeout: str = "keep"
    remind_before_s: tuple[int, ...] = (3 * 86400, 86400)
    max_items: int = 50_000
    apply_concurrency: int = 8
    stuck_after_s: int = 120


@dataclass(frozen=True)
class Estate:
    """Rancher's clusters, projects and role templates, as one review reads them."""

    clusters: dict[str, Cluster]
    projects: dict[str, Project]
    catalog: Catalog

    def target(self, binding: RoleBinding) -> ResolvedTarget | None:
        """The binding's cluster (and project) as the policy matches them; None when Rancher no longer has it."""
        cluster = self.clusters.get(binding.cluster_id or "")
        if cluster is None:
            return None
        if binding.project_id:
            project = self.projects.get(binding.project_id)
            return ResolvedTarget(cluster, project) if project is not None else None
        return ResolvedTarget(cluster)

    def display(self, binding: RoleBinding) -> str:
        """`cluster` or `cluster/project` by name (ids where Rancher has no name for them)."""
        cluster = self.clusters.get(binding.cluster_id or "")
        cname = cluster.name if cluster is not None else (binding.cluster_id or "")
        if not binding.project_id:
            return cname
        project = self.projects.get(binding.project_id)
        return f"{cname}/{project.name if project is not None else binding.project_id}"


class ReviewDirectory:
    """Lookups shared by the review use cases."""

    def __init__(
        self,
        *,
        store: ReviewStore,
        links: LinkStore,
        rancher: RancherApi,
        clock: Clock,
        policy: Policy,
        mapping: PrincipalMapping,
        admins: frozenset[str],
        settings: ReviewSettings,
    ) -> None:
        self.store = store
        self._links = links
        self.rancher = rancher
        self.clock = clock
        self.policy = policy
        self.mapping = mapping
        self.admins = admins
        self.settings = settings

    # --- campaigns and items ------------------------------------------------------------------------------

    def campaign(self, name: str) -> Campaign:
        """A campaign by name (or number), or NotFound."""
        text = name.strip()
        found = self.store.campaign(name=text)
        if found is None and is_number(text) and len(text) < 16:
            found = self.store.campaign(campaign_id=int(text))
        if found is None:
            raise NotFound(f"there is no review {shown(text)}", "see them with `accessbot review list`")
        return found

    def campaign_by_id(self, campaign_id: int) -> Campaign:
        """A campaign by id, or NotFound."""
        found = self.store.campaign(campaign_id=campaign_id)
        if found is None:
            raise NotFound("there is no such review")
        return found

    def item(self, item_id: int) -> ReviewItem:
        """An item by number, or NotFound."""
        found = self.store.item(item_id)
        if found is None:
            raise NotFound(f"there is no review item {item_id}", "items are listed by `accessbot review show NAME`")
        return found

    def facts(self, campaign: Campaign, *, skipped: Sequence[ReviewItem] = ()) -> CampaignFacts:
        """Where a campaign stands now, for its channel message."""
        return CampaignFacts(
            campaign=campaign,
            outcome=outcome(self.store.counts(campaign.id)),
            now=self.clock.now(),
            skipped=tuple(skipped),
        )

    # --- people -------------------------------------------------------------------------------------------

    def identity(self, slack_user: str) -> Identity:
        """The active linked identity of a Slack user, or NotLinked (a reviewer decides as a person)."""
        record = self._links.get(slack_user)
        if record is None or record.identity.status is not LinkStatus.ACTIVE:
            raise NotLinked("reviewers decide as themselves: link your Slack account to your company identity first")
        return record.identity

    def linked(self) -> list[Identity]:
        """Every active linked identity."""
        return [r.identity for r in self._links.active() if r.identity.status is LinkStatus.ACTIVE]

    def people(self) -> PeopleIndex:
        """Linked identities by Rancher principal."""
        return PeopleIndex.build(self.linked(), self.mapping)

    def principals(self, ident: Identity) -> PrincipalSet:
        """The Rancher principals an identity maps to."""
        return self.mapping.of(ident)

    def is_admin(self, slack_user: str) -> bool:
        """True for a Slack admin (`slack.admins`)."""
        return slack_user in self.admins

    def require_admin(self, slack_user: str) -> None:
        """Raise unless the caller is an admin (starting a review from Slack)."""
        if not self.is_admin(slack_user):
            raise UserError("only admins start access reviews", "ask an admin, or run `accessbot review start`")

    # --- each reviewer's items ----------------------------------------------------------------------------

    def reviewer_items(self, campaign: Campaign, ident: Identity, *, admin: bool = False) -> list[ReviewItem]:
        """The items this person reviews: their reviewer groups' (an admin's: also those nobody else reviews),
        not the ones they hold unless self-attestation is on."""
        keys = _keys_of(self.store.reviewer_keys(campaign.id), ident, admin)
        if not keys:
            return []
        return self._not_held(self.store.items(campaign.id, ItemFilter(reviewer_keys=keys)), ident)

    def _not_held(self, items: list[ReviewItem], ident: Identity) -> list[ReviewItem]:
        if self.settings.self_attestation:
            return items
        principals = self.principals(ident)
        return [i for i in items if not holds(i.holder, ident, principals)]

    def reviewer_view(self, campaign: Campaign, slack_user: str, page: int = 0) -> ReviewerItems:
        """A reviewer's items of one campaign, for the DM, App Home or `/access review`."""
        ident = self.identity(slack_user)
        items = self.reviewer_items(campaign, ident, admin=self.is_admin(slack_user))
        return ReviewerItems(campaign, tuple(items), self.clock.now(), page)

    def reviewers(self, campaign: Campaign) -> list[tuple[Identity, list[ReviewItem]]]:
        """Every linked person with items to review in a campaign, with those items (the campaign's items are read
        once for all of them: a read per reviewer made a 10,000-binding start take 20 s with 60 reviewers)."""
        all_keys = self.store.reviewer_keys(campaign.id)
        keyed: list[tuple[str, ReviewItem]] | None = None
        out = []
        for ident in self.linked():
            keys = set(_keys_of(all_keys, ident, self.is_admin(ident.slack_user)))
            if not keys:
                continue
            if keyed is None:
                keyed = [(reviewer_key(i.reviewer_groups), i) for i in self.store.items(campaign.id)]
            items = self._not_held([i for key, i in keyed if key in keys], ident)
            if items:
                out.append((ident, items))
        return out

    def awaiting(self, slack_user: str) -> list[tuple[Campaign, int]]:
        """The open campaigns in which this person still has undecided items, with how many."""
        try:
            ident = self.identity(slack_user)
        except NotLinked:
            return []
        out = []
        for campaign in self.store.campaigns((CampaignStatus.OPEN,)):
            items = self.reviewer_items(campaign, ident, admin=self.is_admin(slack_user))
            undecided = sum(1 for i in items if i.state is ItemState.PENDING)
            if undecided:
                out.append((campaign, undecided))
        return out

    # --- Rancher --------------------------------------------------------------------------------------------

    async def estate(self) -> Estate:
        """Clusters, projects and role templates (from the client's name cache)."""
        clusters, projects, templates = await asyncio.gather(
            self.rancher.list_clusters(), self.rancher.list_projects(), self.rancher.list_role_templates()
        )
        return Estate(
            clusters={c.id: c for c in clusters},
            projects={p.id: p for p in projects},
            catalog=Catalog.of(templates),
        )


def _keys_of(keys: Sequence[str], ident: Identity, admin: bool) -> list[str]:
    """The reviewer keys a person reviews: those naming one of their groups (an admin: also those naming none)."""
    groups = set(ident.policy_groups)
    return [k for k in keys if set(reviewer_groups_of(k)) & groups or (admin and not reviewer_groups_of(k))]
