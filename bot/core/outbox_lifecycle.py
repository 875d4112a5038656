"""The life of a queued Slack message: its states, the legal moves between them, and when to give up retrying.

States and events (SENT and DROPPED are terminal)::

    pending --sent--> sent          Slack accepted it (or there was nothing left to do)
    pending --park--> parked        Slack refused it for good (`user_disabled`, `channel_not_found`, …), or it kept
                                    failing for longer than the give-up age
    pending --drop--> dropped       an operator gave up on it (`accessbot outbox drop ID`)
    parked  --retry--> pending      an operator asked for another try (`accessbot outbox retry ID`)
    parked  --drop--> dropped

A transient failure (429, 5xx, a network error, `ratelimited`, …) is not a move: the message stays `pending` with
its own later `next_attempt_at`, so one failing message never holds back the others.
"""

from __future__ import annotations

from enum import StrEnum

from bot.core.errors import InvalidTransition
from bot.core.model import OutboxMessage, OutboxStatus


class OutboxEvent(StrEnum):
    """Something that moves a queued message from one status to the next."""

    SENT = "sent"
    PARK = "park"
    DROP = "drop"
    RETRY = "retry"


St = OutboxStatus
E = OutboxEvent

MOVES: dict[tuple[OutboxStatus, OutboxEvent], OutboxStatus] = {
    (St.PENDING, E.SENT): St.SENT,
    (St.PENDING, E.PARK): St.PARKED,
    (St.PENDING, E.DROP): St.DROPPED,
    (St.PARKED, E.RETRY): St.PENDING,
    (St.PARKED, E.DROP): St.DROPPED,
}
"""Every legal (status, event) → next status; the store turns these into compare-and-set preconditions."""

TERMINAL: frozenset[OutboxStatus] = frozenset({St.SENT, St.DROPPED})
"""Statuses a message never leaves."""

OWED: frozenset[OutboxStatus] = frozenset({St.PENDING, St.PARKED})
"""Statuses of a message nobody received yet (an operator may still retry or drop it)."""

GIVE_UP_AFTER = 24 * 3600
"""Seconds a message may keep failing transiently before it is parked (Slack down for a day needs a person)."""


def move(current: OutboxStatus | str, event: OutboxEvent | str) -> OutboxStatus:
    """The status after `event`, or raise InvalidTransition when the event is not legal in `current`."""
    try:
        status, ev = OutboxStatus(current), OutboxEvent(event)
    except ValueError:
        raise InvalidTransition(str(current), str(event)) from None
    nxt = MOVES.get((status, ev))
    if nxt is None:
        raise InvalidTransition(status.value, ev.value)
    return nxt


def sources(event: OutboxEvent | str) -> tuple[OutboxStatus, ...]:
    """The statuses from which `event` is legal (the `expected` of a compare-and-set)."""
    ev = OutboxEvent(event)
    return tuple(status for (status, e) in MOVES if e is ev)


def gives_up(message: OutboxMessage, now: int, give_up_after: int = GIVE_UP_AFTER) -> bool:
    """True when a message has been failing transiently for `give_up_after` seconds or more."""
    return message.first_failed_at is not None and now - message.first_failed_at >= give_up_after
