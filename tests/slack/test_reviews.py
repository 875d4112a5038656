"""Access reviews over Slack: signed commands, clicks in the reviewer's DM and App Home, the reason forms, paging,
bulk decisions and the campaign message edited in place (the bot on uvicorn, the Slack and Rancher emulators)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from accessbot_emulators.rancher import RancherEmulator
from accessbot_emulators.slack import SlackEmulator, app_home_opened_event, json_body
from accessbot_emulators.slack.limits import message_problems
from bot.core.reviews import ItemState, Verdict
from bot.slack import review_blocks as rb
from tests.conftest import ALICE, BOB, CAROL, RunningBot, wait_until
from tests.reviews_rig import ADMIN, ALICES, CAROLS, DEVS, REVIEWS
from tests.slack.review_clicks import (
    BotFactory,
    answer,
    buttons,
    dm_click,
    home_click,
    last_modal,
    review_bot,
    submit,
)

START = "review start q1 roles project-member,read-only targets prod-*,staging-*"


@pytest.fixture
def rbot(make_bot: BotFactory, rancher: RancherEmulator, slack: SlackEmulator) -> Iterator[RunningBot]:
    """A reviews-enabled bot with Alice, Bob and Carol linked and a campaign q1 started by the admin."""
    with review_bot(make_bot, rancher, slack) as running:
        reply = running.ask(ADMIN, START)
        assert "started" in reply.text, reply.text
        yield running


def item_ids(bot: RunningBot) -> dict[str, int]:
    """Item numbers by binding name."""
    store = bot.store()
    try:
        campaign = store.reviews.campaign(name="q1")
        assert campaign is not None
        return {i.binding.name: i.id for i in store.reviews.items(campaign.id)}
    finally:
        store.database.close()


def item_state(bot: RunningBot, item_id: int) -> tuple[ItemState, Verdict | None]:
    """An item's state and verdict now."""
    store = bot.store()
    try:
        item = store.reviews.item(item_id)
        assert item is not None
        return item.state, item.verdict
    finally:
        store.database.close()


def bob_dm(bot: RunningBot) -> object:
    """Bob's review DM (waited for)."""
    return bot.slack.wait_for(
        lambda: next((m for m in bot.slack.dms(BOB) if "Access review q1" in (m.text or "")), None), timeout=15
    )


def test_an_admin_starts_a_review_and_each_reviewer_gets_one_dm(rbot: RunningBot) -> None:
    """Bob's DM lists his items grouped by target with buttons carrying item numbers only; Alice gets none."""
    dm = bob_dm(rbot)
    blocks = dm.blocks  # type: ignore[attr-defined]
    assert message_problems(blocks) == []
    dumped = json.dumps(blocks)
    assert "prod-eu/checkout" in dumped
    assert "staging-eu/payments" in dumped
    ids = item_ids(rbot)
    assert sorted(buttons(blocks)[rb.REMOVE]) == sorted(f"{ids[n]}:0" for n in (ALICES, CAROLS, DEVS))
    wait_until(lambda: any("Access review q1" in (m.text or "") for m in rbot.slack.dms(CAROL)), timeout=10)
    assert not any("Access review" in (m.text or "") for m in rbot.slack.dms(ALICE))


def test_a_non_admin_start_is_refused_ephemerally(
    make_bot: BotFactory, rancher: RancherEmulator, slack: SlackEmulator
) -> None:
    """Alice's `/access review start` is answered ephemerally and starts nothing."""
    with review_bot(make_bot, rancher, slack) as bot:
        reply = bot.ask(ALICE, START)
        assert reply.response_type == "ephemeral"
        assert "only admins start access reviews" in reply.text
        store = bot.store()
        try:
            assert store.reviews.campaigns() == []
        finally:
            store.database.close()


def test_remove_decides_and_redraws_the_page_in_place(rbot: RunningBot) -> None:
    """Bob's Remove on the group's binding records it and replaces the DM's page with the decision shown."""
    bob_dm(rbot)
    devs = item_ids(rbot)[DEVS]
    reply = answer(rbot, dm_click(rbot, BOB, rb.REMOVE, f"{devs}:0"))
    assert reply.body["replace_original"] is True
    assert f"*remove* — by <@{BOB}>" in json.dumps(reply.body["blocks"], ensure_ascii=False)
    assert item_state(rbot, devs) == (ItemState.DECIDED, Verdict.REMOVE)


def test_keep_opens_a_form_that_requires_a_reason(rbot: RunningBot) -> None:
    """Keep opens a modal; a 2-character reason is refused in the form; a real one keeps the binding."""
    # A view_submission answered with `response_action: errors` keyed by block_id shows the error under that input
    # and keeps the modal open (docs.slack.dev/surfaces/modals, "Displaying errors in views").
    bob_dm(rbot)
    devs = item_ids(rbot)[DEVS]
    dm_click(rbot, BOB, rb.KEEP, f"{devs}:0")
    modal = last_modal(rbot, rb.KEEP_CALLBACK)
    field = modal["blocks"][1]["element"]
    assert field["min_length"] == 3
    refused = submit(rbot, BOB, rb.KEEP_CALLBACK, "ok", modal["private_metadata"])
    assert refused["response_action"] == "errors"
    assert item_state(rbot, devs) == (ItemState.PENDING, None)
    assert submit(rbot, BOB, rb.KEEP_CALLBACK, "support needs read access", modal["private_metadata"]) == {}
    wait_until(lambda: item_state(rbot, devs) == (ItemState.DECIDED, Verdict.KEEP))


def test_convert_without_a_rule_is_refused_with_how_to_fix_it(rbot: RunningBot) -> None:
    """Convert on Carol's binding (no rule lets her request it) is refused ephemerally, saying what would work."""
    bob_dm(rbot)
    carols = item_ids(rbot)[CAROLS]
    reply = answer(rbot, dm_click(rbot, BOB, rb.CONVERT, f"{carols}:0"))
    assert reply.body.get("replace_original") is False
    assert "cannot request project-member" in reply.text
    assert "keep it" in reply.text
    assert item_state(rbot, carols) == (ItemState.PENDING, None)


def test_convert_is_recorded_when_the_holder_could_request_it(rbot: RunningBot) -> None:
    """Convert on Alice's binding (rule prod-with-approval lets her request it) is recorded."""
    bob_dm(rbot)
    alices = item_ids(rbot)[ALICES]
    answer(rbot, dm_click(rbot, BOB, rb.CONVERT, f"{alices}:0"))
    assert item_state(rbot, alices) == (ItemState.DECIDED, Verdict.CONVERT)


def test_keep_all_decides_every_undecided_item_with_one_reason(rbot: RunningBot) -> None:
    """Keep all opens one form; its reason keeps all three of Bob's items and Bob is told how many."""
    dm = bob_dm(rbot)
    (campaign_value,) = buttons(dm.blocks)[rb.KEEP_ALL]  # type: ignore[attr-defined]
    dm_click(rbot, BOB, rb.KEEP_ALL, campaign_value)
    modal = last_modal(rbot, rb.BULK_CALLBACK)
    assert submit(rbot, BOB, rb.BULK_CALLBACK, "quarterly check done", modal["private_metadata"]) == {}
    wait_until(lambda: any("3 bindings kept" in (m.text or "") for m in rbot.slack.dms(BOB)), timeout=10)
    assert {item_state(rbot, i)[1] for i in item_ids(rbot).values()} == {Verdict.KEEP}


def test_app_home_shows_reviews_awaiting_you_and_decides_from_there(rbot: RunningBot) -> None:
    """Bob's App Home lists q1 with its undecided count and buttons; Remove there decides and republishes it."""
    # A click on a Home tab carries the view and no response_url (docs.slack.dev/reference/interaction-payloads/
    # block_actions-payload: response_url is for message interactions), so the answer is a new views.publish.
    rbot.post_signed(json_body(app_home_opened_event(BOB, team_id="T0TEST0001")), content_type="application/json")
    home = wait_until(lambda: rbot.slack.home(BOB))
    assert "Reviews awaiting you" in json.dumps(home.blocks)
    assert "3 undecided" in json.dumps(home.blocks)
    devs = item_ids(rbot)[DEVS]
    home_click(rbot, BOB, rb.REMOVE, f"{devs}:0")
    wait_until(lambda: "2 undecided" in json.dumps(rbot.slack.home(BOB).blocks), timeout=10)  # type: ignore[union-attr]
    assert item_state(rbot, devs) == (ItemState.DECIDED, Verdict.REMOVE)


def test_the_campaign_message_is_edited_in_place_with_progress(rbot: RunningBot) -> None:
    """The reviews channel gets one message; after Bob's decision the job edits that same message to 1 of 3."""
    posted = rbot.slack.wait_for(lambda: next(iter(rbot.slack.messages(REVIEWS)), None), timeout=15)
    assert "0 of 3 decided" in posted.text
    bob_dm(rbot)
    answer(rbot, dm_click(rbot, BOB, rb.REMOVE, f"{item_ids(rbot)[DEVS]}:0"))
    edited = wait_until(lambda: (m := rbot.slack.message(posted.ts)) and "1 of 3 decided" in (m.text or "") and m, 15)
    assert edited.edits >= 1
    assert len(rbot.slack.messages(REVIEWS)) == 1


def test_a_long_list_is_paged_within_block_kit_limits(
    make_bot: BotFactory, rancher: RancherEmulator, slack: SlackEmulator
) -> None:
    """40 bindings make three pages of at most 50 blocks; Next shows page 2 in place."""
    with review_bot(make_bot, rancher, slack) as bot:
        for n in range(37):
            rancher.add_binding(
                "prtb", name=f"prtb-many-{n:03d}", namespaceId="p-h3x8f", projectId="c-m-9hb3n5kp:p-h3x8f",
                roleTemplateId="read-only", groupPrincipalId=f"genericoidc_group://team-{n:03d}",
            )  # fmt: skip
        assert "40 standing bindings" in bot.ask(ADMIN, START).text
        dm = bob_dm(bot)
        assert len(dm.blocks) <= 50  # type: ignore[attr-defined]
        assert message_problems(dm.blocks) == []  # type: ignore[attr-defined]
        assert "Page 1 of 3" in json.dumps(dm.blocks)  # type: ignore[attr-defined]
        (next_value,) = buttons(dm.blocks)[rb.PAGE]  # type: ignore[attr-defined]
        page2 = answer(bot, dm_click(bot, BOB, rb.PAGE, next_value))
        assert "Page 2 of 3" in json.dumps(page2.body["blocks"])
        assert message_problems(page2.body["blocks"]) == []
        assert len(buttons(page2.body["blocks"])[rb.PAGE]) == 2  # previous and next


def test_metrics_exposes_the_standing_binding_gauge(rbot: RunningBot) -> None:
    """/metrics carries accessbot_standing_bindings once the reconciler (run at start) has sampled it."""

    def gauge() -> float | None:
        lines = rbot.http.get(f"{rbot.url}/metrics").text.splitlines()
        found = [ln for ln in lines if ln.startswith("accessbot_standing_bindings ")]
        return float(found[0].split()[1]) if found else None

    assert wait_until(gauge, timeout=15) >= 3  # at least the three bindings q1 reviews


def test_access_review_shows_the_callers_items_ephemerally(rbot: RunningBot) -> None:
    """`/access review` answers Bob with his page of q1, Alice with nothing awaiting, a stranger with how to link."""
    mine = rbot.ask(BOB, "review")
    assert mine.response_type == "ephemeral"
    assert "Page 1 of 1 · 3 bindings" in json.dumps(mine.blocks, ensure_ascii=False)
    assert "No access review awaits you" in rbot.ask(ALICE, "review").text
    assert "link" in rbot.ask("U0STRANGER", "review").text
