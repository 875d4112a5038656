"""The outbox against the Slack emulator over HTTP and a real SQLite store: priorities, lanes, parking, retries.

The Slack behaviours relied on here are the emulator's, each citing its Slack document:
- `user_disabled` from conversations.open for a deactivated user (api.slack.com/methods/conversations.open);
- the common transient errors `ratelimited`, `service_unavailable`, `internal_error`, `fatal_error`,
  `request_timeout` (docs.slack.dev/reference/methods/chat.postMessage, "Errors");
- 429 + Retry-After past one message per second per channel (docs.slack.dev/apis/web-api/rate-limits);
- conversations.open at Tier 3, "50+ per minute" (docs.slack.dev/reference/methods/conversations.open), played by
  the emulator as a burst of 50 then 50 a minute;
- files_upload_v2 raising SlackRequestError when the upload URL answers non-200 (slack_sdk 3.48 async_client.py).
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from accessbot_emulators.slack import SlackEmulator
from bot.adapters.slack_notifier import SlackNotifier, make_client
from bot.adapters.store import open_storage
from bot.core import audit_actions as A
from bot.core.errors import UserError
from bot.core.model import OutboxStatus, Priority
from bot.core.outbox_lifecycle import GIVE_UP_AFTER
from bot.core.storage import Storage
from bot.demo import botconfig
from bot.services.audit import AuditLog
from bot.services.metrics import METRICS
from bot.services.outbox import Outbox, OutboxSettings
from bot.slack.notices import SlackNotices
from tests import factories
from tests.conftest import UNREACHABLE, FakeClock

CHANNELS = botconfig.CHANNELS
GRANTS, APPROVALS, SECURITY, DIGEST = (CHANNELS[k] for k in ("grants", "approvals", "security", "digest"))
ALICE = "U0ALICE001"
GONE = "U0GONE0001"  # deactivated in Slack (never reactivated: the emulator's directory outlives a test)
FAST = OutboxSettings(lane_pace=0.0, rate=1000.0, run_budget=2.0)


@dataclass
class Box:
    """An outbox wired to SQLite and the Slack emulator."""

    store: Storage
    outbox: Outbox
    slack: SlackEmulator
    clock: FakeClock

    def with_settings(self, settings: OutboxSettings, *, api_url: str | None = None) -> Outbox:
        """Another outbox on the same store (other settings or another Slack address)."""
        return _outbox(self.store, self.clock, settings, api_url or self.slack.api_url)

    def status(self, key: str) -> OutboxStatus:
        """The stored status of a message."""
        message = self.store.outbox.get(key)
        assert message is not None
        return message.status

    def queue(self, kind: str, channel: str, key: str, text: str = "hello", **kwargs: object) -> None:
        """Queue one rendered message now."""
        factories.queue(self.store, kind, channel, key, text, now=self.clock.now(), **kwargs)  # type: ignore[arg-type]


def _outbox(store: Storage, clock: FakeClock, settings: OutboxSettings, api_url: str) -> Outbox:
    notifier = SlackNotifier(make_client(botconfig.BOT_TOKEN, api_url))
    return Outbox(
        store=store.outbox,
        tx=store.tx,
        renderer=SlackNotices(),
        notifier=notifier,
        clock=clock,
        audit=AuditLog(tx=store.tx, store=store.audit, clock=clock),
        channels=CHANNELS,
        settings=settings,
        rng=random.Random(3),
    )


@pytest.fixture
def box(slack: SlackEmulator, tmp_path: Path) -> Iterator[Box]:
    """A fresh store and a reset emulator with Alice (active) and a deactivated user."""
    slack.reset()
    slack.set_down(False)
    slack.add_user(ALICE, "alice@example.com", "alice")
    slack.add_user(GONE, "gone@example.com", "gone", deleted=True)
    store = open_storage(tmp_path / "outbox.db")
    clock = FakeClock()
    yield Box(store, _outbox(store, clock, FAST, slack.api_url), slack, clock)
    store.database.close()


async def test_a_dm_to_a_deactivated_user_is_parked_and_later_messages_still_go(box: Box) -> None:
    """user_disabled parks that DM at once (audited, with its reason) and the security post after it is sent."""
    box.queue("dm", GONE, "dm-gone", "your grant was revoked")
    box.queue("post", SECURITY, "alert", "link revoked", priority=Priority.URGENT)
    result = await box.outbox.deliver(box.clock.now())
    assert (result.sent, result.parked) == (1, 1)
    assert box.status("dm-gone") is OutboxStatus.PARKED
    parked = box.store.outbox.get("dm-gone")
    assert parked is not None
    assert parked.last_error == "user_disabled"
    assert [m.text for m in box.slack.messages(SECURITY)] == ["link revoked"]
    (event,) = [e for e in box.store.audit.events() if e.action == A.OUTBOX_PARKED]
    assert (event.target, event.reason) == (f"outbox:{parked.id}", "user_disabled")
    assert "your grant was revoked" not in event.details_json  # message text may quote users: never audited
    box.clock.value += 86400
    assert (await box.outbox.deliver(box.clock.now())).sent == 0  # parked is never retried by itself


@pytest.mark.parametrize(
    "code",
    ["cannot_dm_bot", "restricted_action", "token_revoked", "invalid_arguments", "channel_not_found", "not_in_channel"],
)
async def test_every_code_slack_does_not_call_transient_parks_the_message(box: Box, code: str) -> None:
    """Any error code outside Slack's transient ones is permanent: parked at once with that code."""
    box.queue("post", GRANTS, "refused", "x")
    box.slack.fail_next("chat.postMessage", error=code)
    result = await box.outbox.deliver(box.clock.now())
    assert result.parked == 1
    message = box.store.outbox.get("refused")
    assert message is not None
    assert (message.status, message.last_error) == (OutboxStatus.PARKED, code)


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (200, "ratelimited"),
        (200, "service_unavailable"),
        (200, "internal_error"),
        (200, "fatal_error"),
        (200, "request_timeout"),
        (500, None),
        (503, None),
    ],
)
async def test_transient_failures_back_off_that_message_alone(box: Box, status: int, code: str | None) -> None:
    """A transient failure keeps the message pending with its own later attempt; the next message still goes."""
    box.queue("post", GRANTS, "flaky", "first")
    box.queue("post", APPROVALS, "fine", "second")
    if code is None:
        box.slack.fail_next("chat.postMessage", status=status)
    else:
        box.slack.fail_next("chat.postMessage", error=code)
    result = await box.outbox.deliver(box.clock.now())
    assert (result.sent, result.failed, result.parked) == (1, 1, 0)
    flaky = box.store.outbox.get("flaky")
    assert flaky is not None
    assert (flaky.status, flaky.attempts) == (OutboxStatus.PENDING, 1)
    assert flaky.next_attempt_at > box.clock.now()
    box.clock.value = flaky.next_attempt_at
    assert (await box.outbox.deliver(box.clock.now())).sent == 1
    assert [m.text for m in box.slack.messages(GRANTS)] == ["first"]


async def test_a_429_pauses_only_its_lane_for_retry_after(box: Box) -> None:
    """HTTP 429 with Retry-After: 7 delays that channel's messages by 7 s; another channel's message goes now."""
    box.queue("post", GRANTS, "g1", "grants one")
    box.queue("post", GRANTS, "g2", "grants two")
    box.queue("post", SECURITY, "s1", "security one")
    box.slack.fail_next("chat.postMessage", status=429, retry_after=7)
    now = box.clock.now()
    result = await box.with_settings(replace(FAST, run_budget=0.3)).deliver(now)
    assert result.sent == 1
    assert [m.text for m in box.slack.messages()] == ["security one"]
    g1 = box.store.outbox.get("g1")
    assert g1 is not None
    assert g1.next_attempt_at == now + 7
    box.clock.value = now + 7
    await box.outbox.deliver(box.clock.now())
    assert [m.text for m in box.slack.messages(GRANTS)] == ["grants one", "grants two"]


async def test_a_failed_digest_upload_is_retried_and_never_escapes_the_job(box: Box) -> None:
    """The upload URL answering 500 (slack_sdk raises SlackRequestError) is a transient failure of that file only."""
    factories.queue_file(box.store, DIGEST, "csv", "grants.csv", "id\r\ng-1\r\n", "every grant", now=box.clock.now())
    box.queue("post", SECURITY, "after", "security after", priority=Priority.URGENT)
    box.slack.fail_next("upload", status=500)
    result = await box.outbox.deliver(box.clock.now())
    assert (result.sent, result.failed) == (1, 1)
    assert box.status("csv") is OutboxStatus.PENDING
    box.clock.value += 600
    assert (await box.outbox.deliver(box.clock.now())).sent == 1
    (uploaded,) = box.slack.files(DIGEST)
    assert uploaded.content == b"id\r\ng-1\r\n"


async def test_an_unreachable_slack_ends_the_run_after_a_few_failures(box: Box) -> None:
    """Network errors are transient; after `down_after` in a row the run stops instead of trying every message."""
    for i in range(10):
        box.queue("post", GRANTS, f"k{i}", f"message {i}")
    unreachable = box.with_settings(replace(FAST, run_budget=30.0), api_url=f"{UNREACHABLE}/api/")
    result = await unreachable.deliver(box.clock.now())
    assert (result.sent, result.failed) == (0, FAST.down_after)
    assert box.store.outbox.pending_count() == 10


async def test_slack_down_for_a_while_loses_and_duplicates_nothing(box: Box) -> None:
    """While Slack answers 503 nothing is lost; once it is back every message is delivered exactly once."""
    box.queue("post", GRANTS, "k-post", "grant g-1 is active", ref="grant:g-1")
    box.queue("dm", ALICE, "k-dm", "your grant is active")
    box.queue("update", GRANTS, "k-update", "grant g-1 expired", ref="grant:g-1")
    factories.queue_file(box.store, DIGEST, "k-file", "grants.csv", "id\r\ng-1\r\n", "every grant", now=box.clock.now())
    box.slack.set_down(True)
    for _ in range(5):
        result = await box.outbox.deliver(box.clock.now())
        assert result.sent == 0
        box.clock.value += 400
    assert box.store.outbox.pending_count() == 4
    box.slack.set_down(False)
    assert (await box.outbox.deliver(box.clock.now())).sent == 4
    assert box.store.outbox.pending_count() == 0
    box.clock.value += 400
    assert (await box.outbox.deliver(box.clock.now())).sent == 0
    (posted,) = box.slack.messages(GRANTS)
    assert (posted.text, posted.edits) == ("grant g-1 expired", 1)
    assert [m.text for m in box.slack.dms(ALICE)] == ["your grant is active"]
    assert [f.content for f in box.slack.files(DIGEST)] == [b"id\r\ng-1\r\n"]


async def test_security_and_approval_posts_go_before_dms_and_edits(box: Box) -> None:
    """With room for one send at a time, the urgent post queued last is sent first, then DMs, then edits."""
    for i in range(3):
        ts = box.slack.seed_message(GRANTS, f"status {i}")
        box.store.outbox.set_message_ref(f"grant:g-{i}", GRANTS, ts)
        box.queue("update", GRANTS, f"edit-{i}", f"expired {i}", ref=f"grant:g-{i}")
    box.queue("dm", ALICE, "dm", "your grant expired")
    box.queue("post", APPROVALS, "ask", "approve g-9?", priority=Priority.URGENT)
    await box.with_settings(replace(FAST, rate=1.0, run_budget=6.0)).deliver(box.clock.now())
    order = [c.method for c in box.slack.calls() if c.ok]
    assert order[0] == "chat.postMessage"
    assert box.slack.calls("chat.postMessage")[0].args["channel"] == APPROVALS
    assert order.index("conversations.open") < order.index("chat.update")
    assert [m.text for m in box.slack.messages(GRANTS)] == ["expired 0", "expired 1", "expired 2"]


async def test_edits_of_one_message_wait_for_its_post_and_keep_their_order(box: Box) -> None:
    """A post failing transiently holds back its own edits (in order), not the messages of other posts."""
    box.queue("post", GRANTS, "p1", "requested", ref="grant:g-1")
    box.queue("update", GRANTS, "u1", "active", ref="grant:g-1")
    box.queue("update", GRANTS, "u2", "expired", ref="grant:g-1")
    box.queue("post", GRANTS, "p2", "other grant", ref="grant:g-2")
    box.slack.fail_next("chat.postMessage", error="internal_error")
    result = await box.outbox.deliver(box.clock.now())
    assert (result.sent, result.held) == (1, 2)
    assert [m.text for m in box.slack.messages(GRANTS)] == ["other grant"]
    box.clock.value += 600
    await box.outbox.deliver(box.clock.now())
    first = next(m for m in box.slack.messages(GRANTS) if m.text == "expired")
    assert first.edits == 2
    updates = [c.args["text"] for c in box.slack.calls("chat.update")]
    assert updates == ["active", "expired"]


async def test_sends_in_one_channel_are_paced_to_slacks_rate(box: Box) -> None:
    """With Slack enforcing one post a second per channel, paced delivery of four posts is never answered 429."""
    box.slack.enforce_rate_limits(per_channel_per_second=1.0, burst=1.0)
    for i in range(4):
        box.queue("post", GRANTS, f"g{i}", f"grants {i}")
    box.queue("post", SECURITY, "s", "security")
    paced = box.with_settings(OutboxSettings(lane_pace=1.0, rate=100.0, run_budget=5.0))
    result = await paced.deliver(box.clock.now())
    assert result.sent == 5
    assert box.slack.rate_limited() == 0
    assert [m.text for m in box.slack.messages(GRANTS)] == [f"grants {i}" for i in range(4)]


async def test_first_dms_to_many_people_are_paced_to_conversations_open_tier(box: Box) -> None:
    """54 first DMs (each needs conversations.open, Tier 3) go out with no 429: the four past the burst wait their turn.

    Fails without the outbox's own Tier 3 pacing: Slack then answers 429 to the 51st open.
    """
    box.slack.enforce_rate_limits(per_channel_per_second=1.0, burst=1.0)
    people = [f"U0PACE{i:04d}" for i in range(54)]
    for person in people:
        box.slack.add_user(person, email=f"{person.lower()}@example.com", name=person.lower())
        box.queue("dm", person, f"dm-{person}", "please review")
    paced = box.with_settings(replace(FAST, rate=100.0, run_budget=30.0))  # ends once all are sent
    started = time.monotonic()
    result = await paced.deliver(box.clock.now())
    took = time.monotonic() - started
    assert result.sent == 54
    assert box.slack.rate_limited() == 0
    assert len(box.slack.calls("conversations.open")) == 54
    assert took >= 3 * 60 / 50  # at least three of the four waited for a Tier 3 token (1.2 s each)
    assert all(len(box.slack.dms(person)) == 1 for person in people)


async def test_a_message_failing_for_a_day_is_parked(box: Box) -> None:
    """A message still failing transiently `give_up_after` after its first failure is parked, not retried forever."""
    box.queue("post", GRANTS, "doomed", "x")
    box.slack.set_down(True)
    await box.outbox.deliver(box.clock.now())
    box.clock.value += GIVE_UP_AFTER
    result = await box.outbox.deliver(box.clock.now())
    assert result.parked == 1
    message = box.store.outbox.get("doomed")
    assert message is not None
    assert message.status is OutboxStatus.PARKED
    assert message.last_error.startswith("still failing after 2 attempts")


async def test_operators_retry_and_drop_parked_messages_with_an_audit_trail(box: Box) -> None:
    """retry puts a parked message back due now (then it is sent); drop ends one for good; both are audited."""
    box.queue("post", GRANTS, "one", "first try refused")
    box.queue("post", SECURITY, "two", "to drop")
    box.slack.fail_next("chat.postMessage", error="not_in_channel", count=2)
    await box.outbox.deliver(box.clock.now())
    parked = box.outbox.listing()
    assert [m.key for m in parked] == ["one", "two"]
    one, two = parked
    assert box.outbox.retry(one.id, actor="cli:ops").status is OutboxStatus.PENDING
    assert box.outbox.drop(two.id, actor="cli:ops").status is OutboxStatus.DROPPED
    with pytest.raises(UserError, match="only parked messages can be retried"):
        box.outbox.retry(two.id, actor="cli:ops")
    assert (await box.outbox.deliver(box.clock.now())).sent == 1
    assert [m.text for m in box.slack.messages(GRANTS)] == ["first try refused"]
    actions = [(e.action, e.actor) for e in box.store.audit.events()]
    assert (A.OUTBOX_RETRIED, "cli:ops") in actions
    assert (A.OUTBOX_DROPPED, "cli:ops") in actions


async def test_parked_messages_are_counted_in_metrics(box: Box) -> None:
    """Every parking adds to accessbot_outbox_deliveries_total{outcome="parked"}."""
    before = METRICS.outbox["parked"]
    box.queue("dm", GONE, "dm-gone")
    await box.outbox.deliver(box.clock.now())
    assert METRICS.outbox["parked"] == before + 1
    assert 'accessbot_outbox_deliveries_total{outcome="parked"}' in METRICS.render({})
