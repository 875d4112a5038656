"""Slack's three-second windows: the request form opens at once, the options loader answers in time.

Sources: a trigger_id expires after three seconds and works once (api.slack.com/docs/triggers; the emulator answers
`expired_trigger_id` then); a block_suggestion must be answered within three seconds
(docs.slack.dev/reference/interaction-payloads/block_suggestion-payload, "respond … within 3 seconds").
"""

from __future__ import annotations

import time

from accessbot_emulators.rancher import RancherEmulator
from accessbot_emulators.slack import block_suggestion_payload, interaction_body
from bot.slack import forms
from tests.conftest import ALICE, RunningBot


def test_request_form_opens_at_once_and_fills_in_when_rancher_is_slow(
    gbot: RunningBot, rancher: RancherEmulator
) -> None:
    """Rancher at 1.2 s a call (3.6 s to list the choices): the form opens first, views.update fills it in."""
    before = len(gbot.slack.calls("views.open"))
    rancher.configure(latency=1.2)
    try:
        response, _ = gbot.command(ALICE, "request")
        assert response.status_code == 200
        view = gbot.slack.wait_for(
            lambda: next((v for v in gbot.slack.views("modal") if v.updates >= 1), None), timeout=20
        )
    finally:
        rancher.configure(latency=0.0)
    (opened,) = gbot.slack.calls("views.open")[before:]
    assert opened.ok, opened.response
    assert "Loading" in str(opened.args["view"])
    assert view.blocks[0]["element"]["type"] == "static_select"


def test_options_loader_answers_within_its_budget_on_a_cold_cache(gbot: RunningBot, rancher: RancherEmulator) -> None:
    """Rancher at 4 s a call: the first answer is empty, before even one call could finish; later ones are full."""
    rancher.configure(latency=4.0)
    try:
        started = time.monotonic()
        first = gbot.post_signed(interaction_body(block_suggestion_payload(ALICE, forms.CHOICE_ACTION, "pay")))
        elapsed = time.monotonic() - started
    finally:
        rancher.configure(latency=0.0)
    assert first.status_code == 200
    assert first.json() == {"options": []}
    assert elapsed < 3.9  # one Rancher call alone takes 4 s: the answer did not wait for it

    def full() -> object:
        answer = gbot.post_signed(interaction_body(block_suggestion_payload(ALICE, forms.CHOICE_ACTION, "pay")))
        return answer.json().get("option_groups")

    groups = gbot.slack.wait_for(full, timeout=20, interval=0.5)
    assert any("payments" in o["text"]["text"] for g in groups for o in g["options"])  # type: ignore[union-attr]


def test_a_query_matching_nothing_answers_an_empty_options_list(gbot: RunningBot) -> None:
    """No match is `options: []` (never an empty `option_groups`)."""
    answer = gbot.post_signed(interaction_body(block_suggestion_payload(ALICE, forms.CHOICE_ACTION, "zzz-nothing")))
    assert answer.json() == {"options": []}
