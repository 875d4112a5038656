"""Notifications the bot owes: written to the outbox in the caller's transaction, delivered by a job."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from bot.core.ports import Clock, Store

Blocks = Sequence[Mapping[str, object]]


class Notifications:
    """Queues channel posts, DMs and in-place updates with an idempotency key each."""

    def __init__(self, store: Store, clock: Clock, channels: Mapping[str, str | None]) -> None:
        self._store = store
        self._clock = clock
        self._channels = dict(channels)

    def channel(self, name: str) -> str | None:
        """The configured channel id for `grants`, `approvals`, `security` or `digest` (None when unset)."""
        return self._channels.get(name)

    def to_channel(self, name: str, key: str, text: str, blocks: Blocks | None = None, *, ref: str = "") -> bool:
        """Queue a post to a configured channel; `ref` names the message so later updates edit it in place."""
        channel = self.channel(name)
        if not channel:
            return False
        return self._store.enqueue(
            key=key,
            kind="post",
            channel=channel,
            payload={"text": text, "blocks": list(blocks or []), "ref": ref},
            now=self._clock.now(),
        )

    def update(self, ref: str, key: str, text: str, blocks: Blocks | None = None, *, channel_name: str = "") -> bool:
        """Queue an in-place edit of the message posted under `ref` (posted fresh if it never was)."""
        channel = self.channel(channel_name) if channel_name else ""
        return self._store.enqueue(
            key=key,
            kind="update",
            channel=channel or "",
            payload={"text": text, "blocks": list(blocks or []), "ref": ref},
            now=self._clock.now(),
        )

    def dm(self, user: str, key: str, text: str, blocks: Blocks | None = None) -> bool:
        """Queue a direct message to a Slack user."""
        return self._store.enqueue(
            key=key,
            kind="dm",
            channel=user,
            payload={"text": text, "blocks": list(blocks or [])},
            now=self._clock.now(),
        )

    def file(self, name: str, key: str, filename: str, content: str, comment: str) -> bool:
        """Queue a file upload (e.g. the digest CSV) to a configured channel."""
        channel = self.channel(name)
        if not channel:
            return False
        return self._store.enqueue(
            key=key,
            kind="file",
            channel=channel,
            payload={"filename": filename, "content": content, "comment": comment},
            now=self._clock.now(),
        )
