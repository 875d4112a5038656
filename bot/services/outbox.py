"""The Slack messages the bot owes: queued as rendered notices in the caller's transaction, delivered by a job.

Delivery is at-least-once with a narrow window: a message is marked sent (with its Slack ts and message reference)
in one transaction right after Slack accepts it. Slack's chat.postMessage has no idempotency key, so a crash after
Slack accepted a message but before that transaction commits re-sends that one message once after the restart;
nothing else can be sent twice, and nothing is dropped.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass

from bot.core.errors import PermanentUpstreamError, TransientUpstreamError
from bot.core.model import OutboxMessage
from bot.core.notices import Notice
from bot.core.ports import Clock, NoticeRenderer, Notifier
from bot.core.retry import backoff
from bot.core.storage import OutboxStore, Transactions

log = logging.getLogger(__name__)

PARKED = 2**53
"""next_attempt_at of a message Slack refused for good (kept for the record, never retried)."""


@dataclass(frozen=True)
class OutboxSettings:
    """How many messages one run sends and how failed deliveries back off (seconds)."""

    batch: int = 200
    retry_base: float = 2.0
    retry_cap: float = 300.0


@dataclass(frozen=True)
class OutboxResult:
    """What one delivery run did."""

    sent: int = 0
    failed: int = 0
    parked: int = 0
    paused_until: int | None = None


class Outbox:
    """Queues channel posts, DMs, edits in place and files, each under an idempotency key; delivers them in order."""

    def __init__(
        self,
        *,
        store: OutboxStore,
        tx: Transactions,
        renderer: NoticeRenderer,
        notifier: Notifier,
        clock: Clock,
        channels: Mapping[str, str | None],
        settings: OutboxSettings = OutboxSettings(),
        rng: random.Random | None = None,
    ) -> None:
        self._store = store
        self._tx = tx
        self._renderer = renderer
        self._notifier = notifier
        self._clock = clock
        self._channels = dict(channels)
        self._settings = settings
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not crypto
        self._paused_until = 0

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
        return self._enqueue(key, "post", channel, {"text": text, "blocks": blocks, "ref": ref})

    def update(self, ref: str, key: str, notice: Notice, *, channel_name: str = "") -> bool:
        """Queue an edit of the message posted under `ref` (posted fresh to `channel_name` if it never was)."""
        channel = self.channel(channel_name) if channel_name else ""
        text, blocks = self._renderer.render(notice)
        return self._enqueue(key, "update", channel or "", {"text": text, "blocks": blocks, "ref": ref})

    def dm(self, user: str, key: str, notice: Notice) -> bool:
        """Queue a direct message to a Slack user."""
        text, blocks = self._renderer.render(notice)
        return self._enqueue(key, "dm", user, {"text": text, "blocks": blocks})

    def file(self, channel_name: str, key: str, filename: str, content: str, comment: Notice) -> bool:
        """Queue a file upload (e.g. the digest CSV) to a configured channel."""
        channel = self.channel(channel_name)
        if not channel:
            return False
        text, _ = self._renderer.render(comment)
        return self._enqueue(key, "file", channel, {"filename": filename, "content": content, "comment": text})

    def queued(self, key: str) -> bool:
        """True when a message with this idempotency key was ever queued."""
        return self._store.get(key) is not None

    def posted(self, ref: str) -> bool:
        """True when a message was posted under `ref` (so later notices edit it)."""
        return self._store.message_ref(ref) is not None

    def pending(self) -> int:
        """Messages not delivered yet."""
        return self._store.pending_count()

    def _enqueue(self, key: str, kind: str, channel: str, payload: Mapping[str, object]) -> bool:
        return self._store.enqueue(key=key, kind=kind, channel=channel, payload=payload, now=self._clock.now())

    # --- delivery (the deliver_outbox job) --------------------------------------------------------------

    async def deliver(self, now: int) -> OutboxResult:
        """Send due messages in order; honour Retry-After, back off on errors, park what Slack refuses."""
        if now < self._paused_until:
            return OutboxResult(paused_until=self._paused_until)
        sent = failed = parked = 0
        for message in self._store.due(now, self._settings.batch):
            try:
                result_ts, ref = await self._send(message)
            except TransientUpstreamError as err:
                failed += 1
                retry_after = getattr(err, "retry_after", None)
                if isinstance(retry_after, int | float) and retry_after > 0:
                    wait = int(retry_after)
                else:
                    s = self._settings
                    wait = backoff(message.attempts + 1, s.retry_base, s.retry_cap, self._rng)
                self._store.mark_failed(message.id, str(err), now + wait)
                self._paused_until = now + wait  # Slack is rate limiting or down: stop this run, keep order
                log.warning("outbox %s (%s) not delivered, retry in %ds: %s", message.key, message.kind, wait, err)
                return OutboxResult(sent=sent, failed=failed, parked=parked, paused_until=now + wait)
            except (PermanentUpstreamError, ValueError, KeyError, TypeError) as err:
                parked += 1
                self._store.mark_failed(message.id, f"refused: {err}", PARKED)
                log.error("outbox %s (%s) refused, parked: %s", message.key, message.kind, err)
                continue
            with self._tx.atomic():
                if ref is not None:
                    self._store.set_message_ref(*ref)
                self._store.mark_sent(message.id, now, result_ts)
            sent += 1
        return OutboxResult(sent=sent, failed=failed, parked=parked)

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
            return await self._notifier.dm(message.channel, text, blocks), None
        if message.kind == "file":
            content = str(payload.get("content") or "").encode()
            await self._notifier.upload(
                message.channel, str(payload.get("filename") or "file.txt"), content, str(payload.get("comment") or "")
            )
            return "", None
        raise ValueError(f"unknown outbox message kind {message.kind!r}")
