"""The Slack messages the bot owes: queued as rendered notices in the caller's transaction, delivered by a job.

Queueing gives each message a priority (core.model.Priority) and an order key (the Slack message it posts or
edits). Delivery asks core.outbox_plan what to send, sends exactly that, and asks again until its run budget is
spent: security and approval posts first, one message per second per lane, and only edits of one message kept in
order. A transient failure (429, 5xx, network) backs off that message alone (a 429 also pauses its lane for
Retry-After); a permanent one parks it at once, audited and counted; an operator retries or drops parked messages
(`accessbot outbox`). Statuses and their moves are core.outbox_lifecycle.

Delivery is at-least-once with a narrow window: a message is marked sent (with its Slack ts and message reference)
in one transaction right after Slack accepts it. Slack's chat.postMessage has no idempotency key, so a crash after
Slack accepted a message but before that transaction commits re-sends that one message once after the restart.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from bot.core import audit_actions as A
from bot.core import outbox_plan
from bot.core.errors import NotFound, PermanentUpstreamError, TransientUpstreamError, UserError
from bot.core.model import OutboxMessage, OutboxStatus, Priority
from bot.core.notices import Notice
from bot.core.outbox_lifecycle import GIVE_UP_AFTER, OutboxEvent, gives_up, move, sources
from bot.core.ports import Clock, NoticeRenderer, Notifier
from bot.core.retry import backoff
from bot.core.storage import OutboxStore, Transactions
from bot.services.audit import AuditLog
from bot.services.metrics import METRICS

log = logging.getLogger(__name__)

URGENT_CHANNELS = frozenset({"approvals", "security"})
"""Configured channels whose posts go before everything else."""


@dataclass(frozen=True)
class OutboxSettings:
    """How delivery paces, retries and gives up (seconds unless said otherwise)."""

    batch: int = 200  # due messages read per plan
    retry_base: float = 2.0
    retry_cap: float = 300.0
    lane_pace: float = 1.0  # between two sends in one lane (Slack: about one message a second per channel)
    rate: float = 5.0  # sends per second across all lanes (Slack keeps a workspace-wide limit too)
    run_budget: float = 4.0  # how long one delivery run may go on (the job starts one every outbox_interval)
    down_after: int = 3  # consecutive transient failures (not 429s) that end a run: Slack looks down
    # conversations.open, which a DM to a user not messaged since start needs, is Tier 3: "50+ per minute",
    # "sporadic bursts are welcome" (docs.slack.dev/reference/methods/conversations.open, .../apis/web-api/rate-limits)
    open_rate: float = 50.0 / 60.0
    open_burst: float = 50.0
    give_up_after: int = GIVE_UP_AFTER


@dataclass(frozen=True)
class OutboxResult:
    """What one delivery run did."""

    sent: int = 0
    failed: int = 0
    parked: int = 0
    held: int = 0


@dataclass
class _Tally:
    sent: int = 0
    failed: int = 0
    parked: int = 0
    held: int = 0
    down: int = 0  # consecutive transient failures


Timer = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class Outbox:
    """Queues channel posts, DMs, edits in place and files under idempotency keys; delivers them by plan."""

    def __init__(
        self,
        *,
        store: OutboxStore,
        tx: Transactions,
        renderer: NoticeRenderer,
        notifier: Notifier,
        clock: Clock,
        audit: AuditLog,
        channels: Mapping[str, str | None],
        settings: OutboxSettings = OutboxSettings(),
        rng: random.Random | None = None,
        timer: Timer = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._store = store
        self._tx = tx
        self._renderer = renderer
        self._notifier = notifier
        self._clock = clock
        self._audit = audit
        self._channels = dict(channels)
        self._settings = settings
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not crypto
        self._timer = timer
        self._sleep = sleep
        self._busy: dict[str, float] = {}  # lane -> monotonic time it may send again
        self._tokens = max(1.0, settings.rate)
        self._refilled = timer()
        self._opens = max(1.0, settings.open_burst)  # conversations.open calls that may go now
        self._opens_refilled = self._refilled

    # --- queueing (inside the caller's transaction) -----------------------------------------------------

    def channel(self, name: str) -> str | None:
        """The configured channel id for `grants`, `approvals`, `security` or `digest` (None when unset)."""
        return self._channels.get(name)

    def post(self, channel_name: str, key: str, notice: Notice, *, ref: str = "") -> bool:
        """Queue a post to a configured channel; `ref` names the message so later updates edit it in place."""
        channel = self.channel(channel_name)
        if not channel:
            return False
        text, blocks = self._renderer.render(notice)
        priority = Priority.URGENT if channel_name in URGENT_CHANNELS else Priority.NORMAL
        return self._enqueue(
            key, "post", channel, {"text": text, "blocks": blocks, "ref": ref}, priority=priority, order_key=ref
        )

    def update(self, ref: str, key: str, notice: Notice, *, channel_name: str = "") -> bool:
        """Queue an edit of the message posted under `ref` (posted fresh to `channel_name` if it never was)."""
        channel = self.channel(channel_name) if channel_name else ""
        text, blocks = self._renderer.render(notice)
        payload = {"text": text, "blocks": blocks, "ref": ref}
        return self._enqueue(key, "update", channel or "", payload, priority=Priority.BULK, order_key=ref)

    def dm(self, user: str, key: str, notice: Notice, *, urgent: bool = False, ref: str = "") -> bool:
        """Queue a direct message to a Slack user (`urgent`: an approver asked to decide; `ref`: edited later)."""
        text, blocks = self._renderer.render(notice)
        priority = Priority.URGENT if urgent else Priority.NORMAL
        payload = {"text": text, "blocks": blocks, "ref": ref}
        return self._enqueue(key, "dm", user, payload, priority=priority, order_key=ref)

    def file(self, channel_name: str, key: str, filename: str, content: str, comment: Notice) -> bool:
        """Queue a file upload (e.g. the digest CSV) to a configured channel."""
        channel = self.channel(channel_name)
        if not channel:
            return False
        text, _ = self._renderer.render(comment)
        payload = {"filename": filename, "content": content, "comment": text}
        return self._enqueue(key, "file", channel, payload, priority=Priority.NORMAL, order_key="")

    def queued(self, key: str) -> bool:
        """True when a message with this idempotency key was ever queued."""
        return self._store.get(key) is not None

    def posted(self, ref: str) -> bool:
        """True when a message was posted under `ref` (so later notices edit it)."""
        return self._store.message_ref(ref) is not None

    def pending(self) -> int:
        """Messages not delivered yet."""
        return self._store.pending_count()

    def _enqueue(
        self, key: str, kind: str, channel: str, payload: Mapping[str, object], *, priority: Priority, order_key: str
    ) -> bool:
        return self._store.enqueue(
            key=key,
            kind=kind,
            channel=channel,
            payload=payload,
            now=self._clock.now(),
            priority=priority,
            order_key=order_key,
        )

    # --- operators (accessbot outbox list|retry|drop) ---------------------------------------------------

    def listing(
        self, statuses: tuple[OutboxStatus, ...] = (OutboxStatus.PARKED,), limit: int = 100
    ) -> list[OutboxMessage]:
        """Messages in the given statuses, oldest first (parked ones by default)."""
        return self._store.listing(statuses, limit)

    def retry(self, message_id: int, *, actor: str) -> OutboxMessage:
        """Put a parked message back in the queue, due now; audited."""
        return self._operate(message_id, OutboxEvent.RETRY, actor, A.OUTBOX_RETRIED)

    def drop(self, message_id: int, *, actor: str) -> OutboxMessage:
        """Give up on a parked or pending message for good; audited."""
        return self._operate(message_id, OutboxEvent.DROP, actor, A.OUTBOX_DROPPED)

    def _operate(self, message_id: int, event: OutboxEvent, actor: str, action: str) -> OutboxMessage:
        message = self._store.by_id(message_id)
        if message is None:
            raise NotFound(f"there is no outbox message {message_id}", "see them with `accessbot outbox list --all`")
        if message.status not in sources(event):
            allowed = " or ".join(s.value for s in sources(event))
            verb = "retried" if event is OutboxEvent.RETRY else "dropped"
            raise UserError(f"message {message_id} is {message.status.value}; only {allowed} messages can be {verb}")
        to = move(message.status, event)
        with self._tx.atomic():
            if not self._store.move(
                message_id, (message.status,), to, now=self._clock.now(), reason=f"{event.value} by {actor}"
            ):
                raise UserError(f"message {message_id} changed meanwhile; look again with `accessbot outbox list`")
            self._audit.record(action, actor=actor, target=f"outbox:{message_id}", details=_details(message))
        METRICS.count_outbox(event.value)
        updated = self._store.by_id(message_id)
        assert updated is not None
        return updated

    # --- delivery (the deliver_outbox job) --------------------------------------------------------------

    async def deliver(self, now: int) -> OutboxResult:
        """Send what the planner picks until the run budget is spent, nothing is due, or Slack looks down."""
        s = self._settings
        start = self._timer()
        deadline = start + s.run_budget
        tally = _Tally()
        while tally.down < s.down_after:
            moment = self._timer()
            at = now + int(moment - start)
            due = self._store.due(at, s.batch)
            if not due:
                break
            heads = self._store.heads({m.order_key for m in due if m.order_key})
            self._refill(moment)
            plan = outbox_plan.plan(due, heads, self._busy, moment, int(self._tokens))
            tally.held = plan.held
            if not plan.send:
                wake = plan.wake_at
                if plan.waiting and self._tokens < 1:
                    token_at = moment + (1 - self._tokens) / max(s.rate, 0.001)
                    wake = token_at if wake is None else min(wake, token_at)
                if wake is None or wake > deadline:
                    break
                await self._sleep(max(0.0, wake - moment))
                continue
            for message in plan.send:
                if not self._may_open(message):
                    continue  # its lane waits for Tier 3 room; the others go on
                self._tokens -= 1
                await self._attempt(message, at, tally)
                if tally.down >= s.down_after:
                    break
            if self._timer() >= deadline:
                break
        return OutboxResult(sent=tally.sent, failed=tally.failed, parked=tally.parked, held=tally.held)

    def _may_open(self, message: OutboxMessage) -> bool:
        """Take a conversations.open token for a DM that needs one, or make its lane wait until one is free.

        Paced ahead rather than only answering 429s: 120 reviewers' first DMs drew 106 429s before this.
        """
        if message.kind != "dm" or self._notifier.knows_dm(message.channel):
            return True
        moment = self._timer()
        rate = max(self._settings.open_rate, 0.001)
        burst = max(1.0, self._settings.open_burst)
        self._opens = min(burst, self._opens + (moment - self._opens_refilled) * rate)
        self._opens_refilled = moment
        if self._opens >= 1:
            self._opens -= 1
            return True
        self._busy[outbox_plan.lane(message)] = moment + (1 - self._opens) / rate
        return False

    def _refill(self, moment: float) -> None:
        rate = max(self._settings.rate, 0.001)
        self._tokens = min(max(1.0, rate), self._tokens + (moment - self._refilled) * rate)
        self._refilled = moment

    async def _attempt(self, message: OutboxMessage, at: int, tally: _Tally) -> None:
        """Send one message and record what happened to it; nothing it raises escapes."""
        lane = outbox_plan.lane(message)
        s = self._settings
        try:
            result_ts, ref = await self._send(message)
        except TransientUpstreamError as err:
            tally.failed += 1
            retry_after = getattr(err, "retry_after", None)
            if isinstance(retry_after, int | float) and retry_after > 0:
                wait = int(retry_after)
                self._busy[lane] = self._timer() + wait  # Slack limited this lane: pause it, not the others
            else:
                tally.down += 1
                wait = backoff(message.attempts + 1, s.retry_base, s.retry_cap, self._rng)
            METRICS.count_outbox("failed")
            if gives_up(message, at, s.give_up_after):
                self._park(message, f"still failing after {message.attempts + 1} attempts: {err.message}", tally)
                return
            self._store.retry_later(message.id, str(err), at + wait, at)
            log.warning("outbox %s (%s) not delivered, retry in %ds: %s", message.key, message.kind, wait, err)
            return
        except PermanentUpstreamError as err:
            self._park(message, err.code or err.message, tally)
            return
        except (ValueError, KeyError, TypeError) as err:  # a payload this version cannot send
            self._park(message, f"unreadable message ({type(err).__name__})", tally)
            return
        tally.down = 0
        self._busy[lane] = self._timer() + s.lane_pace
        with self._tx.atomic():
            if ref is not None:
                self._store.set_message_ref(*ref)
            self._store.mark_sent(message.id, at, result_ts)
        tally.sent += 1
        METRICS.count_outbox("sent")

    def _park(self, message: OutboxMessage, reason: str, tally: _Tally) -> None:
        with self._tx.atomic():
            if not self._store.move(
                message.id,
                sources(OutboxEvent.PARK),
                move(message.status, OutboxEvent.PARK),
                now=self._clock.now(),
                reason=reason,
            ):
                return
            self._audit.record(
                A.OUTBOX_PARKED,
                actor="system",
                target=f"outbox:{message.id}",
                outcome="failed",
                reason=reason,
                details=_details(message),
            )
        tally.parked += 1
        METRICS.count_outbox("parked")
        log.error("outbox %s (%s) parked: %s", message.key, message.kind, reason)

    async def _send(self, message: OutboxMessage) -> tuple[str, tuple[str, str, str] | None]:
        """Deliver one message; return the Slack ts and the (ref, channel, ts) to remember, if any."""
        payload: Mapping[str, object] = message.payload
        text = str(payload.get("text") or "")
        raw_blocks = payload.get("blocks")
        blocks = list(raw_blocks) if isinstance(raw_blocks, list) and raw_blocks else None
        ref = str(payload.get("ref") or "")
        if message.kind == "post":
            known = self._store.message_ref(ref) if ref else None
            if known is not None:
                return known[1], None  # a later update already posted this message fresh; do not post a second copy
            ts = await self._notifier.post(message.channel, text, blocks)
            return ts, ((ref, message.channel, ts) if ref else None)
        if message.kind == "update":
            known = self._store.message_ref(ref) if ref else None
            if known is not None:
                await self._notifier.update(known[0], known[1], text, blocks)
                return known[1], None
            if not message.channel:
                return "", None  # nothing was ever posted and there is nowhere to post: nothing to update
            ts = await self._notifier.post(message.channel, text, blocks)
            return ts, ((ref, message.channel, ts) if ref else None)
        if message.kind == "dm":
            if not ref:
                return await self._notifier.dm(message.channel, text, blocks), None
            channel = await self._notifier.open_dm(message.channel)
            ts = await self._notifier.post(channel, text, blocks)
            return ts, (ref, channel, ts)
        if message.kind == "file":
            content = str(payload.get("content") or "").encode()
            await self._notifier.upload(
                message.channel, str(payload.get("filename") or "file.txt"), content, str(payload.get("comment") or "")
            )
            return "", None
        raise ValueError(f"unknown outbox message kind {message.kind!r}")


def _details(message: OutboxMessage) -> dict[str, object]:
    """What the audit log keeps about an outbox message (never its text: it may quote user input)."""
    return {
        "message_id": message.id,
        "key": message.key,
        "kind": message.kind,
        "channel": message.channel,
        "attempts": message.attempts,
        "last_error": message.last_error,
    }
