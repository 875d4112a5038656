"""The outbox's statuses: every legal move, every illegal one refused, and when to give up."""

from __future__ import annotations

import pytest

from bot.core.errors import InvalidTransition
from bot.core.model import OutboxMessage, OutboxStatus
from bot.core.outbox_lifecycle import GIVE_UP_AFTER, MOVES, OWED, TERMINAL, OutboxEvent, gives_up, move, sources

St, E = OutboxStatus, OutboxEvent


@pytest.mark.parametrize(
    ("current", "event", "expected"),
    [
        (St.PENDING, E.SENT, St.SENT),
        (St.PENDING, E.PARK, St.PARKED),
        (St.PENDING, E.DROP, St.DROPPED),
        (St.PARKED, E.RETRY, St.PENDING),
        (St.PARKED, E.DROP, St.DROPPED),
    ],
)
def test_legal_moves_lead_where_the_table_says(
    current: OutboxStatus, event: OutboxEvent, expected: OutboxStatus
) -> None:
    """Each documented move reaches its status."""
    assert move(current, event) is expected


@pytest.mark.parametrize(("current", "event"), [(s, e) for s in St for e in E if (s, e) not in MOVES])
def test_every_other_move_is_refused(current: OutboxStatus, event: OutboxEvent) -> None:
    """A sent or dropped message never moves; a pending one is never 'retried'; a parked one is never 'sent'."""
    with pytest.raises(InvalidTransition):
        move(current, event)


def test_unknown_names_are_refused_not_crashing() -> None:
    """A status or event name nobody defined is an InvalidTransition, not a ValueError."""
    with pytest.raises(InvalidTransition):
        move("lost", "retry")


def test_sources_are_the_compare_and_set_preconditions() -> None:
    """Only parked messages may be retried; pending and parked ones may be dropped."""
    assert sources(E.RETRY) == (St.PARKED,)
    assert set(sources(E.DROP)) == {St.PENDING, St.PARKED}
    assert {St.SENT, St.DROPPED} == TERMINAL
    assert {St.PENDING, St.PARKED} == OWED


@pytest.mark.parametrize(
    ("first_failed_at", "now", "expected"),
    [(None, 10**9, False), (1000, 1000 + GIVE_UP_AFTER - 1, False), (1000, 1000 + GIVE_UP_AFTER, True)],
)
def test_a_message_is_given_up_a_day_after_its_first_failure(
    first_failed_at: int | None, now: int, expected: bool
) -> None:
    """Never-failed messages are never given up; failing ones after GIVE_UP_AFTER seconds."""
    message = OutboxMessage(1, "k", "dm", "U1", {}, first_failed_at=first_failed_at)
    assert gives_up(message, now) is expected
