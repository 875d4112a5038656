"""The commands that froze the bot, sent to a running bot on loopback while /healthz is polled (issue 10, item 1).

Before the fix, `/access extend g-1 1s 1s … 1s x` (26 tokens, from a user who never linked) made /healthz take 9 s,
and the request form's duration field was worse: the event loop ran the exponential regex and nothing else ran.
"""

from __future__ import annotations

import threading
import time

import httpx

from accessbot_emulators.slack import interaction_body, view_submission_payload
from bot.slack import forms as gb
from tests.conftest import ALICE, RunningBot

HEALTH_BUDGET_S = 1.0
"""The slowest /healthz answer allowed while the hostile commands are handled (it was 9 s before the fix)."""
NEVER_LINKED = "U0STRANGER1"
KNOWN_BAD_COMMANDS = [
    "extend g-1 " + "1s " * 26 + "x",
    "extend g-1 " + "1s " * 20 + "x",
    "request dev-eu/payments project-member for " + "1s " * 20 + "x",
    "request dev-eu/payments project-member for " + "1" * 60 + "w",
    "request " + "a" * 5000,
    "extend g-" + "9" * 40 + " 1h",
    "extend g-1 ²³h",
]


class HealthPoller:
    """Polls /healthz every 20 ms on its own thread and keeps the slowest answer and any failure."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.slowest = 0.0
        self.answers = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> HealthPoller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self._stop.is_set():
                started = time.perf_counter()
                try:
                    status = client.get(f"{self.url}/healthz").status_code
                except httpx.HTTPError as err:
                    self.failures.append(type(err).__name__)
                    continue
                self.slowest = max(self.slowest, time.perf_counter() - started)
                self.answers += 1
                if status != 200:
                    self.failures.append(str(status))
                time.sleep(0.02)


def test_known_bad_commands_are_refused_while_healthz_keeps_answering(gbot: RunningBot) -> None:
    """Each freezing command gets its ephemeral refusal, and /healthz never takes over a second meanwhile."""
    with HealthPoller(gbot.url) as health:
        for text in KNOWN_BAD_COMMANDS:
            for user in (NEVER_LINKED, ALICE):
                reply = gbot.ask(user, text)
                assert reply.response_type == "ephemeral"
                assert reply.text
                assert "Traceback" not in reply.text
        time.sleep(0.2)
    assert health.failures == []
    assert health.answers >= 5
    assert health.slowest < HEALTH_BUDGET_S, f"/healthz took {health.slowest:.2f}s while hostile commands ran"


def test_freezing_duration_in_the_request_form_is_an_inline_error(gbot: RunningBot) -> None:
    """The request form's duration field refuses the exponential shape on the field, fast, and requests nothing."""
    with HealthPoller(gbot.url) as health:
        for value in ("1s " * 20 + "x", "1s " * 200 + "x", "9" * 5000):
            payload = view_submission_payload(
                ALICE,
                gb.REQUEST_CALLBACK,
                {
                    gb.CHOICE_BLOCK: {
                        gb.CHOICE_ACTION: {
                            "type": "static_select",
                            "selected_option": {"value": "c-7xk2p|cluster-member|"},
                        }
                    },
                    gb.DURATION_BLOCK: {gb.VALUE_ACTION: value},
                },
            )
            response = gbot.post_signed(interaction_body(payload))
            assert response.status_code == 200
            body = response.json()
            assert body["response_action"] == "errors"
            assert "duration" in body["errors"][gb.DURATION_BLOCK]
    assert health.failures == []
    assert health.slowest < HEALTH_BUDGET_S
    store = gbot.store()
    try:
        assert store.grants.find(slack_user=ALICE) == []
    finally:
        store.database.close()
