"""The review storage contract (ReviewStore, StandingSamples), through the ports only, on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace

from bot.core.model import RoleBinding, Scope
from bot.core.review_bindings import fingerprint
from bot.core.reviews import (
    Campaign,
    CampaignScope,
    CampaignStatus,
    Decision,
    Holder,
    ItemChange,
    ItemEvent,
    ItemFilter,
    ItemState,
    ReviewItem,
    Subjects,
    Verdict,
    reviewer_key,
    sources,
)
from bot.core.storage import Storage

SCOPE = CampaignScope(roles=("cluster-owner", "project-*"), targets=("prod-*",), subjects=Subjects.GROUPS)


def _campaign(name: str = "q3", created_at: int = 100, **fields: object) -> Campaign:
    values: dict[str, object] = {
        "id": 0,
        "name": name,
        "scope": SCOPE,
        "created_by": "cli:ops",
        "created_at": created_at,
        "due_at": created_at + 1000,
        "on_timeout": Verdict.REMOVE,
        "template": "quarterly",
        "excluded": 2,
    }
    values.update(fields)
    return Campaign(**values)  # type: ignore[arg-type]


def _binding(n: int, **fields: object) -> RoleBinding:
    values: dict[str, object] = {
        "id": f"p-pay:prtb-{n}",
        "uid": f"uid-{n}",
        "name": f"prtb-{n}",
        "scope": Scope.PROJECT,
        "role_id": "project-owner",
        "cluster_id": "c-prod",
        "project_id": "c-prod:p-pay",
        "group_principal_id": "genericoidc_group://sre",
        "labels": {"team": "pay"},
        "annotations": {"lifecycle.cattle.io/create.mgmt-auth-prtb-controller": "true"},
    }
    values.update(fields)
    return RoleBinding(**values)  # type: ignore[arg-type]


def _item(n: int, target: str = "prod-eu/payments", reviewers: tuple[str, ...] = ("sre",)) -> ReviewItem:
    binding = _binding(n)
    return ReviewItem(
        id=0,
        campaign_id=0,
        binding=binding,
        fingerprint=fingerprint(binding),
        target_name=target,
        role_name="Project Owner",
        holder=Holder("group", f"team-{n}", ("genericoidc_group://sre",), groups=("sre", "SRE team")),
        reviewer_groups=reviewers,
        rules=("prod-approval",),
        updated_at=100,
    )


def _started(storage: Storage, items: list[ReviewItem], name: str = "q3") -> Campaign:
    campaign = storage.reviews.create(_campaign(name))
    assert campaign is not None
    storage.reviews.add_items(campaign.id, items)
    return campaign


def test_a_campaign_round_trips_every_field(storage: Storage) -> None:
    """What is stored is what is read back, by id and by name."""
    stored = storage.reviews.create(_campaign())
    assert stored is not None
    assert stored == replace(_campaign(), id=stored.id)
    assert storage.reviews.campaign(name="q3") == stored


def test_campaign_names_are_unique(storage: Storage) -> None:
    """A second campaign of the same name is refused (None), the first is untouched."""
    assert storage.reviews.create(_campaign()) is not None
    assert storage.reviews.create(_campaign(created_at=999)) is None
    assert len(storage.reviews.campaigns()) == 1


def test_closing_is_a_compare_and_set(storage: Storage) -> None:
    """Only the first close wins; the campaign records when and by whom."""
    campaign = _started(storage, [])
    assert storage.reviews.close(campaign.id, 500, "system")
    assert not storage.reviews.close(campaign.id, 600, "cli:ops")
    closed = storage.reviews.campaign(campaign_id=campaign.id)
    assert closed is not None
    assert (closed.status, closed.closed_at, closed.closed_by) == (CampaignStatus.CLOSED, 500, "system")
    assert storage.reviews.campaigns((CampaignStatus.OPEN,)) == []


def test_campaigns_between_finds_those_open_in_a_window(storage: Storage) -> None:
    """Open at some moment of [since, until): started before its end, not closed before its start."""
    early = storage.reviews.create(_campaign("early", created_at=10))
    later = storage.reviews.create(_campaign("later", created_at=300))
    assert early is not None
    assert later is not None
    storage.reviews.close(early.id, 50, "system")
    assert [c.name for c in storage.reviews.campaigns_between(100, 400)] == ["later"]
    assert [c.name for c in storage.reviews.campaigns_between(0, 400)] == ["early", "later"]


def test_items_round_trip_with_their_binding(storage: Storage) -> None:
    """Each item comes back with its binding (every field), holder, reviewers and an id of its own."""
    campaign = _started(storage, [_item(1), _item(2, "prod-eu/checkout")])
    items = storage.reviews.items(campaign.id)
    assert [i.target_name for i in items] == ["prod-eu/checkout", "prod-eu/payments"]
    first = storage.reviews.item(items[1].id)
    assert first is not None
    assert first == replace(_item(1), id=first.id, campaign_id=campaign.id)


def test_items_filter_by_state_reviewers_and_verdict(storage: Storage) -> None:
    """Filters combine; paging follows the listing order."""
    campaign = _started(storage, [_item(1), _item(2, reviewers=("security",)), _item(3)])
    ids = [i.id for i in storage.reviews.items(campaign.id)]
    decision = Decision(Verdict.KEEP, "needed", "U1", "iss|a", 200)
    assert storage.reviews.move(ids[0], sources(ItemEvent.DECIDE), ItemChange(ItemState.DECIDED, decision), 200)
    assert storage.reviews.reviewer_keys(campaign.id) == sorted({reviewer_key(["sre"]), reviewer_key(["security"])})
    sre = storage.reviews.items(campaign.id, ItemFilter(reviewer_keys=[reviewer_key(["sre"])]))
    assert len(sre) == 2
    kept = storage.reviews.items(campaign.id, ItemFilter(states=[ItemState.DECIDED], verdicts=[Verdict.KEEP]))
    assert [i.id for i in kept] == [ids[0]]
    assert [i.id for i in storage.reviews.items(campaign.id, limit=1, offset=1)] == [ids[1]]


def test_moves_are_compare_and_set_and_keep_the_decision(storage: Storage) -> None:
    """A move wins only from an expected state; the deleted binding and the decision are stored with it."""
    campaign = _started(storage, [_item(1)])
    item = storage.reviews.items(campaign.id)[0]
    decision = Decision(Verdict.REMOVE, "", "U1", "iss|a", 200, self_attested=True)
    assert not storage.reviews.move(item.id, sources(ItemEvent.BEGIN_APPLY), ItemChange(ItemState.APPLYING), 200)
    assert storage.reviews.move(item.id, sources(ItemEvent.DECIDE), ItemChange(ItemState.DECIDED, decision), 200)
    live = replace(item.binding, labels={"team": "pay", "extra": "x"})
    assert storage.reviews.move(
        item.id, sources(ItemEvent.BEGIN_APPLY), ItemChange(ItemState.APPLYING, deleted=live), 210
    )
    assert [i.id for i in storage.reviews.in_flight()] == [item.id]
    moved = storage.reviews.item(item.id)
    assert moved is not None
    assert (moved.state, moved.decision, moved.deleted, moved.updated_at) == (ItemState.APPLYING, decision, live, 210)


def test_counts_and_conversions(storage: Storage) -> None:
    """Counts per (state, verdict); conversions are found by when they were applied."""
    campaign = _started(storage, [_item(1), _item(2), _item(3)])
    first, second, _ = storage.reviews.items(campaign.id)
    decision = Decision(Verdict.CONVERT, "", "U1", "iss|a", 200)
    for state in (ItemState.DECIDED, ItemState.APPLYING):
        storage.reviews.move(first.id, (ItemState.PENDING, ItemState.DECIDED), ItemChange(state, decision), 200)
    storage.reviews.move(first.id, (ItemState.APPLYING,), ItemChange(ItemState.APPLIED, applied_at=300), 300)
    storage.reviews.move(second.id, (ItemState.PENDING,), ItemChange(ItemState.DECIDED, decision), 200)
    assert storage.reviews.counts(campaign.id) == {
        (ItemState.APPLIED, Verdict.CONVERT): 1,
        (ItemState.DECIDED, Verdict.CONVERT): 1,
        (ItemState.PENDING, None): 1,
    }
    assert [i.id for i in storage.reviews.conversions(250, 350)] == [first.id]
    assert storage.reviews.conversions(301, 400) == []


def test_many_items_are_stored_at_once(storage: Storage) -> None:
    """A bulk insert of a thousand items keeps them all, in order."""
    campaign = _started(storage, [_item(n, f"t-{n:04d}") for n in range(1000)])
    assert sum(storage.reviews.counts(campaign.id).values()) == 1000
    assert storage.reviews.items(campaign.id, limit=1)[0].target_name == "t-0000"


def test_standing_samples_keep_the_last_of_each_day(storage: Storage) -> None:
    """One sample a day (the last wins); the newest, and the newest at or before a time, are found."""
    samples = storage.standing
    assert samples.latest() is None
    samples.record("2026-01-01", 100, 50)
    samples.record("2026-01-01", 150, 48)
    samples.record("2026-01-02", 200, 45)
    assert samples.latest() == (200, 45)
    assert samples.at_or_before(199) == (150, 48)
    assert samples.at_or_before(99) is None
