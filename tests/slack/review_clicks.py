"""Signed Slack requests for the access review tests: a reviews-enabled bot, clicks in a DM or the App Home, and
form submissions, each as Slack sends them (accessbot_emulators.slack.payloads)."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from accessbot_emulators.rancher import RancherEmulator
from accessbot_emulators.slack import (
    SlackEmulator,
    block_actions_payload,
    interaction_body,
    view_submission_payload,
)
from bot.slack import forms
from tests.conftest import BOT_KEY, SUBJECTS, RunningBot, link_users
from tests.reviews_rig import REVIEWS, add_convertible

BotFactory = Callable[..., contextlib.AbstractContextManager[RunningBot]]


@contextlib.contextmanager
def review_bot(
    make_bot: BotFactory, rancher: RancherEmulator, slack: SlackEmulator, **overrides: Any
) -> Iterator[RunningBot]:
    """A bot on the Rancher emulator (with Alice's convertible binding), a reviews channel, the review job every
    second, Alice, Bob and Carol linked."""
    rancher.reset()
    slack.reset()
    add_convertible(rancher)
    data: dict[str, Any] = {
        "slack": {"channels": {"reviews": REVIEWS}},
        "schedule": {"review_interval": "1s", "outbox_interval": "1s"},
    }
    for key, value in overrides.items():
        data[key] = {**data.get(key, {}), **value}
    with make_bot(rancher_url=rancher.url, rancher_token=BOT_KEY, overrides=data) as running:
        link_users(running, SUBJECTS)
        yield running


def dm_click(bot: RunningBot, user: str, action_id: str, value: str) -> str:
    """Click a button in the bot's DM to `user`; return the response_url key the answer goes to."""
    key = uuid.uuid4().hex[:10]
    payload = block_actions_payload(
        user, action_id, value, response_url=bot.slack.response_url(key), channel_id=bot.slack.dm_channel(user)
    )
    response = bot.post_signed(interaction_body(payload))
    assert response.status_code == 200, response.text
    return key


def home_click(bot: RunningBot, user: str, action_id: str, value: str) -> None:
    """Click a button on `user`'s App Home (no response_url: answers come by DM or a new Home)."""
    home = bot.slack.home(user)
    view = {"id": home.id if home else "V0HOME0001", "type": "home", "blocks": []}
    response = bot.post_signed(interaction_body(block_actions_payload(user, action_id, value, view=view)))
    assert response.status_code == 200, response.text


def submit(bot: RunningBot, user: str, callback_id: str, reason: str, metadata: str) -> dict[str, Any]:
    """Submit a reason form; return the acknowledgement's JSON body ({} for a plain 200)."""
    values = {forms.REASON_BLOCK: {forms.VALUE_ACTION: reason}}
    payload = view_submission_payload(user, callback_id, values, private_metadata=metadata)
    response = bot.post_signed(interaction_body(payload))
    assert response.status_code == 200, response.text
    return json.loads(response.content) if response.content else {}


def last_modal(bot: RunningBot, callback_id: str) -> dict[str, Any]:
    """The newest modal opened with `callback_id` (waited for; the emulator cannot tell whose trigger it was)."""
    found = bot.slack.wait_for(
        lambda: next((v for v in reversed(bot.slack.views("modal")) if v.view.get("callback_id") == callback_id), None)
    )
    return dict(found.view)


def answer(bot: RunningBot, key: str) -> Any:
    """The newest body posted to response_url `key` (waited for)."""
    return bot.slack.wait_for(lambda: (bot.slack.responses(key) or [None])[-1], timeout=10)


def buttons(blocks: list[Any]) -> dict[str, list[str]]:
    """Button values by action_id across actions blocks."""
    out: dict[str, list[str]] = {}
    for block in blocks:
        for element in block.get("elements", []) if block.get("type") == "actions" else []:
            out.setdefault(element["action_id"], []).append(element["value"])
    return out
