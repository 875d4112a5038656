"""Access review services on the wired bot: one consistent read, decisions by identity, conversion refusals,
plan/apply/undo against the Rancher emulator, changed bindings left alone, and the review job (an interrupted apply
finished, deadlines with on_timeout, reminders, scheduled reviews)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from accessbot_emulators.rancher import RancherEmulator
from accessbot_emulators.slack import SlackEmulator
from bot.core import audit_actions as A
from bot.core import fencing
from bot.core.errors import FencedOut, NotAllowed, UserError
from bot.core.fencing import Fence
from bot.core.review_bindings import RESTORED_ANNOTATION
from bot.core.review_commands import ReviewStart
from bot.core.review_plan import PlanStatus
from bot.core.reviews import CampaignStatus, ItemChange, ItemEvent, ItemState, Verdict, sources
from bot.demo import botconfig
from tests import factories
from tests.conftest import ALICE, BOB, CAROL, SUBJECTS
from tests.reviews_rig import ADMIN, ALICE_PRINCIPAL, ALICES, CAROLS, DEVS, PROD_CHECKOUT, REVIEWS, T0, World, world


@pytest.fixture
async def w(tmp_path: Path, slack: SlackEmulator, rancher: RancherEmulator) -> AsyncIterator[World]:
    """The wired bot with the default review settings."""
    async with world(tmp_path, slack, rancher) as running:
        yield running


async def test_start_reviews_every_standing_binding_of_the_scope_from_one_read(w: World) -> None:
    """A start lists each binding collection once and makes an item of every standing (not the bot's) binding."""
    w.rancher.reset_counters()
    campaign = await w.start()
    names = {i.binding.name for i in w.items(campaign)}
    assert names == {CAROLS, DEVS, ALICES}
    by_path = w.rancher.request_counts()["by_path"]
    assert by_path["GET /v3/clusterroletemplatebindings"] == 1
    assert by_path["GET /v3/projectroletemplatebindings"] == 1
    assert w.audit(A.REVIEW_STARTED)[0].details["items"] == 3


async def test_start_queues_one_dm_per_reviewer_and_the_channel_message(w: World) -> None:
    """Bob and Carol (sre) are each asked once by DM; the campaign message goes to the reviews channel."""
    await w.start()
    assert len(factories.queued_keys(w.bot.storage, BOB, "review:")) == 1
    assert len(factories.queued_keys(w.bot.storage, CAROL, "review:")) == 1
    assert factories.queued_keys(w.bot.storage, ALICE, "review:") == []
    assert any("Access review q1" in t for t in factories.queued_texts(w.bot.storage, REVIEWS))


async def test_a_name_in_use_is_refused(w: World) -> None:
    """Starting a second campaign with the same name is refused and stores nothing more."""
    await w.start()
    with pytest.raises(UserError, match="exists already"):
        await w.start()
    assert len(w.bot.storage.reviews.campaigns()) == 1


async def test_the_holder_cannot_decide_their_own_binding(w: World) -> None:
    """Carol reviews for sre but may not keep her own binding; Bob may."""
    campaign = await w.start()
    item = w.item(campaign, CAROLS)
    with pytest.raises(NotAllowed):
        await w.bot.reviews.decisions.decide(item.id, CAROL, Verdict.KEEP, "I need it daily")
    done = await w.bot.reviews.decisions.decide(item.id, BOB, Verdict.KEEP, "on call for payments")
    assert done.item.state is ItemState.DECIDED
    assert done.item.decision is not None
    assert done.item.decision.person.endswith(SUBJECTS[BOB][0])


async def test_someone_outside_the_reviewer_groups_cannot_decide(w: World) -> None:
    """Alice (engineering, not sre) is refused on an item sre reviews."""
    campaign = await w.start()
    with pytest.raises(NotAllowed):
        await w.bot.reviews.decisions.decide(w.item(campaign, DEVS).id, ALICE, Verdict.REMOVE)
    assert w.item(campaign, DEVS).state is ItemState.PENDING


async def test_self_attestation_when_configured_is_recorded_as_such(
    tmp_path: Path, slack: SlackEmulator, rancher: RancherEmulator
) -> None:
    """With review.self_attestation Carol may keep her own binding, and the decision and audit say so."""
    async with world(tmp_path, slack, rancher, review={"self_attestation": True}) as w:
        campaign = await w.start()
        done = await w.bot.reviews.decisions.decide(w.item(campaign, CAROLS).id, CAROL, Verdict.KEEP, "I am on call")
        assert done.item.decision is not None
        assert done.item.decision.self_attested
        assert w.audit(A.REVIEW_DECIDED)[-1].details["self_attested"] is True


async def test_keep_needs_a_reason(w: World) -> None:
    """A keep without a visible reason (blank, or zero-width characters only) is refused; the item stays undecided."""
    campaign = await w.start()
    for blank in ("  ", "\u200b\u200b\u200b\u200b"):
        with pytest.raises(UserError, match="needs a reason"):
            await w.bot.reviews.decisions.decide(w.item(campaign, DEVS).id, BOB, Verdict.KEEP, blank)
    assert w.item(campaign, DEVS).state is ItemState.PENDING


async def test_convert_is_refused_when_no_rule_lets_the_holder_request_it(w: World) -> None:
    """Carol (sre only) could not request project-member on staging-eu/payments, so her binding cannot convert."""
    campaign = await w.start()
    with pytest.raises(UserError, match="cannot request") as caught:
        await w.bot.reviews.decisions.decide(w.item(campaign, CAROLS).id, BOB, Verdict.CONVERT)
    assert caught.value.hint
    assert "keep it" in caught.value.hint
    assert w.item(campaign, CAROLS).state is ItemState.PENDING


async def test_bulk_convert_decides_what_converts_and_reports_the_rest(w: World) -> None:
    """Bob's convert-all converts Alice's binding and leaves the two no rule allows undecided, with why."""
    campaign = await w.start()
    bulk = await w.bot.reviews.decisions.decide_all(campaign.id, BOB, Verdict.CONVERT, "move to just in time")
    assert bulk.decided == 1
    assert {i.binding.name for i, _ in bulk.refused} == {CAROLS, DEVS}
    assert w.item(campaign, ALICES).verdict is Verdict.CONVERT
    assert all(e.details["bulk"] is True for e in w.audit(A.REVIEW_DECIDED))


async def test_plan_apply_deletes_removed_and_converted_bindings_and_tells_the_holder(w: World) -> None:
    """The plan lists two ready deletions; apply removes both from Rancher and DMs Alice how to request hers."""
    campaign = await w.start()
    await w.bot.reviews.decisions.decide(w.item(campaign, ALICES).id, BOB, Verdict.CONVERT)
    await w.bot.reviews.decisions.decide(w.item(campaign, CAROLS).id, BOB, Verdict.REMOVE)
    plan = await w.bot.reviews.changes.plan("q1")
    assert sorted(e.status for e in plan.entries) == [PlanStatus.READY, PlanStatus.READY]
    assert {ALICES, CAROLS} <= w.binding_names()  # the plan changes nothing
    report = await w.bot.reviews.changes.apply("q1", actor=ADMIN)
    assert len(report.applied) == 2
    assert not report.skipped
    assert not report.failed
    assert not {ALICES, CAROLS} & w.binding_names()
    assert DEVS in w.binding_names()
    told = factories.queued_texts(w.bot.storage, ALICE)
    assert any("/access request" in t for t in told), told
    assert len(w.audit(A.REVIEW_APPLYING)) == 2
    assert len(w.audit(A.REVIEW_APPLIED)) == 2


async def test_a_binding_changed_since_the_read_is_left_alone_and_reported(w: World) -> None:
    """A binding recreated under the same name after the start (a new uid) is skipped, not deleted."""
    # Every new object gets a new metadata.uid, which v3 shows as `uuid` (norman types/mapper/metadata.go; see
    # RoleBinding.uid): the fingerprint tells the recreated binding from the one the campaign read.
    campaign = await w.start()
    await w.bot.reviews.decisions.decide(w.item(campaign, CAROLS).id, BOB, Verdict.REMOVE)
    (old,) = [b for b in w.rancher.objects("projectRoleTemplateBinding") if b.get("name") == CAROLS]
    assert w.rancher.remove_binding(str(old["id"]))
    w.rancher.add_binding(
        "prtb", name=CAROLS, namespaceId=old["namespaceId"], projectId=old["projectId"],
        roleTemplateId=old["roleTemplateId"], userId=old["userId"],
    )  # fmt: skip
    plan = await w.bot.reviews.changes.plan("q1")
    assert [e.status for e in plan.entries] == [PlanStatus.CHANGED]
    report = await w.bot.reviews.changes.apply("q1", actor=ADMIN)
    assert [i.binding.name for i in report.skipped] == [CAROLS]
    assert CAROLS in w.binding_names()
    assert w.audit(A.REVIEW_SKIPPED)[0].outcome == "refused"


async def test_undo_recreates_the_deleted_binding_as_it_was(w: World) -> None:
    """Undo of an applied removal recreates the binding with its name, role, subject and people's labels."""
    # v3 lets the client choose `name` and set labels on create (norman types/mapper/metadata.go: name "c", labels
    # "cu"; store/proxy/proxy_store.go keeps metadata.name): shared/reference/rancher-source-check.md row 10.
    campaign = await w.start()
    item = w.item(campaign, ALICES)
    await w.bot.reviews.decisions.decide(item.id, BOB, Verdict.REMOVE)
    await w.bot.reviews.changes.apply("q1", actor=ADMIN)
    assert ALICES not in w.binding_names()
    undone = await w.bot.reviews.changes.undo(item.id, actor=ADMIN)
    assert undone.state is ItemState.UNDONE
    (back,) = [b for b in w.rancher.objects("projectRoleTemplateBinding") if b.get("name") == ALICES]
    assert back["roleTemplateId"] == "project-member"
    assert back["projectId"] == item.binding.project_id
    assert back["labels"].get("team") == "checkout"
    assert len(w.audit(A.REVIEW_RESTORED)) == 1
    with pytest.raises(UserError, match="only applied"):
        await w.bot.reviews.changes.undo(item.id, actor=ADMIN)


async def test_an_apply_interrupted_after_its_intent_is_finished_by_the_job(w: World) -> None:
    """An item left `applying` (the intent stored, the process gone) is deleted and applied by the next job run."""
    campaign = await w.start()
    item = w.item(campaign, CAROLS)
    await w.bot.reviews.decisions.decide(item.id, BOB, Verdict.REMOVE)
    live = await w.bot.rancher.get_binding(item.binding)
    change = ItemChange(state=ItemState.APPLYING, deleted=live)  # what apply stores before it calls Rancher
    assert w.bot.storage.reviews.move(item.id, sources(ItemEvent.BEGIN_APPLY), change, T0)
    w.clock.value = T0 + 60
    assert (await w.bot.reviews.job.run(w.clock.now())).finished == 0  # could still be under way elsewhere
    w.clock.value = T0 + 3600
    result = await w.bot.reviews.job.run(w.clock.now())
    assert result.finished == 1
    assert w.item(campaign, CAROLS).state is ItemState.APPLIED
    assert CAROLS not in w.binding_names()


async def test_the_deadline_gives_undecided_items_the_on_timeout_verdict(w: World) -> None:
    """At the deadline the job closes the campaign and undecided items are decided `remove`, not yet applied."""
    campaign = await w.start(on_timeout=Verdict.REMOVE)
    await w.bot.reviews.decisions.decide(w.item(campaign, DEVS).id, BOB, Verdict.KEEP, "read-only for support")
    w.clock.value = campaign.due_at + 1
    result = await w.bot.reviews.job.run(w.clock.now())
    assert result.closed == ("q1",)
    closed = w.bot.storage.reviews.campaign(campaign_id=campaign.id)
    assert closed is not None
    assert closed.status is CampaignStatus.CLOSED
    timed_out = [i for i in w.items(campaign) if i.decision is not None and i.decision.timed_out]
    assert {i.binding.name for i in timed_out} == {CAROLS, ALICES}
    assert all(i.verdict is Verdict.REMOVE for i in timed_out)
    assert w.item(campaign, DEVS).verdict is Verdict.KEEP
    assert {CAROLS, ALICES} <= w.binding_names()  # review.auto_apply is off


async def test_on_timeout_convert_keeps_what_no_rule_would_let_the_holder_request(w: World) -> None:
    """on_timeout convert converts Alice's binding and keeps Carol's and the group's, noting why."""
    campaign = await w.start(on_timeout=Verdict.CONVERT)
    w.clock.value = campaign.due_at
    await w.bot.reviews.job.run(w.clock.now())
    assert w.item(campaign, ALICES).verdict is Verdict.CONVERT
    kept = w.item(campaign, CAROLS)
    assert kept.verdict is Verdict.KEEP
    assert "could not convert" in kept.note


async def test_auto_apply_deletes_at_the_deadline(
    tmp_path: Path, slack: SlackEmulator, rancher: RancherEmulator
) -> None:
    """With review.auto_apply the job applies the timeout's removals when it closes the campaign."""
    async with world(tmp_path, slack, rancher, review={"auto_apply": True}) as w:
        campaign = await w.start(on_timeout=Verdict.REMOVE)
        w.clock.value = campaign.due_at + 1
        await w.bot.reviews.job.run(w.clock.now())
        assert not {CAROLS, ALICES, DEVS} & w.binding_names()


async def test_after_downtime_only_the_reminder_nearest_the_deadline_goes(w: World) -> None:
    """First run a day before the deadline (the 3-day one missed): one reminder each, and no more on the next run."""
    campaign = await w.start()
    w.clock.value = campaign.due_at - 86400 + 5
    first = await w.bot.reviews.job.run(w.clock.now())
    assert first.reminded == 2
    w.clock.value += 60
    assert (await w.bot.reviews.job.run(w.clock.now())).reminded == 0
    assert len(factories.queued_keys(w.bot.storage, BOB, "review:1:remind:")) == 1
    assert any(t.startswith("Reminder: Access review q1") for t in factories.queued_texts(w.bot.storage, BOB))


async def test_reviewers_who_decided_everything_are_not_reminded(w: World) -> None:
    """Carol, with nothing left undecided, gets no reminder; Bob, with items left, does."""
    campaign = await w.start()
    for name in (DEVS, ALICES):
        await w.bot.reviews.decisions.decide(w.item(campaign, name).id, CAROL, Verdict.REMOVE)
    w.clock.value = campaign.due_at - 86400 + 5
    await w.bot.reviews.job.run(w.clock.now())
    assert factories.queued_keys(w.bot.storage, CAROL, "review:1:remind:") == []
    assert len(factories.queued_keys(w.bot.storage, BOB, "review:1:remind:")) == 1


async def test_a_scheduled_review_starts_once_per_period(
    tmp_path: Path, slack: SlackEmulator, rancher: RancherEmulator
) -> None:
    """`schedule.reviews` starts `<name>-<date>` on the first run and not again within `every`."""
    scheduled = {"reviews": [{"name": "monthly", "every": "30d", "roles": ["project-member"], "targets": ["prod-*"]}]}
    async with world(tmp_path, slack, rancher, schedule=scheduled) as w:
        first = await w.bot.reviews.job.run(w.clock.now())
        assert first.started == ("monthly-2027-01-15",)
        w.clock.value += 86400
        assert (await w.bot.reviews.job.run(w.clock.now())).started == ()
        (campaign,) = w.bot.storage.reviews.campaigns()
        assert campaign.template == "monthly"
        assert {i.binding.name for i in w.items(campaign)} == {ALICES}


async def test_each_reminder_goes_once_in_its_own_window(w: World) -> None:
    """Three days before the deadline, then one day before: two reminders each for Bob, never a third."""
    campaign = await w.start()
    w.clock.value = campaign.due_at - 3 * 86400 + 5
    assert (await w.bot.reviews.job.run(w.clock.now())).reminded == 2
    w.clock.value = campaign.due_at - 86400 + 5
    assert (await w.bot.reviews.job.run(w.clock.now())).reminded == 2
    w.clock.value += 3600
    assert (await w.bot.reviews.job.run(w.clock.now())).reminded == 0
    assert len(factories.queued_keys(w.bot.storage, BOB, "review:1:remind:")) == 2


async def test_a_fenced_out_former_leader_cannot_close_a_campaign(w: World) -> None:
    """The review job under a lease another replica took over raises FencedOut and the campaign stays open."""
    campaign = await w.start()
    w.clock.value = campaign.due_at + 1
    with fencing.fenced(Fence("jobs", "a-former-leader", 999)), pytest.raises(FencedOut):
        await w.bot.reviews.job.run(w.clock.now())
    stored = w.bot.storage.reviews.campaign(campaign_id=campaign.id)
    assert stored is not None
    assert stored.status is CampaignStatus.OPEN
    assert w.audit(A.REVIEW_CLOSED) == []


async def test_a_fenced_out_former_leader_cannot_start_a_scheduled_review(
    tmp_path: Path, slack: SlackEmulator, rancher: RancherEmulator
) -> None:
    """A scheduled start under a stale fence writes nothing: no campaign, and the day's start is not used up."""
    scheduled = {"reviews": [{"name": "monthly", "every": "30d", "roles": ["project-member"], "targets": ["prod-*"]}]}
    async with world(tmp_path, slack, rancher, schedule=scheduled) as w:
        with fencing.fenced(Fence("jobs", "a-former-leader", 999)), pytest.raises(FencedOut):
            await w.bot.reviews.job.run(w.clock.now())
        assert w.bot.storage.reviews.campaigns() == []
        assert (await w.bot.reviews.job.run(w.clock.now())).started == ("monthly-2027-01-15",)


async def test_without_a_reviews_channel_the_campaign_message_goes_to_security(
    tmp_path: Path, slack: SlackEmulator, rancher: RancherEmulator
) -> None:
    """With no slack.channels.reviews the campaign's progress message is queued for the security channel."""
    async with world(tmp_path, slack, rancher, slack={"channels": dict(botconfig.CHANNELS)}) as w:
        await w.start()
        texts = factories.queued_texts(w.bot.storage, botconfig.CHANNELS["security"])
        assert any("Access review q1" in t for t in texts), texts


async def test_an_undo_interrupted_after_rancher_recreated_the_binding_is_finished(w: World) -> None:
    """An item left `undoing` whose binding Rancher already recreated ends `undone` (the client adopts it: 409)."""
    campaign = await w.start()
    item = w.item(campaign, ALICES)
    await w.bot.reviews.decisions.decide(item.id, BOB, Verdict.REMOVE)
    await w.bot.reviews.changes.apply("q1", actor=ADMIN)
    assert w.bot.storage.reviews.move(item.id, sources(ItemEvent.BEGIN_UNDO), ItemChange(state=ItemState.UNDOING), T0)
    w.rancher.add_binding(  # what the interrupted undo had created (core.review_bindings.restorable's note)
        "prtb", name=ALICES, namespaceId="p-h3x8f", projectId=PROD_CHECKOUT, roleTemplateId="project-member",
        userPrincipalId=ALICE_PRINCIPAL, annotations={RESTORED_ANNOTATION: f"review item {item.id}"},
    )  # fmt: skip
    w.clock.value = T0 + 3600
    assert (await w.bot.reviews.job.run(w.clock.now())).finished == 1
    assert w.item(campaign, ALICES).state is ItemState.UNDONE
    assert [b["name"] for b in w.rancher.objects("projectRoleTemplateBinding")].count(ALICES) == 1


async def test_an_undo_is_refused_when_someone_else_made_a_binding_of_that_name(w: World) -> None:
    """A different binding under the deleted one's name is not taken for the restored one: the undo fails, noted."""
    campaign = await w.start()
    item = w.item(campaign, ALICES)
    await w.bot.reviews.decisions.decide(item.id, BOB, Verdict.REMOVE)
    await w.bot.reviews.changes.apply("q1", actor=ADMIN)
    w.rancher.add_binding(
        "prtb", name=ALICES, namespaceId="p-h3x8f", projectId=PROD_CHECKOUT, roleTemplateId="read-only",
        userPrincipalId=ALICE_PRINCIPAL,
    )  # fmt: skip
    with pytest.raises(UserError, match="was not restored"):
        await w.bot.reviews.changes.undo(item.id, actor=ADMIN)
    after = w.item(campaign, ALICES)
    assert after.state is ItemState.APPLIED
    assert "undo failed" in after.note


async def test_closing_edits_each_reviewers_dm_to_say_the_decisions_are_final(w: World) -> None:
    """When the deadline closes q1, Bob's review DM is edited in place (no buttons) to say it closed."""
    campaign = await w.start()
    w.clock.value = campaign.due_at + 1
    await w.bot.reviews.job.run(w.clock.now())
    edit = w.bot.storage.outbox.get(f"review:{campaign.id}:ask:{BOB}:closed")
    assert edit is not None
    assert edit.kind == "update"
    assert "This review closed" in json.dumps(edit.payload)
    assert "review_keep" not in json.dumps(edit.payload)


async def test_with_auto_apply_a_deletion_rancher_refused_is_applied_again_later(
    tmp_path: Path, slack: SlackEmulator, rancher: RancherEmulator
) -> None:
    """A removal Rancher refuses at the deadline stays decided, noted, and is applied by a run ten minutes later."""
    async with world(tmp_path, slack, rancher, review={"auto_apply": True}) as w:
        campaign = await w.start(on_timeout=Verdict.REMOVE)
        w.rancher.fail_next(CAROLS, 403, count=1, method="DELETE")
        w.clock.value = campaign.due_at + 1
        await w.bot.reviews.job.run(w.clock.now())
        refused = w.item(campaign, CAROLS)
        assert refused.state is ItemState.DECIDED
        assert "Rancher refused" in refused.note
        assert CAROLS in w.binding_names()
        w.clock.value += 60
        await w.bot.reviews.job.run(w.clock.now())
        assert w.item(campaign, CAROLS).state is ItemState.DECIDED  # it waits RETRY_APPLY_S
        w.clock.value += 600
        await w.bot.reviews.job.run(w.clock.now())
        assert w.item(campaign, CAROLS).state is ItemState.APPLIED
        assert CAROLS not in w.binding_names()


async def test_decisions_are_final_once_the_campaign_is_closed(w: World) -> None:
    """After `close`, a reviewer's decision is refused and the item keeps its timeout verdict."""
    campaign = await w.start()
    await w.bot.reviews.campaigns.close("q1", actor=ADMIN)
    with pytest.raises(UserError, match="decisions are final"):
        await w.bot.reviews.decisions.decide(w.item(campaign, DEVS).id, BOB, Verdict.REMOVE)
    assert w.item(campaign, DEVS).verdict is Verdict.KEEP


async def test_a_binding_no_rule_governs_is_reviewed_by_the_admins_only(w: World) -> None:
    """sre's cluster-owner on staging-eu (no rule, no review.reviewer_groups) is unassigned: an admin decides it."""
    report = await w.bot.reviews.campaigns.start(
        ReviewStart("owners", roles=("cluster-owner",), targets=("staging-*",)), actor=ADMIN
    )
    assert report.unassigned == 1  # no linked admin yet: nobody was asked
    factories.link(w.bot.storage.links, ADMIN, "admin-subject", [], now=T0)
    (item,) = w.items(report.campaign)
    with pytest.raises(NotAllowed):
        await w.bot.reviews.decisions.decide(item.id, BOB, Verdict.REMOVE)
    done = await w.bot.reviews.decisions.decide(item.id, ADMIN, Verdict.REMOVE)
    assert done.item.state is ItemState.DECIDED


async def test_review_reviewer_groups_review_what_no_rule_governs(
    tmp_path: Path, slack: SlackEmulator, rancher: RancherEmulator
) -> None:
    """With review.reviewer_groups [engineering], Alice reviews sre's cluster-owner on staging-eu."""
    async with world(tmp_path, slack, rancher, review={"reviewer_groups": ["engineering"]}) as w:
        report = await w.bot.reviews.campaigns.start(
            ReviewStart("owners", roles=("cluster-owner",), targets=("staging-*",)), actor=ADMIN
        )
        assert report.unassigned == 0
        (item,) = w.items(report.campaign)
        done = await w.bot.reviews.decisions.decide(item.id, ALICE, Verdict.KEEP, "cluster admins for staging")
        assert done.item.verdict is Verdict.KEEP
