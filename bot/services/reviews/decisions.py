"""Reviewers' decisions: keep (with a reason), convert to time-boxed, remove; one item, or all of one's undecided items.

A decision belongs to a person (the IdP identity behind the clicking Slack account) who reviews the item now (in its
reviewer groups, or an admin) and is not its holder unless self-attestation is configured. Authority comes from the
database, never from the button: a click names an item and nothing else. A conversion is refused when no rule would
let the holder request the role on the target. Each decision is a compare-and-set on the item, audited.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.core import audit_actions as A
from bot.core.commands import MAX_REASON
from bot.core.errors import NotAllowed, UserError
from bot.core.model import Identity, person_key
from bot.core.reviewers import PeopleIndex, conversion, holder_groups, may_decide
from bot.core.reviews import DECIDABLE, Campaign, CampaignStatus, Decision, ItemChange, ItemState, ReviewItem, Verdict
from bot.core.storage import LinkStore, Transactions
from bot.services.audit import AuditLog
from bot.services.reviews.directory import Estate, ReviewDirectory

MIN_KEEP_REASON = 3


@dataclass(frozen=True)
class DecideOutcome:
    """One decision as recorded (`changed` False when the same decision was there already)."""

    item: ReviewItem
    campaign: Campaign
    changed: bool


@dataclass(frozen=True)
class BulkOutcome:
    """A bulk decision: how many items it decided, and the ones it could not convert with why."""

    campaign: Campaign
    verdict: Verdict
    decided: int
    refused: tuple[tuple[ReviewItem, str], ...] = ()


def visible_length(text: str) -> int:
    """How many characters of `text` show: spaces and invisible ones (zero-width, format, control) not counted."""
    return sum(1 for ch in text if ch.isprintable() and not ch.isspace())


def clean_reason(verdict: Verdict, reason: str) -> str:
    """The reason as stored; a keep needs one (3 visible characters or more), every reason is at most 500."""
    text = reason.strip()
    if len(text) > MAX_REASON:
        raise UserError(f"the reason is {len(text)} characters long (at most {MAX_REASON})")
    if verdict is Verdict.KEEP and visible_length(text) < MIN_KEEP_REASON:
        raise UserError(
            "keeping standing access needs a reason", "say why this binding must stay (3 characters or more)"
        )
    return text


class Decisions:
    """Record reviewers' decisions."""

    def __init__(self, *, directory: ReviewDirectory, tx: Transactions, audit: AuditLog, links: LinkStore) -> None:
        self._dir = directory
        self._tx = tx
        self._audit = audit
        self._links = links

    def decidable(self, item_id: int, slack_user: str) -> ReviewItem:
        """The item, when this person may decide it now (the reason form shows it only to them); else raise."""
        return self._check(item_id, slack_user)[0]

    def _check(self, item_id: int, slack_user: str) -> tuple[ReviewItem, Campaign, Identity, bool]:
        ident = self._dir.identity(slack_user)
        item = self._dir.item(item_id)
        eligible = may_decide(
            item,
            ident,
            self._dir.principals(ident),
            admin=self._dir.is_admin(slack_user),
            self_attestation=self._dir.settings.self_attestation,
        )
        if not eligible.allowed:
            raise NotAllowed(eligible.why)
        campaign = self._open(item.campaign_id)
        if item.state not in DECIDABLE:
            raise UserError(f"this binding is {item.state.value}: its decision can no longer change")
        return item, campaign, ident, eligible.self_attested

    async def decide(self, item_id: int, slack_user: str, verdict: Verdict, reason: str = "") -> DecideOutcome:
        """Record one reviewer's verdict on one item (see the module docstring for who may)."""
        item, campaign, ident, self_attested = self._check(item_id, slack_user)
        text = clean_reason(verdict, reason)
        if verdict is Verdict.CONVERT:
            why = self._not_convertible(item, await self._dir.estate(), None)
            if why:
                raise UserError(
                    f"{item.holder.name} cannot request {item.binding.role_id} on {item.target_name}, so this "
                    f"binding cannot become time-boxed access: {why}",
                    "keep it (with a reason) or remove it; a policy rule for the holder would make conversion possible",
                )
        if item.decision is not None and item.decision.verdict is verdict and item.decision.reason == text:
            return DecideOutcome(item, campaign, changed=False)
        decision = Decision(
            verdict, text, slack_user, person_key(ident.issuer, ident.subject), self._dir.clock.now(),
            self_attested=self_attested,
        )  # fmt: skip
        with self._tx.atomic():
            if not self._record(campaign, item, decision, bulk=False):
                raise UserError("this binding changed meanwhile", "look at it again")
        return DecideOutcome(self._dir.item(item.id), campaign, changed=True)

    async def decide_all(self, campaign_id: int, slack_user: str, verdict: Verdict, reason: str) -> BulkOutcome:
        """Give every undecided item this person reviews in a campaign one verdict (keep or convert) and reason."""
        if verdict is Verdict.REMOVE:
            raise UserError("remove bindings one by one", "bulk decisions keep or convert")
        ident = self._dir.identity(slack_user)
        campaign = self._open(campaign_id)
        text = clean_reason(verdict, reason)
        admin = self._dir.is_admin(slack_user)
        items = [i for i in self._dir.reviewer_items(campaign, ident, admin=admin) if i.state is ItemState.PENDING]
        estate = await self._dir.estate() if verdict is Verdict.CONVERT and items else None
        people = self._dir.people() if estate is not None else None
        principals = self._dir.principals(ident)
        now = self._dir.clock.now()
        decided = 0
        refused: list[tuple[ReviewItem, str]] = []
        with self._tx.atomic():
            for item in items:
                eligible = may_decide(
                    item, ident, principals, admin=admin, self_attestation=self._dir.settings.self_attestation
                )
                if not eligible.allowed:
                    continue
                if estate is not None:
                    why = self._not_convertible(item, estate, people)
                    if why:
                        refused.append((item, why))
                        continue
                decision = Decision(
                    verdict, text, slack_user, person_key(ident.issuer, ident.subject), now,
                    self_attested=eligible.self_attested,
                )  # fmt: skip
                if self._record(campaign, item, decision, bulk=True):
                    decided += 1
        return BulkOutcome(campaign, verdict, decided, tuple(refused))

    def _open(self, campaign_id: int) -> Campaign:
        campaign = self._dir.campaign_by_id(campaign_id)
        if campaign.status is not CampaignStatus.OPEN:
            raise UserError(f"review {campaign.name} is closed; its decisions are final")
        return campaign

    def _holder_identity(self, item: ReviewItem, people: PeopleIndex | None) -> Identity | None:
        """The holder's linked identity now (by the person recorded at the start, else by principal)."""
        holder = item.holder
        if holder.is_group:
            return None
        if holder.person:
            issuer, _, subject = holder.person.partition("|")
            record = self._links.active_by_subject(issuer, subject)
            if record is not None:
                return record.identity
        index = people or self._dir.people()
        return index.identity_of(holder.principals, holder.user_id)

    def _not_convertible(self, item: ReviewItem, estate: Estate, people: PeopleIndex | None) -> str:
        """Why the holder could not request the role on the target ("" when a rule would let them)."""
        target = estate.target(item.binding)
        if target is None:
            return "its cluster or project is gone from Rancher"
        groups = holder_groups(item.holder, self._holder_identity(item, people))
        found = conversion(self._dir.policy, estate.catalog, target, item.binding.role_id, groups)
        return "" if found.allowed else found.why

    def _record(self, campaign: Campaign, item: ReviewItem, decision: Decision, *, bulk: bool) -> bool:
        """Store and audit one decision (inside the caller's transaction); False when the item moved meanwhile."""
        change = ItemChange(state=ItemState.DECIDED, decision=decision)
        if not self._dir.store.move(item.id, DECIDABLE, change, decision.at):
            return False
        b = item.binding
        self._audit.record(
            A.REVIEW_DECIDED,
            actor=decision.by,
            target=item.target_name,
            reason=decision.reason,
            details={
                "campaign_id": campaign.id,
                "campaign": campaign.name,
                "item_id": item.id,
                "binding_id": b.id,
                "role": b.role_id,
                "target": item.target_name,
                "holder": item.holder.name,
                "verdict": decision.verdict.value,
                "person": decision.person,
                "self_attested": decision.self_attested,
                "bulk": bulk,
            },
        )
        return True
