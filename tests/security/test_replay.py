"""The replay cache lives in the store: replays are refused across restarts and processes (issue 10, item 4).

Slack's guidance (https://api.slack.com/authentication/verifying-requests-from-slack) is to refuse requests whose
timestamp is more than five minutes from now; within that window, the same signed request must be handled once.
Before, the cache was in memory (lost on restart, not shared by a second process) and expired by arrival time, so a
request stamped in the future could be replayed after its cache entry was gone but while its timestamp was valid.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path

from accessbot_emulators.slack import slash_command_body
from tests.conftest import TEAM, FakeClock, RunningBot

MakeBot = Callable[..., contextlib.AbstractContextManager[RunningBot]]
REPLAYED = "replayed request (same signature seen before)"


def signed_help(bot: RunningBot, key: str, timestamp: int) -> tuple[str, dict[str, str]]:
    """A signed `/access help` from Alice (its reply goes to response_url `key`)."""
    body = slash_command_body("/access", "help", "U0ALICE001", TEAM, "C0GENERAL1", bot.slack.response_url(key))
    headers = bot.signer.sign(body, timestamp=timestamp)
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    return body, headers


def send(bot: RunningBot, body: str, headers: dict[str, str]) -> int:
    """POST a prepared request to the bot's /slack/events; the status."""
    return bot.http.post(f"{bot.url}/slack/events", content=body, headers=headers).status_code


def test_replay_is_refused_after_a_restart(make_bot: MakeBot, tmp_path: Path) -> None:
    """A request handled by one bot process is refused when replayed to the next process on the same database."""
    database = tmp_path / "replay.db"
    with make_bot(database=database) as first:
        body, headers = signed_help(first, "restart", int(time.time()))
        assert send(first, body, headers) == 200
    with make_bot(database=database) as second:
        assert send(second, body, headers) == 401


def test_replay_to_a_second_process_is_refused(make_bot: MakeBot, tmp_path: Path) -> None:
    """Two processes serve one database at once: a request accepted by one is refused by the other."""
    database = tmp_path / "shared.db"
    with make_bot(database=database) as one, make_bot(database=database, run_jobs=False) as two:
        body, headers = signed_help(one, "twins", int(time.time()))
        assert send(one, body, headers) == 200
        assert send(two, body, headers) == 401
        assert send(one, body, headers) == 401


def test_entries_expire_by_the_request_timestamp_not_arrival(make_bot: MakeBot, tmp_path: Path) -> None:
    """A request stamped 290 s ahead, replayed 400 s after it arrived (its timestamp still in the window), is
    refused: the entry lives until its own timestamp plus five minutes, not arrival plus five minutes."""
    clock = FakeClock(int(time.time()))
    with make_bot(database=tmp_path / "future.db", clock=clock) as bot:
        arrival = clock.value
        body, headers = signed_help(bot, "future", arrival + 290)
        assert send(bot, body, headers) == 200
        clock.value = arrival + 400
        assert send(bot, body, headers) == 401
        clock.value = arrival + 591  # past the timestamp's window: refused as stale, whatever the cache says
        assert send(bot, body, headers) == 401


def test_distinct_requests_in_the_same_second_are_all_handled(bot: RunningBot) -> None:
    """Only the same signature is a replay: 20 different requests in one second are all handled."""
    now = int(time.time())
    statuses = [send(bot, *signed_help(bot, f"burst-{i}", now)) for i in range(20)]
    assert statuses == [200] * 20
