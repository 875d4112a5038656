"""Which queued Slack messages to send next: priorities, per-message order where it matters, per-lane pacing.

`plan` is pure: the delivery job reads the due messages, asks for a SendPlan, sends exactly what it says, then asks
again. The rules, in the order they apply:

1. **Priority first, then queue order.** Security and approval posts (Priority.URGENT) go before DMs and other
   posts (NORMAL), which go before edits of messages already posted (BULK); within a priority, oldest first.
2. **Order only where it matters.** Messages sharing an `order_key` (a post and the edits of that one Slack
   message) go out in queue order: only the oldest pending one of a key may be sent (`heads`). A message waiting
   for its own retry therefore holds back later edits of the same message, and nothing else.
3. **Paced per lane.** Slack limits chat.postMessage to about one message per second per channel
   (docs.slack.dev/apis/web-api/rate-limits, "Special Tier"); a lane is one channel (or one user's DM, or one
   channel's uploads). A lane sends at most one message per plan and is then busy until the job says so (its pace,
   or a 429's Retry-After); messages in a busy lane wait without holding back other lanes.
4. **A budget per plan.** At most `capacity` messages (the job's workspace-wide rate).

So 10,000 edits queued in the grants channel are one lane at one message a second, and an approval request queued
after them is planned as soon as its own lane is free.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bot.core.model import OutboxMessage


@dataclass(frozen=True)
class SendPlan:
    """Messages to send now (in this order), how many wait for an earlier message, and when a busy lane frees."""

    send: tuple[OutboxMessage, ...] = ()
    held: int = 0
    waiting: int = 0
    wake_at: float | None = None


def lane(message: OutboxMessage) -> str:
    """The pacing lane of a message: its channel for posts and edits, the user for DMs, the channel for uploads."""
    if message.kind == "dm":
        return f"dm:{message.channel}"
    if message.kind == "file":
        return f"file:{message.channel}"
    return f"channel:{message.channel or message.order_key}"


def plan(
    due: Sequence[OutboxMessage],
    heads: Mapping[str, int],
    busy_until: Mapping[str, float],
    at: float,
    capacity: int,
) -> SendPlan:
    """Choose what to send at time `at` from the due messages (see the module docstring for the rules).

    `heads` maps each order key to the id of its oldest pending message (sent, parked and dropped ones excluded);
    `busy_until` maps a lane to the time it may send again. Lanes and `at` share one clock (the job's monotonic one).
    """
    chosen: list[OutboxMessage] = []
    used: set[str] = set()
    held = waiting = 0
    wake_at: float | None = None
    for message in sorted(due, key=lambda m: (m.priority, m.id)):
        if message.order_key and heads.get(message.order_key, message.id) != message.id:
            held += 1
            continue
        name = lane(message)
        free_at = busy_until.get(name, 0.0)
        if name in used or free_at > at or len(chosen) >= capacity:
            waiting += 1
            if name not in used and free_at > at:
                wake_at = free_at if wake_at is None else min(wake_at, free_at)
            continue
        used.add(name)
        chosen.append(message)
    return SendPlan(send=tuple(chosen), held=held, waiting=waiting, wake_at=wake_at)
