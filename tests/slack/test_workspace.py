"""One workspace, its ids and its transports: channel and admin ids in config, other workspaces, Socket Mode, retries.

Sources: chat.update and files.completeUploadExternal take channel ids (docs.slack.dev/reference/methods/
chat.update, "channel: Channel containing the message … ID"); Socket Mode (docs.slack.dev/apis/events-api/
using-socket-mode; the emulator's socket_mode.py); Events API retries carry the same event_id
(docs.slack.dev/apis/events-api, "Retries").
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

import pytest

from accessbot_emulators.slack import APP_TOKEN, app_home_opened_event, json_body, slash_command_body
from bot.config import parse_config
from bot.core.errors import ConfigError
from bot.demo import botconfig
from tests.conftest import ALICE, TEAM, RunningBot, wait_until


def _config_data() -> dict[str, Any]:
    return botconfig.config_data(
        database="/tmp/x.db",
        public_url="https://bot.example.com",
        slack_api_url="https://slack.com/api/",
        oidc_issuer="https://idp.example.com",
        rancher_url="https://rancher.example.com",
        rancher_token="token-abcde:notused",
    )


@pytest.mark.parametrize("name", ["#grants", "grants", "C0GRANTS01 "])
def test_a_channel_name_in_config_is_refused_naming_the_key(name: str) -> None:
    """`slack.channels.grants: #grants` is one clear error naming the key and how to find the id."""
    data = _config_data()
    data["slack"]["channels"]["grants"] = name
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    (problem,) = caught.value.problems
    assert problem.startswith("slack.channels.grants: ")
    assert "channel id like C0123ABCDEF" in problem or "is not a Slack channel id" in problem


@pytest.mark.parametrize("admin", ["alice@example.com", "@alice", "alice"])
def test_admins_must_be_slack_user_ids(admin: str) -> None:
    """An email, a handle or a name in `slack.admins` is refused with what to use instead."""
    data = _config_data()
    data["slack"]["admins"] = ["U0ALICE001", admin]
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    (problem,) = caught.value.problems
    assert problem.startswith("slack.admins: ")
    assert "Slack user ids only" in problem


def test_signing_secret_is_optional_only_with_an_app_token() -> None:
    """Without an app token the signing secret is required; with one (Socket Mode) it may be left out."""
    data = _config_data()
    del data["slack"]["signing_secret"]
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    assert caught.value.problems == [
        "slack.signing_secret: is required (or set slack.app_token and run `accessbot serve --socket-mode`)"
    ]
    data["slack"]["app_token"] = APP_TOKEN
    assert parse_config(data).slack.signing_secret is None


def test_a_command_from_another_workspace_gets_a_plain_answer(bot: RunningBot) -> None:
    """A slash command whose team_id is not the bot's workspace is answered plainly, not with an outage."""
    key = uuid.uuid4().hex[:10]
    body = slash_command_body("/access", "link", ALICE, "T0ELSEWHR1", "C0GENERAL1", bot.slack.response_url(key))
    response = bot.post_signed(body)
    assert response.status_code == 200
    text = response.json()["text"]  # Slack's immediate response: the answer is in the acknowledgement
    assert "your Slack account belongs to another one" in text
    assert "not answering" not in text


def test_an_events_api_retry_runs_the_listener_once(gbot: RunningBot) -> None:
    """The same app_home_opened event delivered again as a retry (new signature) publishes the Home tab once."""
    body = json_body(app_home_opened_event(ALICE, team_id=TEAM))
    assert gbot.post_signed(body, content_type="application/json").status_code == 200
    wait_until(lambda: gbot.slack.home(ALICE))
    headers = gbot.signer.sign(body, timestamp=int(time.time()) + 1)  # Slack signs each delivery anew
    headers.update({"Content-Type": "application/json", "X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "timeout"})
    retry = gbot.http.post(f"{gbot.url}/slack/events", content=body.encode(), headers=headers)
    assert retry.status_code == 200
    fresh = json_body(app_home_opened_event(ALICE, team_id=TEAM))  # another event: it does run
    assert gbot.post_signed(fresh, content_type="application/json").status_code == 200
    wait_until(lambda: len(gbot.slack.calls("views.publish")) >= 2)
    time.sleep(0.3)
    assert len(gbot.slack.calls("views.publish")) == 2


def test_socket_mode_answers_a_command_over_the_websocket_without_a_signing_secret(
    make_bot: Callable[..., contextlib.AbstractContextManager[RunningBot]],
) -> None:
    """Started with --socket-mode and only an app token, the bot connects (apps.connections.open + hello) and acks a
    slash-command envelope with the help as its payload (Socket Mode's immediate response,
    https://api.slack.com/apis/socket-mode#command); HTTP requests to /slack/events are refused."""
    overrides = {"slack": {"app_token": APP_TOKEN, "signing_secret": None}}
    with make_bot(overrides=overrides, socket_mode=True) as bot:
        slack = bot.slack
        wait_until(lambda: slack.socket_mode.connections() >= 1, timeout=10)
        (opened,) = slack.calls("apps.connections.open")
        assert opened.ok
        key = uuid.uuid4().hex[:10]
        fields = dict(
            parse_qsl(slash_command_body("/access", "help", ALICE, TEAM, "C0GENERAL1", slack.response_url(key)))
        )
        envelope_id = slack.socket_mode.push("slash_commands", fields, accepts_response_payload=True)
        ack = wait_until(lambda: slack.socket_mode.ack(envelope_id), timeout=5)
        assert "/access" in str((ack.get("payload") or {}).get("text", ""))
        assert slack.responses(key) == []
        refused = bot.post_signed(slash_command_body("/access", "help", ALICE, TEAM, "C0GENERAL1", "http://r/x"))
        assert refused.status_code == 401
