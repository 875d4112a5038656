"""`/access list` and the App Home over HTTP: signed requests in, answers built from the Rancher emulator."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable

from accessbot_emulators.rancher import RancherEmulator
from accessbot_emulators.slack import app_home_opened_event, json_body
from tests import factories
from tests.conftest import ALICE, BOB, UNREACHABLE, RunningBot, wait_until


def _text(reply: object) -> str:
    return json.dumps({"text": getattr(reply, "text", ""), "blocks": getattr(reply, "blocks", [])})


def test_list_shows_direct_group_and_project_rights(gbot: RunningBot) -> None:
    """Alice's list names her direct cluster role and her project role, grouped under clusters."""
    reply = gbot.ask(ALICE, "list")
    text = _text(reply)
    assert reply.response_type == "ephemeral"
    assert "dev-eu" in text
    assert "Cluster Member" in text
    assert "checkout" in text  # old-style PRTB id on dev-eu/checkout
    assert "Traceback" not in text


def test_bare_command_of_a_linked_user_lists_access(gbot: RunningBot) -> None:
    """The bare command answers with the access list once the user is linked."""
    assert "dev-eu" in _text(gbot.ask(ALICE, ""))


def test_list_filter_narrows_to_one_cluster(gbot: RunningBot) -> None:
    """`/access list prod-eu` shows only prod-eu."""
    text = _text(gbot.ask(ALICE, "list prod-eu"))
    assert "prod-eu" in text
    assert "dev-eu" not in text


def test_grant_shows_in_the_list_with_time_left(gbot: RunningBot) -> None:
    """A self-service grant appears in /access list with its id and time left."""
    gbot.ask(ALICE, "request dev-eu/payments project-member for 2h")
    text = _text(gbot.ask(ALICE, "list dev-eu/payments"))
    assert "grant g-1" in text
    assert "left" in text


def test_unknown_target_is_a_clear_message(gbot: RunningBot) -> None:
    """Filtering on a cluster that does not exist is answered, not crashed."""
    text = _text(gbot.ask(ALICE, "list nowhere-eu"))
    assert "nowhere-eu" in text
    assert "Traceback" not in text


def test_unlinked_user_is_told_to_link(gbot: RunningBot) -> None:
    """An unlinked user asking for the list is told to link first."""
    reply = gbot.ask("U0STRANGER", "list")
    assert "/access link" in reply.text


def test_rancher_down_gives_a_clear_message(
    make_bot: Callable[..., contextlib.AbstractContextManager[RunningBot]], rancher: RancherEmulator
) -> None:
    """With Rancher unreachable the user gets one sentence, no traceback, and nothing changes."""
    with make_bot(rancher_url=UNREACHABLE) as bot:
        store = bot.store()
        factories.link(
            store.links, BOB, "8c1d7e22-0a4b-4c9e-8f3d-2b5a6c7d8e9f", [], now=1, issuer="https://idp", name="Bob"
        )
        store.database.close()
        reply = bot.ask(BOB, "list")
        assert "Rancher is not answering right now; nothing was changed" in reply.text
        assert "Traceback" not in reply.text


def test_app_home_is_published_when_opened(gbot: RunningBot) -> None:
    """Opening the Home tab publishes a view with grants and access."""
    body = json_body(app_home_opened_event(ALICE, team_id="T0TEST0001"))
    response = gbot.post_signed(body, content_type="application/json")
    assert response.status_code == 200
    home = wait_until(lambda: gbot.slack.home(ALICE))
    text = json.dumps(home.blocks)
    assert "Active grants" in text
    assert "What you can access" in text
    assert "dev-eu" in text
