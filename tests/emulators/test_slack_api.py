"""Tests for the Slack Web API emulator and the Slack request signer (accessbot_emulators/slack/)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import parse_qs, parse_qsl

import httpx
import pytest
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.signature import Clock, SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from accessbot_emulators.slack import (
    BOT_ID,
    BOT_TOKEN,
    BOT_USER_ID,
    TEAM_ID,
    SlackEmulator,
    SlackSigner,
    app_home_opened_event,
    block_actions_payload,
    dm_channel_id,
    interaction_body,
    json_body,
    slash_command_body,
    view_submission_payload,
)

ALICE = "U0ALICE001"
BOB = "U0BOB00001"
CHANNEL = "C0GRANTS01"

SLACK_VECTOR_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
SLACK_VECTOR_TIMESTAMP = 1531420618
SLACK_VECTOR_BODY = (
    "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
    "&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
    "&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
    "&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
SLACK_VECTOR_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"


@pytest.fixture(scope="module")
def running_slack() -> Iterator[SlackEmulator]:
    """One emulator thread for the module; tests reset it."""
    with SlackEmulator.running() as emulator:
        emulator.add_user(ALICE, "alice@example.com", "alice", real_name="Alice Example")
        emulator.add_user(BOB, "bob@example.com", "bob", real_name="Bob Example")
        yield emulator


@pytest.fixture
def slack(running_slack: SlackEmulator) -> SlackEmulator:
    """The module's emulator with no recorded calls."""
    running_slack.reset()
    return running_slack


@pytest.fixture
def client(slack: SlackEmulator) -> AsyncWebClient:
    """slack_sdk's async client pointed at the emulator, with no retry handlers."""
    return AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url, retry_handlers=[])


# ---- signer -------------------------------------------------------------------------------------------------


def test_signer_reproduces_slacks_documented_test_vector() -> None:
    """Slack's published signing example yields Slack's published signature."""
    headers = SlackSigner(SLACK_VECTOR_SECRET).sign(SLACK_VECTOR_BODY, timestamp=SLACK_VECTOR_TIMESTAMP)
    assert headers == {
        "X-Slack-Request-Timestamp": str(SLACK_VECTOR_TIMESTAMP),
        "X-Slack-Signature": SLACK_VECTOR_SIGNATURE,
    }


def test_signer_signs_bytes_and_str_alike() -> None:
    """A body given as bytes gets the same signature as the same body as str."""
    signer = SlackSigner(SLACK_VECTOR_SECRET)
    assert signer.sign(SLACK_VECTOR_BODY.encode(), 1) == signer.sign(SLACK_VECTOR_BODY, 1)


def test_signer_uses_its_clock_and_slack_sdk_verifier_accepts_it() -> None:
    """A signature made at the clock's time passes slack_sdk's verifier; another secret does not."""
    body = slash_command_body("/access", "help", ALICE, TEAM_ID, CHANNEL, "http://127.0.0.1:1/response/x")
    signer = SlackSigner("s3cret", clock=lambda: 1_800_000_000.7)
    headers = signer.headers(body)
    assert headers["X-Slack-Request-Timestamp"] == "1800000000"
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"

    class FixedClock(Clock):
        def now(self) -> float:
            return 1_800_000_010.0

    lowered = {k.lower(): v for k, v in headers.items()}
    assert SignatureVerifier("s3cret", clock=FixedClock()).is_valid_request(body, lowered)
    assert not SignatureVerifier("other", clock=FixedClock()).is_valid_request(body, lowered)


def test_signer_repr_hides_the_secret() -> None:
    """The signing secret never appears in the signer's repr."""
    assert "s3cret" not in repr(SlackSigner("s3cret"))


def test_slash_command_body_has_exactly_slacks_fields_in_order() -> None:
    """The form body carries Slack's slash-command field set in Slack's order, text spaces as `+`."""
    body = slash_command_body("/access", "list payload", ALICE, TEAM_ID, CHANNEL, "http://r/1", trigger_id="1.2.abc")
    fields = parse_qsl(body, keep_blank_values=True)
    assert [name for name, _ in fields] == [
        "token",
        "team_id",
        "team_domain",
        "channel_id",
        "channel_name",
        "user_id",
        "user_name",
        "command",
        "text",
        "api_app_id",
        "is_enterprise_install",
        "response_url",
        "trigger_id",
    ]
    values = dict(fields)
    assert values["command"] == "/access"
    assert values["text"] == "list payload"
    assert values["is_enterprise_install"] == "false"
    assert values["trigger_id"] == "1.2.abc"
    assert "text=list+payload" in body
    assert "command=%2Faccess" in body


def test_slash_command_body_generates_slack_shaped_trigger_id() -> None:
    """Without a trigger_id the body gets one shaped `<digits>.<digits>.<hex32>`."""
    values = dict(parse_qsl(slash_command_body("/access", "", ALICE, TEAM_ID, "D0X", "http://r/1")))
    first, second, third = values["trigger_id"].split(".")
    assert first.isdigit()
    assert second.isdigit()
    assert len(third) == 32
    assert values["channel_name"] == "directmessage"


def test_interaction_body_carries_payload_as_urlencoded_json() -> None:
    """An interaction body is one `payload` form field whose value is the payload's JSON."""
    payload = block_actions_payload(
        ALICE, "approve", "grant-42", response_url="http://r/2", channel_id=CHANNEL, message_ts="1.000001"
    )
    parsed = parse_qs(interaction_body(payload))
    assert list(parsed) == ["payload"]
    assert json.loads(parsed["payload"][0]) == payload


def test_block_actions_payload_on_a_message_has_container_channel_and_response_url() -> None:
    """A message button click names the message container, the channel and the response_url."""
    payload = block_actions_payload(
        BOB, "approve", "grant-42", response_url="http://r/3", channel_id=CHANNEL, message_ts="9.000001"
    )
    assert payload["type"] == "block_actions"
    assert payload["user"]["id"] == BOB
    assert payload["container"] == {
        "type": "message",
        "message_ts": "9.000001",
        "channel_id": CHANNEL,
        "is_ephemeral": False,
    }
    assert payload["channel"]["id"] == CHANNEL
    assert payload["message"]["ts"] == "9.000001"
    assert payload["response_url"] == "http://r/3"
    action = payload["actions"][0]
    assert (action["type"], action["action_id"], action["value"]) == ("button", "approve", "grant-42")


def test_block_actions_payload_on_an_ephemeral_message_has_no_message() -> None:
    """A click on an ephemeral message has a container but no `message` field, as in Slack."""
    payload = block_actions_payload(BOB, "x", "y", response_url="http://r/3", channel_id=CHANNEL, is_ephemeral=True)
    assert payload["container"]["is_ephemeral"] is True
    assert "message" not in payload


def test_block_actions_payload_on_a_message_requires_a_response_url() -> None:
    """A message click without a response_url is refused, so no test can post to real Slack by accident."""
    with pytest.raises(ValueError, match="response_url"):
        block_actions_payload(BOB, "x", "y", channel_id=CHANNEL)


def test_block_actions_payload_in_a_view_names_the_view_container() -> None:
    """A click inside a modal or Home tab carries the view and a view container."""
    payload = block_actions_payload(ALICE, "refresh", "1", view={"id": "V1", "type": "home"})
    assert payload["container"] == {"type": "view", "view_id": "V1"}
    assert payload["view"]["id"] == "V1"
    assert "response_url" not in payload


def test_view_submission_payload_expands_text_values_to_plain_text_input() -> None:
    """Plain strings in `values` become Slack's plain_text_input state entries."""
    payload = view_submission_payload(
        ALICE, "request_modal", {"target": {"target_input": "prod/web"}}, private_metadata="meta"
    )
    assert payload["type"] == "view_submission"
    view = payload["view"]
    assert view["callback_id"] == "request_modal"
    assert view["private_metadata"] == "meta"
    assert view["state"]["values"] == {"target": {"target_input": {"type": "plain_text_input", "value": "prod/web"}}}
    assert payload["response_urls"] == []


def test_app_home_opened_event_is_an_event_callback_envelope() -> None:
    """The Home-opened event is wrapped in Slack's event_callback envelope with the user's DM channel."""
    envelope = app_home_opened_event(ALICE, event_time=1_800_000_000)
    assert envelope["type"] == "event_callback"
    assert envelope["team_id"] == TEAM_ID
    assert envelope["event_id"].startswith("Ev")
    assert envelope["event_time"] == 1_800_000_000
    event = envelope["event"]
    assert event["type"] == "app_home_opened"
    assert event["user"] == ALICE
    assert event["tab"] == "home"
    assert event["channel"] == dm_channel_id(ALICE)
    assert {"token", "api_app_id", "event_id"} <= set(envelope)


# ---- Web API through slack_sdk's AsyncWebClient ---------------------------------------------------------------


async def test_auth_test_answers_the_configured_bot_identity(slack: SlackEmulator, client: AsyncWebClient) -> None:
    """auth.test returns the bot's user, bot and team ids, and the call is recorded."""
    response = await client.auth_test()
    assert (response["user_id"], response["bot_id"], response["team_id"]) == (BOT_USER_ID, BOT_ID, TEAM_ID)
    assert [c.method for c in slack.calls()] == ["auth.test"]


async def test_post_message_returns_ts_channel_and_message(slack: SlackEmulator, client: AsyncWebClient) -> None:
    """chat.postMessage answers ts, channel and the message, and records the message with its blocks."""
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}]
    response = await client.chat_postMessage(channel=CHANNEL, text="hello", blocks=blocks)
    assert response["channel"] == CHANNEL
    assert response["message"]["text"] == "hello"
    assert response["message"]["bot_id"] == BOT_ID
    [message] = slack.messages(CHANNEL)
    assert (message.ts, message.text, message.blocks) == (response["ts"], "hello", blocks)
    assert slack.calls("chat.postMessage")[0].args["channel"] == CHANNEL


async def test_timestamps_increase_across_messages(slack: SlackEmulator, client: AsyncWebClient) -> None:
    """Each posted message gets a distinct, increasing ts."""
    first = await client.chat_postMessage(channel=CHANNEL, text="1")
    second = await client.chat_postMessage(channel=CHANNEL, text="2")
    assert float(second["ts"]) > float(first["ts"])
    assert [m.text for m in slack.messages(CHANNEL)] == ["1", "2"]


async def test_update_keeps_the_message_in_its_latest_state(slack: SlackEmulator, client: AsyncWebClient) -> None:
    """chat.update replaces the text of the posted message and counts the edit."""
    posted = await client.chat_postMessage(channel=CHANNEL, text="pending")
    updated = await client.chat_update(channel=CHANNEL, ts=posted["ts"], text="approved")
    assert updated["ts"] == posted["ts"]
    [message] = slack.messages(CHANNEL)
    assert (message.text, message.edits) == ("approved", 1)
    assert slack.message(posted["ts"]) == message


async def test_update_of_an_unknown_ts_is_message_not_found(client: AsyncWebClient) -> None:
    """chat.update of a message that was never posted fails with message_not_found."""
    with pytest.raises(SlackApiError) as caught:
        await client.chat_update(channel=CHANNEL, ts="1.000001", text="x")
    assert caught.value.response["error"] == "message_not_found"


async def test_post_message_without_content_is_no_text(client: AsyncWebClient) -> None:
    """chat.postMessage with neither text nor blocks fails with no_text, as Slack does."""
    with pytest.raises(SlackApiError) as caught:
        await client.api_call("chat.postMessage", json={"channel": CHANNEL})
    assert caught.value.response["error"] == "no_text"


async def test_post_ephemeral_returns_message_ts_and_is_recorded(slack: SlackEmulator, client: AsyncWebClient) -> None:
    """chat.postEphemeral answers message_ts and the ephemeral is listed for its user only."""
    response = await client.chat_postEphemeral(channel=CHANNEL, user=ALICE, text="only you")
    [ephemeral] = slack.ephemerals(ALICE)
    assert (ephemeral.message_ts, ephemeral.text, ephemeral.channel) == (response["message_ts"], "only you", CHANNEL)
    assert slack.ephemerals(BOB) == []
    assert slack.messages() == []


async def test_conversations_open_returns_a_stable_dm_channel(slack: SlackEmulator, client: AsyncWebClient) -> None:
    """conversations.open returns the same D channel for a user every time, and messages there are DMs."""
    first = await client.conversations_open(users=ALICE)
    second = await client.conversations_open(users=[ALICE])
    channel = first["channel"]["id"]
    assert channel.startswith("D")
    assert second["channel"]["id"] == channel == slack.dm_channel(ALICE)
    assert second["already_open"] is True
    await client.chat_postMessage(channel=channel, text="your grant expires soon")
    assert [m.text for m in slack.dms(ALICE)] == ["your grant expires soon"]
    assert slack.dms(BOB) == []


async def test_post_message_to_a_user_id_lands_in_their_dm(slack: SlackEmulator, client: AsyncWebClient) -> None:
    """Posting to a user id delivers into the bot's DM with that user, like Slack."""
    response = await client.chat_postMessage(channel=BOB, text="hi bob")
    assert response["channel"] == dm_channel_id(BOB)
    assert [m.text for m in slack.dms(BOB)] == ["hi bob"]


async def test_conversations_open_with_an_unknown_user_is_user_not_found(client: AsyncWebClient) -> None:
    """Opening a DM with a user outside the directory fails with user_not_found."""
    with pytest.raises(SlackApiError) as caught:
        await client.conversations_open(users="U0NOBODY01")
    assert caught.value.response["error"] == "user_not_found"


async def test_users_info_returns_the_directory_profile(slack: SlackEmulator, client: AsyncWebClient) -> None:
    """users.info returns the configured user with profile.email and real_name."""
    response = await client.users_info(user=ALICE)
    user = response["user"]
    assert (user["id"], user["name"], user["is_bot"], user["deleted"]) == (ALICE, "alice", False, False)
    assert user["profile"]["email"] == "alice@example.com"
    assert user["profile"]["real_name"] == "Alice Example"
    assert slack.calls("users.info")[0].args["user"] == ALICE


async def test_users_info_of_an_unknown_user_is_user_not_found(client: AsyncWebClient) -> None:
    """users.info of a user outside the directory fails with user_not_found."""
    with pytest.raises(SlackApiError) as caught:
        await client.users_info(user="U0NOBODY01")
    assert caught.value.response["error"] == "user_not_found"


async def test_views_open_and_update_track_the_modal(slack: SlackEmulator, client: AsyncWebClient) -> None:
    """views.open records a modal with an id, and views.update by that id replaces its blocks."""
    modal = {
        "type": "modal",
        "callback_id": "request_modal",
        "title": {"type": "plain_text", "text": "Request"},
        "blocks": [],
    }
    opened = await client.views_open(trigger_id="1.2.abc", view=modal)
    view_id = opened["view"]["id"]
    block = {"type": "section", "text": {"type": "mrkdwn", "text": "done"}}
    await client.views_update(view_id=view_id, view={**modal, "blocks": [block]})
    [view] = slack.views("modal")
    assert (view.id, view.trigger_id, view.updates, view.blocks) == (view_id, "1.2.abc", 1, [block])


async def test_views_publish_sets_the_users_home_tab(slack: SlackEmulator, client: AsyncWebClient) -> None:
    """views.publish stores the Home tab per user, keeping its view id across publishes."""
    home = {"type": "home", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "v1"}}]}
    first = await client.views_publish(user_id=ALICE, view=home)
    second = await client.views_publish(user_id=ALICE, view={"type": "home", "blocks": []})
    assert first["view"]["id"] == second["view"]["id"]
    published = slack.home(ALICE)
    assert published is not None
    assert (published.blocks, published.updates) == ([], 1)
    assert slack.home(BOB) is None


async def test_views_update_with_a_stale_hash_is_hash_conflict(client: AsyncWebClient) -> None:
    """views.update with a hash that is not the view's current one fails with hash_conflict."""
    modal = {"type": "modal", "title": {"type": "plain_text", "text": "R"}, "blocks": []}
    opened = await client.views_open(trigger_id="1.2.abc", view=modal)
    with pytest.raises(SlackApiError) as caught:
        await client.views_update(view_id=opened["view"]["id"], view=modal, hash="0.stale")
    assert caught.value.response["error"] == "hash_conflict"


async def test_form_encoded_arguments_are_parsed_like_json(slack: SlackEmulator) -> None:
    """A form-encoded call with blocks as a JSON string is read the same as a JSON body."""
    blocks = [{"type": "divider"}]
    async with httpx.AsyncClient() as http:
        response = await http.post(
            slack.api_url + "chat.postMessage",
            data={"token": BOT_TOKEN, "channel": CHANNEL, "text": "t", "blocks": json.dumps(blocks)},
        )
    assert response.json()["ok"] is True
    assert slack.messages(CHANNEL)[0].blocks == blocks
    assert "token" not in slack.calls()[0].args


async def test_files_upload_v2_works_end_to_end(slack: SlackEmulator, client: AsyncWebClient) -> None:
    """files_upload_v2 gets an upload URL, uploads the bytes there and completes into the channel."""
    response = await client.files_upload_v2(
        channel=CHANNEL, content=b"a,b\n1,2\n", filename="audit.csv", title="Audit", initial_comment="export"
    )
    assert response["file"]["id"].startswith("F")
    [uploaded] = slack.files(CHANNEL)
    assert uploaded.content == b"a,b\n1,2\n"
    assert (uploaded.filename, uploaded.title, uploaded.initial_comment) == ("audit.csv", "Audit", "export")
    assert uploaded.completed
    assert [c.method for c in slack.calls()] == ["files.getUploadURLExternal", "files.completeUploadExternal"]


# ---- auth, unknown methods, recording ---------------------------------------------------------------------------


async def test_wrong_token_is_invalid_auth(slack: SlackEmulator) -> None:
    """A call with a token other than the configured bot token fails with invalid_auth."""
    client = AsyncWebClient(token="xoxb-wrong", base_url=slack.api_url, retry_handlers=[])
    with pytest.raises(SlackApiError) as caught:
        await client.chat_postMessage(channel=CHANNEL, text="x")
    assert caught.value.response["error"] == "invalid_auth"
    assert slack.messages() == []


async def test_missing_token_is_not_authed(slack: SlackEmulator) -> None:
    """A call without any token fails with not_authed."""
    client = AsyncWebClient(base_url=slack.api_url, retry_handlers=[])
    with pytest.raises(SlackApiError) as caught:
        await client.auth_test()
    assert caught.value.response["error"] == "not_authed"


async def test_unknown_method_is_unknown_method(client: AsyncWebClient) -> None:
    """A method the emulator does not play fails with unknown_method."""
    with pytest.raises(SlackApiError) as caught:
        await client.api_call("chat.meMessage", json={"channel": CHANNEL, "text": "x"})
    assert caught.value.response["error"] == "unknown_method"


async def test_recorded_headers_never_hold_the_token(slack: SlackEmulator, client: AsyncWebClient) -> None:
    """The Authorization header is recorded redacted, and the token appears nowhere in the record."""
    await client.auth_test()
    [call] = slack.calls()
    assert call.headers["authorization"] == "(redacted)"
    assert BOT_TOKEN not in repr(call)


# ---- failure injection ---------------------------------------------------------------------------------------


async def test_injected_429_reaches_the_client_with_retry_after(slack: SlackEmulator, client: AsyncWebClient) -> None:
    """fail_next(429) answers ratelimited with a Retry-After header, once, then calls succeed."""
    slack.fail_next("chat.postMessage", status=429, retry_after=7)
    with pytest.raises(SlackApiError) as caught:
        await client.chat_postMessage(channel=CHANNEL, text="x")
    assert caught.value.response.status_code == 429
    assert caught.value.response["error"] == "ratelimited"
    assert caught.value.response.headers["Retry-After"] == "7"
    await client.chat_postMessage(channel=CHANNEL, text="x")
    assert [c.status for c in slack.calls()] == [429, 200]


async def test_rate_limit_retry_handler_succeeds_after_an_injected_429(slack: SlackEmulator) -> None:
    """slack_sdk's AsyncRateLimitErrorRetryHandler waits out the injected 429 and the retry succeeds."""
    client = AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url, retry_handlers=[AsyncRateLimitErrorRetryHandler()])
    slack.fail_next("chat.postMessage", status=429, retry_after=0)
    response = await client.chat_postMessage(channel=CHANNEL, text="digest")
    assert response["ok"] is True
    assert [c.status for c in slack.calls("chat.postMessage")] == [429, 200]
    assert len(slack.messages(CHANNEL)) == 1


async def test_injected_error_is_ok_false_with_status_200(slack: SlackEmulator, client: AsyncWebClient) -> None:
    """fail_next(error=...) answers HTTP 200 with ok false and that error, for `count` calls."""
    slack.fail_next("chat.postMessage", error="channel_not_found", count=2)
    for _ in range(2):
        with pytest.raises(SlackApiError) as caught:
            await client.chat_postMessage(channel=CHANNEL, text="x")
        assert caught.value.response.status_code == 200
        assert caught.value.response["error"] == "channel_not_found"
    assert (await client.chat_postMessage(channel=CHANNEL, text="x"))["ok"] is True


async def test_injected_503_is_a_server_error(client: AsyncWebClient, slack: SlackEmulator) -> None:
    """fail_next(status=503) answers HTTP 503 to that method only."""
    slack.fail_next("users.info", status=503)
    assert (await client.auth_test())["ok"] is True
    with pytest.raises(SlackApiError) as caught:
        await client.users_info(user=ALICE)
    assert caught.value.response.status_code == 503


async def test_set_down_answers_503_until_restored(slack: SlackEmulator, client: AsyncWebClient) -> None:
    """While down every call gets 503; after set_down(False) calls succeed again."""
    slack.set_down(True)
    try:
        with pytest.raises(SlackApiError) as caught:
            await client.auth_test()
        assert caught.value.response.status_code == 503
        webhook = AsyncWebhookClient(slack.response_url("k"))
        assert (await webhook.send(text="x")).status_code == 503
    finally:
        slack.set_down(False)
    assert (await client.auth_test())["ok"] is True
    assert slack.responses() == []


# ---- response_url -------------------------------------------------------------------------------------------


async def test_response_url_posts_are_recorded_per_key(slack: SlackEmulator) -> None:
    """Bodies posted to a response_url (as Bolt's respond() does) are recorded under its key."""
    url = slack.response_url("cmd-1")
    assert url == f"{slack.base_url}/response/cmd-1"
    webhook = AsyncWebhookClient(url)
    first = await webhook.send(text="working on it", response_type="ephemeral")
    await webhook.send(text="approved", replace_original=True)
    assert first.status_code == 200
    posts = slack.responses("cmd-1")
    assert [p.text for p in posts] == ["working on it", "approved"]
    assert posts[0].is_ephemeral
    assert posts[1].replace_original
    assert not posts[1].delete_original
    assert slack.responses("other") == []


async def test_bound_response_url_replaces_deletes_and_posts_like_slack(
    slack: SlackEmulator, client: AsyncWebClient
) -> None:
    """A response_url bound to a message edits it on replace_original, removes it on delete_original."""
    posted = await client.chat_postMessage(channel=CHANNEL, text="approve?")
    webhook = AsyncWebhookClient(slack.response_url("b", channel=CHANNEL, message_ts=posted["ts"]))
    await webhook.send(text="approved by bob", replace_original=True)
    message = slack.message(posted["ts"])
    assert message is not None
    assert (message.text, message.edits) == ("approved by bob", 1)
    await webhook.send(text="for everyone", response_type="in_channel")
    assert [m.text for m in slack.messages(CHANNEL)] == ["approved by bob", "for everyone"]
    await webhook.send(delete_original=True)
    assert [m.text for m in slack.messages(CHANNEL)] == ["for everyone"]
    assert len(slack.responses("b")) == 3


async def test_response_url_refuses_a_body_that_is_not_json(slack: SlackEmulator) -> None:
    """A response_url post that is not a JSON object is answered 400 and not recorded."""
    async with httpx.AsyncClient() as http:
        response = await http.post(slack.response_url("k"), content=b"text=hi")
    assert response.status_code == 400
    assert slack.responses() == []


# ---- waiting, threads, lifecycle -----------------------------------------------------------------------------


def test_wait_for_sees_a_call_made_from_another_thread(slack: SlackEmulator) -> None:
    """wait_for polls until a call made later from another thread has been recorded."""

    def post_later() -> None:
        time.sleep(0.1)
        httpx.post(slack.api_url + "auth.test", headers={"Authorization": f"Bearer {BOT_TOKEN}"})

    worker = threading.Thread(target=post_later)
    worker.start()
    calls = slack.wait_for(lambda: slack.calls("auth.test"), timeout=5.0)
    worker.join()
    assert calls[0].ok


def test_wait_for_times_out_naming_what_was_seen(slack: SlackEmulator) -> None:
    """wait_for raises TimeoutError listing the calls seen when the condition never holds."""
    httpx.post(slack.api_url + "auth.test", headers={"Authorization": f"Bearer {BOT_TOKEN}"})
    with pytest.raises(TimeoutError, match=r"auth\.test"):
        slack.wait_for(slack.messages, timeout=0.1)


def test_reset_forgets_calls_but_keeps_the_directory(slack: SlackEmulator) -> None:
    """After reset no calls are recorded, and directory users still resolve."""
    httpx.post(slack.api_url + "auth.test", headers={"Authorization": f"Bearer {BOT_TOKEN}"})
    slack.reset()
    assert slack.calls() == []
    answer = httpx.post(
        slack.api_url + "users.info", data={"user": ALICE}, headers={"Authorization": f"Bearer {BOT_TOKEN}"}
    ).json()
    assert answer["user"]["profile"]["email"] == "alice@example.com"


async def test_serve_async_runs_inside_the_running_loop() -> None:
    """serve_async serves from the current event loop; wait_for_async works and blocking wait_for refuses."""
    async with SlackEmulator.serve_async(bot_token="xoxb-other") as slack:
        client = AsyncWebClient(token="xoxb-other", base_url=slack.api_url, retry_handlers=[])
        assert (await client.auth_test())["ok"] is True
        calls = await slack.wait_for_async(lambda: slack.calls("auth.test"))
        assert calls[0].ok
        with pytest.raises(RuntimeError, match="wait_for_async"):
            slack.wait_for(slack.calls)
    async with httpx.AsyncClient() as http:
        with pytest.raises(httpx.ConnectError):
            await http.post(slack.api_url + "auth.test")


# ---- together with Bolt --------------------------------------------------------------------------------------

SIGNING_SECRET = "bolt-signing-secret"


def _bolt_app(slack: SlackEmulator) -> AsyncApp:
    """A Bolt AsyncApp whose Web API client and response_urls point at the emulator."""
    app = AsyncApp(
        client=AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url, retry_handlers=[]),
        signing_secret=SIGNING_SECRET,
    )

    @app.command("/access")
    async def access(ack: AsyncAck, respond: AsyncRespond, command: dict[str, Any]) -> None:
        await ack()
        await respond(text=f"you said: {command['text']}", response_type="ephemeral")

    @app.action("approve")
    async def approve(ack: AsyncAck, respond: AsyncRespond, body: dict[str, Any]) -> None:
        await ack()
        await respond(text=f"approved {body['actions'][0]['value']}", replace_original=True)

    @app.event("app_home_opened")
    async def home(event: dict[str, Any], client: AsyncWebClient) -> None:
        await client.views_publish(user_id=event["user"], view={"type": "home", "blocks": []})

    return app


async def _dispatch(app: AsyncApp, body: str, content_type: str, signer: SlackSigner) -> int:
    headers: dict[str, str | Sequence[str]] = {**signer.headers(body, content_type=content_type)}
    request = AsyncBoltRequest(body=body, headers=headers)
    response = await app.async_dispatch(request)
    return int(response.status)


async def test_bolt_accepts_a_signed_slash_command_and_replies_through_the_response_url(
    slack: SlackEmulator,
) -> None:
    """A signed slash command passes Bolt's verification and its respond() lands on the emulator."""
    app = _bolt_app(slack)
    body = slash_command_body("/access", "whoami", ALICE, TEAM_ID, CHANNEL, slack.response_url("c1"))
    status = await _dispatch(app, body, "application/x-www-form-urlencoded", SlackSigner(SIGNING_SECRET))
    assert status == 200
    posts = await slack.wait_for_async(lambda: slack.responses("c1"))
    assert posts[0].text == "you said: whoami"
    assert [c.method for c in slack.calls()] == ["auth.test"]


async def test_bolt_refuses_a_command_signed_with_another_secret(slack: SlackEmulator) -> None:
    """A body signed with the wrong secret is refused by Bolt with 401 and nothing is replied."""
    app = _bolt_app(slack)
    body = slash_command_body("/access", "whoami", ALICE, TEAM_ID, CHANNEL, slack.response_url("c2"))
    status = await _dispatch(app, body, "application/x-www-form-urlencoded", SlackSigner("wrong"))
    assert status == 401
    assert slack.responses() == []


async def test_bolt_routes_a_signed_button_click_and_a_home_event(slack: SlackEmulator) -> None:
    """A signed block_actions body and a signed app_home_opened event reach their Bolt listeners."""
    app = _bolt_app(slack)
    signer = SlackSigner(SIGNING_SECRET)
    click = block_actions_payload(
        BOB, "approve", "grant-7", response_url=slack.response_url("b1"), channel_id=CHANNEL, message_ts="1.2"
    )
    assert await _dispatch(app, interaction_body(click), "application/x-www-form-urlencoded", signer) == 200
    event = json_body(app_home_opened_event(ALICE))
    assert await _dispatch(app, event, "application/json", signer) == 200
    posts = await slack.wait_for_async(lambda: slack.responses("b1"))
    assert posts[0].text == "approved grant-7"
    assert posts[0].replace_original
    assert await slack.wait_for_async(lambda: slack.home(ALICE))
