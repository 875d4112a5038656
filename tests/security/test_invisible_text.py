"""Invisible and direction-changing characters never reach Slack as they are: issue 10, item 8.

A right-to-left override (U+202E) or an isolate (U+2066–U+2069) reorders what follows it when Slack displays it
(Unicode Standard Annex #9, "Unicode Bidirectional Algorithm", sections 2.2 and 2.4; the "Trojan Source" attack,
CVE-2021-42574), a zero-width space (U+200B) or a control character hides or breaks text. Each must show as
`⟨U+XXXX⟩` in everything the bot posts: mrkdwn (reasons, target names on the approval card) and plain_text (the
request form's option labels, the `/access who` header), whether it came from a user or from a Rancher display name
(free text in Rancher: rancher/rancher v2.14.4 pkg/apis/management.cattle.io/v3/authz_types.go:102, and v3 shows
`displayName` as `name`, pkg/schemas/management.cattle.io/v3/schema.go:245).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from accessbot_emulators.rancher import RancherEmulator
from accessbot_emulators.slack import SlackEmulator, interaction_body, view_submission_payload
from bot.slack import forms as gb
from tests.conftest import ALICE, APPROVALS, BOB, BOT_KEY, SUBJECTS, RunningBot, link_users

MakeBot = Callable[..., contextlib.AbstractContextManager[RunningBot]]
HIDDEN = {
    "\u202e": "⟨U+202E⟩",  # RIGHT-TO-LEFT OVERRIDE
    "\u2066": "⟨U+2066⟩",  # LEFT-TO-RIGHT ISOLATE
    "\u2067": "⟨U+2067⟩",  # RIGHT-TO-LEFT ISOLATE
    "\u2068": "⟨U+2068⟩",  # FIRST STRONG ISOLATE
    "\u2069": "⟨U+2069⟩",  # POP DIRECTIONAL ISOLATE
    "\u200b": "⟨U+200B⟩",  # ZERO WIDTH SPACE
    "\x07": "⟨U+0007⟩",  # BELL
    "\x1b": "⟨U+001B⟩",  # ESCAPE
    "\x7f": "⟨U+007F⟩",  # DELETE
}
REASON = "fix\u202eraw\u2066i\u2067j\u2068k\u2069l\u200bm\x07n\x1bo\x7fp"
SHOWN = "".join(HIDDEN.get(ch, ch) for ch in REASON)
RLO_PROJECT = ("c-m-9hb3n5kp:p-rlo01", "checkout\u202etset")  # shows as "checkouttest" reversed: "checkouttset"
RLO_CLUSTER = ("c-rlo01", "dev-\u202eue")


def strings(value: Any) -> Iterator[str]:
    """Every string inside a Slack payload (texts, labels, values), recursively."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def raw_hidden(value: Any) -> set[str]:
    """The invisible characters present, unmarked, anywhere in a payload."""
    return {ch for text in strings(value) for ch in text if ch in HIDDEN}


@pytest.fixture
def vbot(make_bot: MakeBot, rancher: RancherEmulator, slack: SlackEmulator) -> Iterator[RunningBot]:
    """A bot on the Rancher emulator (seeded with an RLO project and cluster), users linked, a quick outbox."""
    slack.reset()  # this test's modal and cards are then the only ones recorded
    rancher.reset()
    rancher.add_project(*RLO_PROJECT)
    rancher.add_cluster(*RLO_CLUSTER)
    with make_bot(
        rancher_url=rancher.url, rancher_token=BOT_KEY, overrides={"schedule": {"outbox_interval": "1s"}}
    ) as bot:
        link_users(bot, SUBJECTS)
        yield bot


def approval_card(bot: RunningBot, grant_id: str) -> Any:
    """The approvals-channel message of a request, as the Slack emulator received it."""
    return bot.slack.wait_for(
        lambda: next((m for m in bot.slack.messages(APPROVALS) if f"{grant_id}`" in str(m.blocks)), None), timeout=10
    )


def grant_id(bot: RunningBot, user: str) -> str:
    """The id of a user's grant ("" while there is none yet)."""
    store = bot.store()
    try:
        return next((grant.id for grant in store.grants.find(slack_user=user)), "")
    finally:
        store.database.close()


def test_a_reason_sent_by_command_shows_each_hidden_character_on_the_approval_card(vbot: RunningBot) -> None:
    """`/access request … because fix<RLO>…` reaches the approvals channel with every hidden character as ⟨U+XXXX⟩."""
    reply = vbot.ask(ALICE, f"request prod-eu/checkout project-member for 1h because {REASON}")
    assert "approval" in reply.text, reply.text
    card = approval_card(vbot, grant_id(vbot, ALICE))
    payload = {"text": card.text, "blocks": card.blocks}
    assert raw_hidden(payload) == set()
    assert any(f"*Reason:* {SHOWN}" in text for text in strings(card.blocks)), card.blocks


def test_the_request_form_and_its_card_show_hidden_characters_from_rancher_and_the_reason(vbot: RunningBot) -> None:
    """The form's plain_text option labels mark the RLO in a Rancher name; the submitted request's card marks both."""
    response, _ = vbot.command(ALICE, "request")
    assert response.status_code == 200

    def filled() -> object:  # the form opens with a loading view, then views.update fills it in (issue 12)
        return next((v for v in vbot.slack.views("modal") if "option_groups" in str(v.blocks)), None)

    view = vbot.slack.wait_for(filled)
    assert raw_hidden(view.blocks) == set()
    groups = view.blocks[0]["element"]["option_groups"]
    marked = [o for g in groups for o in g["options"] if "checkout⟨U+202E⟩tset" in o["text"]["text"]]
    assert marked, groups
    assert any("checkout⟨U+202E⟩tset" in g["label"]["text"] for g in groups)
    choice = next(o["value"] for o in marked if "|project-member|" in o["value"])
    payload = view_submission_payload(
        ALICE,
        gb.REQUEST_CALLBACK,
        {
            gb.CHOICE_BLOCK: {gb.CHOICE_ACTION: {"type": "static_select", "selected_option": {"value": choice}}},
            gb.DURATION_BLOCK: {gb.VALUE_ACTION: "30m"},
            gb.REASON_BLOCK: {gb.VALUE_ACTION: REASON},
        },
    )
    assert vbot.post_signed(interaction_body(payload)).status_code == 200
    card = approval_card(vbot, vbot.slack.wait_for(lambda: grant_id(vbot, ALICE)))
    assert raw_hidden({"text": card.text, "blocks": card.blocks}) == set()
    texts = list(strings(card.blocks))
    assert any("prod-eu/checkout⟨U+202E⟩tset" in text for text in texts), texts
    assert any(f"*Reason:* {SHOWN}" in text for text in texts), texts


def test_a_header_built_from_a_rancher_name_marks_the_override(vbot: RunningBot) -> None:
    """`/access who c-rlo01` answers with a plain_text header naming the cluster, its RLO shown as ⟨U+202E⟩."""
    reply = vbot.ask(BOB, f"who {RLO_CLUSTER[0]}")
    assert raw_hidden({"text": reply.text, "blocks": reply.blocks}) == set()
    headers = [b["text"]["text"] for b in reply.blocks if b.get("type") == "header"]
    assert headers == ["Who has access to dev-⟨U+202E⟩ue"], reply.blocks
