"""The Slack emulator's stricter rules, each with the Slack document it comes from.

- Block Kit limits: docs.slack.dev/reference/block-kit/blocks (50 blocks a message, 100 in modals and Home tabs),
  …/blocks/section-block (3,000 characters), …/block-elements/button-element (75-character label, 2,000-character
  value), …/block-elements/select-menu-element (100 options), …/composition-objects/option-object (75/150).
  Messages are refused `invalid_blocks` with an `errors` list (the shape quoted in slackapi/bolt-js#2509); views
  `invalid_arguments` with `response_metadata.messages` (views.open lists no invalid_blocks; grafana/oncall#210).
- Text over 40,000 characters is truncated with a warning, not refused (api.slack.com/changelog/
  2018-04-truncating-really-long-messages).
- conversations.open: `user_disabled` for a deactivated user, `too_many_users` above 8 (api.slack.com/methods/
  conversations.open).
- Rate limits: one chat.postMessage per second per channel, Tier 3 (50/min) for chat.update and conversations.open,
  429 + Retry-After (docs.slack.dev/apis/web-api/rate-limits).
- Triggers expire in three seconds and work once (api.slack.com/docs/triggers).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from accessbot_emulators.slack import BOT_TOKEN, SlackEmulator
from accessbot_emulators.slack.workspace import new_trigger_id

ALICE, GONE = "U0ALICE001", "U0GONE0001"
CHANNEL = "C0GRANTS01"


@pytest.fixture(scope="module")
def running_slack() -> Iterator[SlackEmulator]:
    """One emulator for the module, with an active and a deactivated member."""
    with SlackEmulator.running() as emulator:
        emulator.add_user(ALICE, "alice@example.com", "alice")
        emulator.add_user(GONE, "gone@example.com", "gone", deleted=True)
        yield emulator


@pytest.fixture
def slack(running_slack: SlackEmulator) -> SlackEmulator:
    """The module's emulator, reset (no rate limits, no failures)."""
    running_slack.reset()
    return running_slack


@pytest.fixture
def client(slack: SlackEmulator) -> AsyncWebClient:
    """slack_sdk's client on the emulator without retry handlers (every answer reaches the test)."""
    return AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url, retry_handlers=[])


def _section(chars: int) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": "x" * chars}}


def _button(label: int = 5, value: int = 5) -> dict[str, Any]:
    button = {"type": "button", "action_id": "a", "text": {"type": "plain_text", "text": "b" * label}}
    return {"type": "actions", "elements": [{**button, "value": "v" * value}]}


def _select(options: int) -> dict[str, Any]:
    opts = [{"text": {"type": "plain_text", "text": f"o{i}"}, "value": str(i)} for i in range(options)]
    return {"type": "section", "text": {"type": "mrkdwn", "text": "pick"}, "accessory": {
        "type": "static_select", "action_id": "s", "options": opts}}  # fmt: skip


@pytest.mark.parametrize(
    ("blocks", "pointer"),
    [
        ([_section(1)] * 51, "/blocks"),
        ([_section(3001)], "/blocks/0/text/text"),
        ([_button(label=76)], "/blocks/0/elements/0/text/text"),
        ([_button(value=2001)], "/blocks/0/elements/0/value"),
        ([_select(101)], "/blocks/0/accessory/options"),
    ],
    ids=["51-blocks", "3001-char-section", "76-char-label", "2001-char-value", "101-options"],
)
async def test_messages_over_block_kit_limits_are_invalid_blocks(
    client: AsyncWebClient, blocks: list[dict[str, Any]], pointer: str
) -> None:
    """Each documented limit, crossed by one, is refused `invalid_blocks` with a pointer to the offending field."""
    with pytest.raises(SlackApiError) as caught:
        await client.chat_postMessage(channel=CHANNEL, text="t", blocks=blocks)
    assert caught.value.response["error"] == "invalid_blocks"
    assert any(pointer in e for e in caught.value.response["errors"])


async def test_messages_at_the_limits_are_accepted(client: AsyncWebClient) -> None:
    """Exactly 50 blocks, 3,000 characters, a 75-character label, a 2,000-character value, 100 options: posted."""
    blocks = [_section(3000), _button(label=75, value=2000), _select(100), *[_section(1)] * 47]
    response = await client.chat_postMessage(channel=CHANNEL, text="t", blocks=blocks)
    assert response["ok"]


async def test_views_over_100_blocks_are_invalid_arguments(client: AsyncWebClient) -> None:
    """A Home tab of 101 blocks is refused `invalid_arguments`, naming /view/blocks; 100 are fine."""
    with pytest.raises(SlackApiError) as caught:
        await client.views_publish(user_id=ALICE, view={"type": "home", "blocks": [_section(1)] * 101})
    assert caught.value.response["error"] == "invalid_arguments"
    assert caught.value.response["response_metadata"]["messages"] == [
        "[ERROR] no more than 100 items allowed [json-pointer:/view/blocks]"
    ]
    assert (await client.views_publish(user_id=ALICE, view={"type": "home", "blocks": [_section(1)] * 100}))["ok"]


async def test_text_over_40000_characters_is_truncated_not_refused(
    slack: SlackEmulator, client: AsyncWebClient
) -> None:
    """Slack cuts the text at 40,000 characters and posts it; the emulator counts it so tests can forbid it."""
    await client.chat_postMessage(channel=CHANNEL, text="y" * 40_001)
    (message,) = slack.messages(CHANNEL)
    assert len(message.text or "") == 40_000
    assert slack.truncated() == 1


async def test_conversations_open_refuses_a_deactivated_user(client: AsyncWebClient) -> None:
    """A deactivated member cannot be DMed: user_disabled."""
    with pytest.raises(SlackApiError) as caught:
        await client.conversations_open(users=GONE)
    assert caught.value.response["error"] == "user_disabled"


async def test_conversations_open_refuses_more_than_eight_users(client: AsyncWebClient) -> None:
    """At most 8 users in a conversations.open call: too_many_users."""
    with pytest.raises(SlackApiError) as caught:
        await client.conversations_open(users=",".join(f"U{i:09d}" for i in range(9)))
    assert caught.value.response["error"] == "too_many_users"


async def test_posts_past_one_a_second_per_channel_get_429_with_retry_after(
    slack: SlackEmulator, client: AsyncWebClient
) -> None:
    """With rate limits on, a second post to one channel within a second is 429 + Retry-After; not elsewhere."""
    slack.enforce_rate_limits(per_channel_per_second=1.0, burst=1.0)
    await client.chat_postMessage(channel=CHANNEL, text="one")
    with pytest.raises(SlackApiError) as caught:
        await client.chat_postMessage(channel=CHANNEL, text="two")
    assert caught.value.response.status_code == 429
    assert caught.value.response["error"] == "ratelimited"
    assert caught.value.response.headers["Retry-After"] == "1"
    assert (await client.chat_postMessage(channel="C0OTHER001", text="elsewhere"))["ok"]
    assert slack.rate_limited() == 1


async def test_chat_update_is_tier_3_across_the_workspace(slack: SlackEmulator, client: AsyncWebClient) -> None:
    """chat.update allows a burst of 50, then answers 429 whatever the channel."""
    slack.enforce_rate_limits()
    ts = slack.seed_message(CHANNEL, "seed")
    for i in range(50):
        await client.chat_update(channel=CHANNEL, ts=ts, text=f"edit {i}")
    with pytest.raises(SlackApiError) as caught:
        await client.chat_update(channel=CHANNEL, ts=ts, text="one too many")
    assert caught.value.response.status_code == 429


async def test_a_trigger_older_than_three_seconds_is_expired(client: AsyncWebClient) -> None:
    """views.open with a trigger issued 3.5 s ago answers expired_trigger_id."""
    modal = {"type": "modal", "title": {"type": "plain_text", "text": "Form"}, "blocks": []}
    with pytest.raises(SlackApiError) as caught:
        await client.views_open(trigger_id=new_trigger_id(time.time() - 3.5), view=modal)
    assert caught.value.response["error"] == "expired_trigger_id"


async def test_a_trigger_works_once(client: AsyncWebClient) -> None:
    """A second views.open with the same trigger answers exchanged_trigger_id."""
    modal = {"type": "modal", "title": {"type": "plain_text", "text": "Form"}, "blocks": []}
    trigger = new_trigger_id()
    assert (await client.views_open(trigger_id=trigger, view=modal))["ok"]
    with pytest.raises(SlackApiError) as caught:
        await client.views_open(trigger_id=trigger, view=modal)
    assert caught.value.response["error"] == "exchanged_trigger_id"


@pytest.mark.parametrize(
    "code", ["ratelimited", "service_unavailable", "internal_error", "fatal_error", "request_timeout"]
)
async def test_injected_transient_codes_answer_like_slack(
    slack: SlackEmulator, client: AsyncWebClient, code: str
) -> None:
    """fail_next(error=code) answers HTTP 200 with ok false and that code (Slack's common errors)."""
    slack.fail_next("chat.postMessage", error=code)
    with pytest.raises(SlackApiError) as caught:
        await client.chat_postMessage(channel=CHANNEL, text="x")
    assert (caught.value.response.status_code, caught.value.response["error"]) == (200, code)


def test_block_checking_of_a_huge_payload_stays_fast(slack: SlackEmulator) -> None:
    """10,000 blocks of 100,000 characters are judged on the first problems, within a second (best of 3)."""
    from accessbot_emulators.slack.limits import message_problems

    blocks = [_section(100_000)] * 10_000
    best = min(_timed(lambda: message_problems(blocks)) for _ in range(3))
    assert best < 1.0
    assert len(message_problems(blocks)) <= 5


def _timed(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start
