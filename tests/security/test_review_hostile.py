"""Hostile input to access reviews: forged and foreign numbers in button values and form metadata, clicks by
people who may not decide, pathological reasons and Rancher names, and a 10,000-item reviewer whose DM and App Home
must stay within Slack's Block Kit limits (accessbot_emulators/slack/limits.py, each limit citing Slack's docs).

Nothing sent may change an item it could not change by a legitimate click, produce a traceback, or take long: each
rendering has a time budget (best of three, generous for a shared machine) and a memory budget (tracemalloc).
"""

from __future__ import annotations

import json
import time
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from accessbot_emulators.rancher import RancherEmulator
from accessbot_emulators.slack import SlackEmulator
from accessbot_emulators.slack.limits import message_problems, view_problems
from bot.core.model import RoleBinding, Scope
from bot.core.review_notices import ReviewerAsked, ReviewerItems
from bot.core.reviews import Campaign, CampaignScope, Holder, ItemState, ReviewItem, Verdict
from bot.slack import review_blocks as rb
from bot.slack.access_blocks import app_home_view
from bot.slack.notices import SlackNotices
from bot.slack.reviews import safe_response_url
from tests.conftest import ALICE, BOB, CAROL, RunningBot, wait_until
from tests.reviews_rig import ADMIN, CAROLS, DEVS
from tests.slack.review_clicks import BotFactory, answer, dm_click, review_bot, submit

START = "review start q1 roles project-member,read-only targets prod-*,staging-*"
NOT_OURS = "not one of the bot's"


@pytest.fixture
def rbot(make_bot: BotFactory, rancher: RancherEmulator, slack: SlackEmulator) -> Iterator[RunningBot]:
    """A reviews-enabled bot with campaign q1 started by the admin."""
    with review_bot(make_bot, rancher, slack) as running:
        assert "started" in running.ask(ADMIN, START).text
        yield running


def states(bot: RunningBot) -> dict[str, tuple[ItemState, Verdict | None]]:
    """Every item's state and verdict, by binding name."""
    store = bot.store()
    try:
        campaigns = store.reviews.campaigns()
        return {i.binding.name: (i.state, i.verdict) for c in campaigns for i in store.reviews.items(c.id)}
    finally:
        store.database.close()


def ids(bot: RunningBot) -> dict[str, int]:
    """Item numbers by binding name."""
    store = bot.store()
    try:
        return {i.binding.name: i.id for c in store.reviews.campaigns() for i in store.reviews.items(c.id)}
    finally:
        store.database.close()


@pytest.mark.parametrize(
    "value",
    ["", "abc", "1:x", "-1:0", "1:0:0", "9" * 40, "0x10:0", "１:0", "1e3:0", "{}", "\u202e1:0", "9" * 10_000],
)
def test_a_forged_button_value_is_refused_and_changes_nothing(rbot: RunningBot, value: str) -> None:
    """A Remove carrying anything but `item:page` numbers (or a number of no item) is refused ephemerally."""
    before = states(rbot)
    reply = answer(rbot, dm_click(rbot, BOB, rb.REMOVE, value))
    assert NOT_OURS in reply.text or "no review item" in reply.text, reply.text
    assert reply.body.get("replace_original") is False
    assert "Traceback" not in reply.text
    assert states(rbot) == before


def test_someone_who_is_not_a_reviewer_cannot_decide_by_clicking(rbot: RunningBot) -> None:
    """Alice (not in sre) clicking Remove with a real item number is refused; the item stays undecided."""
    reply = answer(rbot, dm_click(rbot, ALICE, rb.REMOVE, f"{ids(rbot)[DEVS]}:0"))
    assert "you do not review this binding" in reply.text
    assert states(rbot)[DEVS] == (ItemState.PENDING, None)


def test_an_unlinked_person_is_told_to_link_first(rbot: RunningBot) -> None:
    """A Slack user with no link clicking Remove is told reviewers decide as themselves; nothing changes."""
    reply = answer(rbot, dm_click(rbot, "U0STRANGER", rb.REMOVE, f"{ids(rbot)[DEVS]}:0"))
    assert "link" in reply.text
    assert states(rbot)[DEVS] == (ItemState.PENDING, None)


def test_the_holder_clicking_on_their_own_item_is_refused(rbot: RunningBot) -> None:
    """Carol reviews for sre but her own binding's number in a click is refused."""
    reply = answer(rbot, dm_click(rbot, CAROL, rb.REMOVE, f"{ids(rbot)[CAROLS]}:0"))
    assert "someone else must review it" in reply.text
    assert states(rbot)[CAROLS] == (ItemState.PENDING, None)


@pytest.mark.parametrize(
    "metadata",
    [
        "",
        "not json",
        "[" * 8_000 + "]" * 8_000,  # under the 64 KiB body cap, which refuses more (test_body_cap)
        json.dumps({"item": True}),
        json.dumps({"item": 1.5}),
        json.dumps({"item": "9" * 30}),
        json.dumps({"item": -3}),
        json.dumps({"item": {"$ne": 0}}),
        "x" * 60_000,
    ],
)
def test_forged_form_metadata_is_refused_and_changes_nothing(rbot: RunningBot, metadata: str) -> None:
    """A keep form whose private_metadata is not the bot's JSON changes nothing and answers without a traceback."""
    before = states(rbot)
    assert submit(rbot, BOB, rb.KEEP_CALLBACK, "a fine reason", metadata) == {}
    wait_until(lambda: any(NOT_OURS in (m.text or "") or "no review item" in (m.text or "")
                           for m in rbot.slack.dms(BOB)), timeout=10)  # fmt: skip
    assert states(rbot) == before


def test_form_metadata_naming_the_submitters_own_item_is_refused(rbot: RunningBot) -> None:
    """Carol forging a keep form for her own binding is refused exactly as her click would be."""
    assert submit(rbot, CAROL, rb.KEEP_CALLBACK, "trust me", json.dumps({"item": ids(rbot)[CAROLS]})) == {}
    wait_until(lambda: any("someone else must review it" in (m.text or "") for m in rbot.slack.dms(CAROL)), 10)
    assert states(rbot)[CAROLS] == (ItemState.PENDING, None)


def test_forged_bulk_metadata_cannot_pick_a_verdict_outside_keep_and_convert(rbot: RunningBot) -> None:
    """A bulk form with verdict code 3 (or none) decides nothing."""
    campaign = next(iter(ids(rbot).values()))  # any number: the verdict is what is forged
    for meta in ({"campaign": campaign, "verdict": 3}, {"campaign": campaign}):
        assert submit(rbot, BOB, rb.BULK_CALLBACK, "bulk reason", json.dumps(meta)) == {}
    wait_until(lambda: len([m for m in rbot.slack.dms(BOB) if NOT_OURS in (m.text or "")]) >= 2, timeout=10)
    assert all(v == (ItemState.PENDING, None) for v in states(rbot).values())


@pytest.mark.parametrize(
    "url",
    ["https://evil.example/hook", "https://hooks.slack.com.evil.example/x", "javascript:alert(1)",
     "https://hooks.slack.com@evil.example/x", "x" * 5000, 42, None],
)  # fmt: skip
def test_a_response_url_in_metadata_must_point_at_slack(url: object) -> None:
    """A kept response_url is used only on Slack's hooks host: anything else (or a look-alike) is dropped."""
    slack = ("https://hooks.slack.com",)
    assert safe_response_url(url, slack) == ""
    assert (
        safe_response_url("https://hooks.slack.com/actions/T1/2/x", slack) == "https://hooks.slack.com/actions/T1/2/x"
    )


@pytest.mark.parametrize(
    "reason", ["x" * 501, "x" * 20_000, "  a  ", "\u200b\u200b", "\u200b" * 40, "a\u202e\u2066\u200db"]
)
def test_a_keep_reason_outside_3_to_500_characters_is_refused_in_the_form(rbot: RunningBot, reason: str) -> None:
    """Too long, too short, or blank after trimming: the form shows an error and nothing is decided."""
    meta = json.dumps({"item": ids(rbot)[DEVS], "page": 0, "home": False, "url": ""})
    refused = submit(rbot, BOB, rb.KEEP_CALLBACK, reason, meta)
    assert refused.get("response_action") == "errors"
    assert states(rbot)[DEVS] == (ItemState.PENDING, None)


def test_a_hostile_reason_is_shown_escaped_and_visible(rbot: RunningBot) -> None:
    """A reason with `<!channel>`, a link and a right-to-left override shows inert and visible in the redraw."""
    devs = ids(rbot)[DEVS]
    key = "k" + str(devs)
    url = rbot.slack.response_url(key)
    meta = json.dumps({"item": devs, "page": 0, "home": False, "url": url})
    assert submit(rbot, BOB, rb.KEEP_CALLBACK, "<!channel> see <https://evil|x> \u202eevil", meta) == {}
    wait_until(lambda: states(rbot)[DEVS][0] is ItemState.DECIDED)
    redraw = answer(rbot, key)
    dumped = json.dumps(redraw.body["blocks"], ensure_ascii=False)
    assert "<!channel>" not in dumped
    assert "&lt;!channel&gt;" in dumped
    assert "⟨U+202E⟩" in dumped


def test_hostile_rancher_names_are_escaped_in_the_reviewer_dm(
    make_bot: BotFactory, rancher: RancherEmulator, slack: SlackEmulator
) -> None:
    """A project named `<!here>` with an RTL override and a 240-character group name show inert and within limits."""
    with review_bot(make_bot, rancher, slack) as bot:
        rancher.add_project("c-m-9hb3n5kp:p-evil1", "<!here>\u202ekcehc")
        group = "genericoidc_group://<!channel>" + "g" * 240
        rancher.add_binding("prtb", name="prtb-evil", namespaceId="p-evil1", projectId="c-m-9hb3n5kp:p-evil1",
                            roleTemplateId="read-only", groupPrincipalId=group)  # fmt: skip
        assert "started" in bot.ask(ADMIN, START).text
        dm = bot.slack.wait_for(lambda: next((m for m in bot.slack.dms(BOB) if "q1" in (m.text or "")), None), 15)
        dumped = json.dumps(dm.blocks, ensure_ascii=False)
        assert "<!here>" not in dumped
        assert "<!channel>" not in dumped
        assert "⟨U+202E⟩" in dumped
        assert message_problems(dm.blocks) == []


# --- a reviewer with 10,000 items ------------------------------------------------------------------------------


def many_items(n: int) -> tuple[Campaign, tuple[ReviewItem, ...]]:
    """A campaign and `n` items with long names across 500 targets, as the store would return them."""
    scope = CampaignScope(roles=("read-only",), targets=("*",))
    campaign = Campaign(id=1, name="big", scope=scope, created_by=ADMIN, created_at=0, due_at=86400 * 14)
    items = []
    for i in range(n):
        binding = RoleBinding(
            id=f"c-{i % 500:04d}:p-{i:05d}", scope=Scope.PROJECT, role_id="read-only", cluster_id=f"c-{i % 500:04d}",
            project_id=f"c-{i % 500:04d}:p-{i:05d}", group_principal_id=f"g://{'n' * 200}{i}", name=f"prtb-{i:05d}",
        )  # fmt: skip
        holder = Holder("group", f"<!channel>{'n' * 200}{i}", (binding.group_principal_id or "",))
        items.append(ReviewItem(i + 1, 1, binding, "f", f"cluster-{i % 500}/{'p' * 200}", "Read-only", holder))
    return campaign, tuple(items)


def best_of_three(work: Callable[[], Any]) -> tuple[float, Any]:
    """The fastest of three runs, and the last result."""
    best, result = float("inf"), None
    for _ in range(3):
        started = time.perf_counter()
        result = work()
        best = min(best, time.perf_counter() - started)
    return best, result


def test_a_10000_item_reviewer_dm_stays_within_block_kit_limits_and_budgets() -> None:
    """Every page of 10,000 items renders in ≤ 50 blocks Slack accepts, fast and in bounded memory."""
    campaign, items = many_items(10_000)
    notices = SlackNotices()
    for page in (0, 333, 666):
        view = ReviewerItems(campaign, items, now=0, page=page)
        elapsed, (text, blocks) = best_of_three(lambda v=view: notices.render(ReviewerAsked(v)))  # type: ignore[misc]
        assert elapsed < 0.5, elapsed
        assert len(blocks) <= 50
        assert message_problems(blocks) == []
        assert len(text) <= 3000
        assert "<!channel>" not in json.dumps(blocks)
    tracemalloc.start()
    notices.render(ReviewerAsked(ReviewerItems(campaign, items, now=0)))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 5_000_000, peak


def test_a_10000_item_reviewer_app_home_stays_within_view_limits() -> None:
    """The App Home's "Reviews awaiting you" with 10,000 undecided items fits a Home tab's 100 blocks."""
    campaign, items = many_items(10_000)
    view = ReviewerItems(campaign, items, now=0)
    section = rb.home_section([(campaign, len(items))] * 20, view)
    home = app_home_view(None, active=[], pending=[], now=0, reviews=section)
    assert view_problems(home) == []
