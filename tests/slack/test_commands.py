"""The /access command surface over HTTP: signed requests in, ephemeral replies out via response_url."""

from __future__ import annotations

import json

import pytest

from tests.conftest import RunningBot


def test_help_is_answered_ephemerally(bot: RunningBot) -> None:
    """`/access help` lists every subcommand in an ephemeral reply."""
    reply = bot.ask("U0ALICE001", "help")
    assert reply.response_type == "ephemeral"
    for word in ("link", "list", "request", "grants", "revoke", "extend", "who", "rules", "unlink", "whoami"):
        assert f"/access {word}" in reply.text


def test_bare_command_for_unlinked_user_shows_help(bot: RunningBot) -> None:
    """An unlinked user sending the bare command gets the help text."""
    reply = bot.ask("U0ALICE001", "")
    assert "/access link" in reply.text
    assert reply.response_type == "ephemeral"


def test_unknown_command_gets_suggestion(bot: RunningBot) -> None:
    """A misspelt command is answered with a `did you mean` suggestion, not an error page."""
    reply = bot.ask("U0ALICE001", "lsit")
    assert "`lsit` is not a command I know" in reply.text
    assert "did you mean `list`" in reply.text
    assert reply.response_type == "ephemeral"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("revoke", "needs one grant id"),
        ("revoke 12", "is not a grant id"),
        ("extend g-1 forever", "is not a duration"),
        ("request prod-eu/payments", "needs a target and a role"),
        ("request prod-eu/payments project-member for", "needs a duration"),
        ("request prod-eu/payments project-member sometime", "did not understand"),
    ],
)
def test_malformed_command_gets_precise_reply(bot: RunningBot, text: str, expected: str) -> None:
    """Each malformed command is answered ephemerally with what is wrong and the usage."""
    reply = bot.ask("U0ALICE001", text)
    assert expected in reply.text
    assert "Traceback" not in reply.text
    assert reply.response_type == "ephemeral"


def test_text_containing_payload_is_parsed_as_a_command(bot: RunningBot) -> None:
    """A command whose text contains `payload` reaches the listener (Bolt's parse bug is fixed)."""
    response, key = bot.command("U0ALICE001", "list payload-api payload", channel_name="payload-team")
    assert response.status_code == 200
    reply = bot.reply(key)
    assert "at most one CLUSTER" in reply.text


def test_user_text_is_escaped_in_replies(bot: RunningBot) -> None:
    """A command echoing user text cannot inject a channel mention."""
    reply = bot.ask("U0ALICE001", "<!channel>")
    assert "<!channel>" not in reply.text
    assert "&lt;!channel&gt;" in reply.text


def refusals(bot: RunningBot, reason: str) -> int:
    """How many Slack requests /metrics counts as refused for `reason` (audit rows come once a minute, see
    tests/security/test_refusals.py)."""
    label = f'accessbot_refusals_total{{kind="slack",reason="{reason}"}} '
    for line in bot.http.get(f"{bot.url}/metrics").text.splitlines():
        if line.startswith(label):
            return int(float(line[len(label) :]))
    return 0


def test_forged_signature_is_refused_and_counted(bot: RunningBot) -> None:
    """A request signed with the wrong secret gets 401 and is counted by reason."""
    before = refusals(bot, "signature does not match")
    body = (
        "command=%2Faccess&text=help&user_id=U0EVIL0001&team_id=T0TEST0001&response_url=http%3A%2F%2F127.0.0.1%3A9%2F"
    )
    headers = bot.signer.sign(body)
    headers["X-Slack-Signature"] = "v0=" + "0" * 64
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    response = bot.http.post(f"{bot.url}/slack/events", content=body, headers=headers)
    assert response.status_code == 401
    assert refusals(bot, "signature does not match") == before + 1


def test_old_timestamp_is_refused_and_counted(bot: RunningBot) -> None:
    """A correctly signed request six minutes old gets 401 and is counted by reason."""
    before = refusals(bot, "timestamp outside the 5-minute window")
    import time

    body = "command=%2Faccess&text=help&user_id=U0ALICE001"
    response = bot.post_signed(body, timestamp=int(time.time()) - 360)
    assert response.status_code == 401
    assert refusals(bot, "timestamp outside the 5-minute window") == before + 1


def test_non_numeric_timestamp_is_refused_not_500(bot: RunningBot) -> None:
    """A non-numeric timestamp header is a 401, never a server error."""
    before = refusals(bot, "timestamp header is not a number")
    body = "command=%2Faccess&text=help"
    headers = {
        "X-Slack-Request-Timestamp": "yesterday",
        "X-Slack-Signature": "v0=abc",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    response = bot.http.post(f"{bot.url}/slack/events", content=body, headers=headers)
    assert response.status_code == 401
    assert json.loads(response.text) == {"error": "invalid request"}
    assert refusals(bot, "timestamp header is not a number") == before + 1


def test_replayed_request_is_refused_and_counted(bot: RunningBot) -> None:
    """The same signed request sent twice is handled once; the replay gets 401 and is counted by reason."""
    before = refusals(bot, "replayed request (same signature seen before)")
    from accessbot_emulators.slack import slash_command_body

    body = slash_command_body(
        "/access", "help", "U0ALICE001", "T0TEST0001", "C0GENERAL1", bot.slack.response_url("replay")
    )
    headers = bot.signer.sign(body)
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    first = bot.http.post(f"{bot.url}/slack/events", content=body, headers=headers)
    second = bot.http.post(f"{bot.url}/slack/events", content=body, headers=headers)
    assert first.status_code == 200
    assert second.status_code == 401
    assert refusals(bot, "replayed request (same signature seen before)") == before + 1
