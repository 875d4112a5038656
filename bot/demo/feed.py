"""What the demo's people see in Slack: new messages, edits, responses and forms, with their buttons numbered."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.adapters.store import open_storage
from bot.core.grant_lifecycle import IN_FLIGHT, due_for_expiry, request_expired
from bot.core.model import GrantState
from bot.core.storage import Storage
from bot.demo.blocks_text import Button, render
from bot.demo.stack import PEOPLE, Stack

QUIET = 0.4
"""Seconds without a new Slack message or edit after which a command's effects are taken as shown."""


@dataclass
class Clickable:
    """A numbered button and where it was shown."""

    button: Button
    channel: str | None
    ts: str | None
    message: dict[str, Any] | None
    ephemeral: bool


@dataclass
class SlackFeed:
    """Prints what Slack shows since the last look, numbers its buttons, and keeps each user's last link URL."""

    stack: Stack
    say: Callable[[str], None]
    settle: float = 4.0
    buttons: list[Clickable] = field(default_factory=list)
    seen: dict[tuple[str, str], int] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)

    @property
    def names(self) -> dict[str, str]:
        """Slack user id → demo name, for rendering mentions."""
        return {uid: name for name, (uid, _, _) in PEOPLE.items()}

    def show_response(self, key: str, user: str, timeout: float = 8.0) -> None:
        """Print what the bot sent to the response_url `key`, waiting up to `timeout` seconds for it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            posts = self.stack.slack.responses(key)
            if posts:
                time.sleep(0.2)
                for post in self.stack.slack.responses(key):
                    if post.replace_original:
                        label = "the clicked message now reads"
                    else:
                        label = "only visible to you" if post.is_ephemeral else "in channel"
                    self.print_message(label, post.blocks, post.text, user=user, channel=None, ts=None, ephemeral=True)
                return
            time.sleep(0.05)

    def show_new_messages(self, user: str, *, jobs: bool = False) -> None:
        """Wait for the bot to settle, then print every message, edit and form not shown yet."""
        self._settle(jobs=jobs)
        for message in self.stack.slack.messages():
            mark = (message.channel, message.ts)
            if self.seen.get(mark) == message.edits:
                continue
            updated = mark in self.seen
            self.seen[mark] = message.edits
            label = self._channel_label(message.channel) + (" (updated)" if updated else "")
            self.print_message(label, message.blocks, message.text, user=user, channel=message.channel, ts=message.ts)
        for view in self.stack.slack.views(kind="modal"):
            mark = ("view", view.id)
            if self.seen.get(mark) == view.updates:
                continue
            self.seen[mark] = view.updates
            self.print_message(f"form opened for {user}", view.blocks, None, user=user, channel=None, ts=None)

    def print_message(
        self,
        label: str,
        blocks: Any,
        text: str | None,
        *,
        user: str,
        channel: str | None,
        ts: str | None,
        ephemeral: bool = False,
    ) -> None:
        """Print one message as a box and number its buttons (a link button becomes `user`'s pending link)."""
        lines, buttons = render(blocks, text, len(self.buttons) + 1, self.names)
        self.say(f"┌ {label}")
        for line in lines:
            for part in line.splitlines() or [""]:
                self.say(f"│ {part}")
        self.say("└")
        message = {"ts": ts, "text": text or "", "blocks": blocks or []} if ts else None
        for button in buttons:
            self.buttons.append(Clickable(button, channel, ts, message, ephemeral))
            if button.url and "/oauth/start" in button.url:
                self.links[user] = button.url

    def _channel_label(self, channel: str) -> str:
        channels = self.stack.config.slack.channels
        named = {channels.grants: "#grants", channels.approvals: "#approvals", channels.security: "#security"}
        named[channels.digest] = "#digest"
        if channel in named:
            return named[channel] or channel
        for name, (uid, _, _) in PEOPLE.items():
            if channel == self.stack.slack.dm_channel(uid):
                return f"DM to {name}"
        return channel

    def _busy(self, store: Storage, *, jobs: bool) -> bool:
        """Whether the bot still has work in hand that will show in Slack (with `jobs`: work the jobs owe too)."""
        now = int(time.time())
        if store.outbox.due(now, limit=1) or store.grants.find(states=IN_FLIGHT, limit=1):
            return True
        if not jobs:
            return False
        if any(due_for_expiry(g, now) for g in store.grants.find(states=(GrantState.ACTIVE,))) or any(
            request_expired(g, now) for g in store.grants.find(states=(GrantState.REQUESTED,))
        ):
            return True
        return any((link.next_refresh_at or now + 1) <= now for link in store.links.active())

    def _settle(self, *, jobs: bool = False) -> None:
        """Wait until the bot has nothing due and Slack stayed quiet for a moment, at most `settle` seconds.

        With `jobs` (after the clock moved), wait at least until the scheduler has woken up once and until the
        grants, requests and links that fell due have been handled.
        """
        start = time.monotonic()
        minimum, maximum = (1.2, max(self.settle, 8.0)) if jobs else (0.2, self.settle)
        last: tuple[int, ...] = ()
        quiet_since = start
        store = open_storage(self.stack.config.database.reveal(), migrate=False)
        try:
            while (elapsed := time.monotonic() - start) < maximum:
                state = self._slack_state()
                if state != last:
                    last, quiet_since = state, time.monotonic()
                quiet = time.monotonic() - quiet_since >= QUIET
                if elapsed >= minimum and quiet and not self._busy(store, jobs=jobs):
                    return
                time.sleep(0.05)
        finally:
            store.database.close()

    def _slack_state(self) -> tuple[int, ...]:
        slack = self.stack.slack
        messages = slack.messages()
        views = slack.views()
        return (
            len(messages),
            sum(m.edits for m in messages),
            len(views),
            sum(v.updates for v in views),
            len(slack.responses()),
        )
