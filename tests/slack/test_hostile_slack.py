"""Hostile input on what this issue added to the Slack edge: the options loader, the Deny form, event ids."""

from __future__ import annotations

import json
import time

from accessbot_emulators.slack import block_suggestion_payload, interaction_body, view_submission_payload
from bot.core.model import GrantState
from bot.slack import forms
from bot.slack.event_dedupe import SeenEvents
from tests.conftest import ALICE, CAROL, RunningBot


def test_a_huge_options_query_is_answered_quickly(gbot: RunningBot) -> None:
    """A 60,000-character typed query (near the 64 KiB body cap) is read up to 100 characters and answered within a
    second (best of 3); a 200,000-character one is refused 413 before it is read (server.max_body)."""
    huge = interaction_body(block_suggestion_payload(ALICE, forms.CHOICE_ACTION, "pay" + "x" * 200_000))
    assert gbot.post_signed(huge).status_code == 413
    body = interaction_body(block_suggestion_payload(ALICE, forms.CHOICE_ACTION, "pay" + "x" * 60_000))

    base = int(time.time())

    def once(age: int) -> float:  # each try signed at another second: the replay cache refuses a copy
        started = time.perf_counter()
        assert gbot.post_signed(body, timestamp=base - age).status_code == 200
        return time.perf_counter() - started

    assert min(once(age) for age in range(3)) < 1.0


def test_a_forged_deny_form_changes_nothing(gbot: RunningBot) -> None:
    """Deny submissions whose metadata is not JSON, not an object, or names no grant are answered and change nothing."""
    gbot.ask(ALICE, "request prod-eu/checkout project-member because look")
    for metadata in ("not json", "[1, 2]", json.dumps({"grant": "g-" + "9" * 5000}), "{" * 3000):
        payload = view_submission_payload(
            CAROL, forms.DENY_CALLBACK, {forms.REASON_BLOCK: {forms.VALUE_ACTION: "because"}}, private_metadata=metadata
        )
        assert gbot.post_signed(interaction_body(payload)).status_code == 200
    store = gbot.store()
    try:
        (grant,) = store.grants.find(slack_user=ALICE)
    finally:
        store.database.close()
    assert grant.state is GrantState.REQUESTED


def test_the_event_id_memory_stays_bounded() -> None:
    """50,000 distinct event ids never hold more than the limit; a repeat inside the window is still caught."""
    seen = SeenEvents(ttl=3600, limit=1000)
    for i in range(50_000):
        assert seen.first_time(f"Ev{i}", now=1.0)
    assert len(seen._seen) <= 1000
    assert not seen.first_time("Ev49999", now=2.0)
    assert seen.first_time("Ev49999", now=4000.0)  # past the TTL a delivery counts as new
