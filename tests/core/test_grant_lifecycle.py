"""The grant state machine: every legal transition, illegal ones refused, and what is due at `now`."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core import grant_lifecycle as gl
from bot.core.errors import InvalidTransition
from bot.core.grant_lifecycle import GrantEvent as E
from bot.core.model import Approval, Grant, Target
from bot.core.model import GrantState as S
from bot.core.policy import Rule

NOW = 1_800_000_000
HOUR = 3600

LEGAL = [
    (S.REQUESTED, E.APPROVE, S.APPROVED),
    (S.REQUESTED, E.DENY, S.DENIED),
    (S.REQUESTED, E.EXPIRE_REQUEST, S.EXPIRED_REQUEST),
    (S.REQUESTED, E.ACTIVATE, S.ACTIVATING),
    (S.APPROVED, E.ACTIVATE, S.ACTIVATING),
    (S.ACTIVATING, E.ACTIVATED, S.ACTIVE),
    (S.ACTIVATING, E.FAIL, S.FAILED),
    (S.ACTIVE, E.BEGIN_REVOKE, S.REVOKING),
    (S.REVOKING, E.EXPIRED, S.EXPIRED),
    (S.REVOKING, E.REVOKED, S.REVOKED),
]

ILLEGAL = [
    (S.APPROVED, E.APPROVE),
    (S.APPROVED, E.DENY),
    (S.REQUESTED, E.ACTIVATED),
    (S.ACTIVE, E.ACTIVATE),
    (S.ACTIVE, E.EXPIRED),
    (S.ACTIVE, E.REVOKED),
    (S.REVOKING, E.ACTIVATED),
    (S.ACTIVATING, E.BEGIN_REVOKE),
    (S.DENIED, E.APPROVE),
    (S.EXPIRED, E.BEGIN_REVOKE),
    (S.REVOKED, E.ACTIVATE),
    (S.FAILED, E.ACTIVATE),
    (S.EXPIRED_REQUEST, E.APPROVE),
]


def _grant(state: S = S.ACTIVE, **changes: object) -> Grant:
    base = Grant(
        id="g-1",
        slack_user="U1",
        subject="sub-1",
        target=Target("c-1", "c-1:p-1"),
        role_id="project-member",
        duration_s=2 * HOUR,
        rule="dev",
        state=state,
        requested_at=NOW - 3 * HOUR,
        activated_at=NOW - HOUR,
        expires_at=NOW + HOUR,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def _rule(**changes: object) -> Rule:
    base = Rule(
        name="dev",
        groups=("dev",),
        roles=("project-member",),
        max_duration=timedelta(hours=4),
        default_duration=timedelta(hours=1),
        projects=("*/*",),
        max_extensions=2,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(("current", "event", "expected"), LEGAL)
def test_legal_transition_reaches_its_state(current: S, event: E, expected: S) -> None:
    """Each legal (state, event) pair leads to its documented next state."""
    assert gl.transition(current, event) is expected


@pytest.mark.parametrize(("current", "event"), ILLEGAL)
def test_illegal_transition_raises(current: S, event: E) -> None:
    """An event that is not legal in the current state raises InvalidTransition naming both."""
    with pytest.raises(InvalidTransition) as caught:
        gl.transition(current, event)
    assert caught.value.current == current.value
    assert caught.value.target == event.value


def test_transition_accepts_plain_strings() -> None:
    """State and event may be given as their stored text."""
    assert gl.transition("requested", "approve") is S.APPROVED


def test_unknown_event_text_raises_invalid_transition() -> None:
    """Unknown text is an InvalidTransition, not a ValueError."""
    with pytest.raises(InvalidTransition):
        gl.transition("active", "explode")


def test_sources_lists_states_an_event_is_legal_from() -> None:
    """`activate` is legal from requested (self-service) and approved."""
    assert set(gl.sources(E.ACTIVATE)) == {S.REQUESTED, S.APPROVED}


@pytest.mark.parametrize("state", sorted(gl.TERMINAL))
def test_terminal_states_have_no_way_out(state: S) -> None:
    """Terminal states are reported terminal and have no next state."""
    assert gl.is_terminal(state)
    assert gl.next_states(state) == frozenset()


@pytest.mark.parametrize("state", [s for s in S if s not in gl.TERMINAL])
def test_live_states_are_not_terminal(state: S) -> None:
    """Every non-terminal state has at least one way forward."""
    assert not gl.is_terminal(state)
    assert gl.next_states(state)


@given(st.sampled_from(sorted(gl.TERMINAL)), st.lists(st.sampled_from(list(E)), max_size=6))
def test_no_event_sequence_leaves_a_terminal_state(start: S, events: list[E]) -> None:
    """From a terminal state every event is refused, whatever the sequence."""
    for event in events:
        with pytest.raises(InvalidTransition):
            gl.transition(start, event)


@given(st.lists(st.sampled_from(list(E)), max_size=12))
def test_random_walks_only_visit_legal_edges_and_stop_at_terminal(events: list[E]) -> None:
    """Applying any events to a fresh request only takes table edges; once terminal, nothing moves it."""
    state = S.REQUESTED
    for event in events:
        if (state, event) in gl.TRANSITIONS:
            state = gl.transition(state, event)
        else:
            with pytest.raises(InvalidTransition):
                gl.transition(state, event)
    if gl.is_terminal(state):
        assert all((state, e) not in gl.TRANSITIONS for e in E)


@pytest.mark.parametrize(
    ("grant", "due"),
    [
        (_grant(expires_at=NOW - 1), True),
        (_grant(expires_at=NOW), True),
        (_grant(expires_at=NOW + 1), False),
        (_grant(S.REVOKING, expires_at=NOW - 1), False),
        (_grant(S.ACTIVATING, expires_at=None), False),
    ],
)
def test_due_for_expiry_only_for_active_grants_past_their_time(grant: Grant, due: bool) -> None:
    """Only an active grant whose expires_at is at or before now is due."""
    assert gl.due_for_expiry(grant, NOW) is due


@pytest.mark.parametrize(
    ("grant", "left"),
    [
        (_grant(expires_at=NOW + 600), timedelta(minutes=10)),
        (_grant(expires_at=NOW - 600), timedelta(0)),
        (_grant(S.REQUESTED, activated_at=None, expires_at=None), timedelta(hours=2)),
        (_grant(S.ACTIVATING, activated_at=None, expires_at=None), timedelta(hours=2)),
        (_grant(S.EXPIRED), timedelta(0)),
    ],
)
def test_time_left_counts_from_activation(grant: Grant, left: timedelta) -> None:
    """Active grants count down to expiry; before activation the full duration is left; ended grants have none."""
    assert gl.time_left(grant, NOW) == left


@pytest.mark.parametrize(
    ("grant", "rule", "extra", "ok", "why"),
    [
        (_grant(), _rule(), timedelta(hours=1), True, "3h in total"),
        (_grant(), _rule(), timedelta(hours=2), True, "4h in total"),
        (
            _grant(),
            _rule(),
            timedelta(hours=3),
            False,
            "5h in total is over the 4h maximum of rule dev (at most 2h more)",
        ),
        (_grant(extensions=2), _rule(), timedelta(minutes=10), False, "already extended 2 times"),
        (_grant(extensions=1), _rule(max_extensions=1), timedelta(minutes=10), False, "already extended once"),
        (_grant(), _rule(max_extensions=0), timedelta(minutes=10), False, "allows no extensions"),
        (_grant(S.REVOKING), _rule(), timedelta(minutes=10), False, "only active grants"),
        (_grant(expires_at=NOW), _rule(), timedelta(minutes=10), False, "already run out"),
        (_grant(), _rule(), timedelta(0), False, "positive"),
    ],
)
def test_can_extend_within_caps_and_explains_refusals(
    grant: Grant, rule: Rule, extra: timedelta, ok: bool, why: str
) -> None:
    """Extensions stay within max_duration from activation and max_extensions, each refusal saying which."""
    allowed, reason = gl.can_extend(grant, rule, extra, NOW)
    assert allowed is ok
    assert why in reason


@pytest.mark.parametrize(
    ("grant", "is_stuck"),
    [
        (_grant(S.ACTIVATING, updated_at=NOW - 301), True),
        (_grant(S.ACTIVATING, updated_at=NOW - 300), False),
        (_grant(S.REVOKING, updated_at=NOW - 1000), True),
        (_grant(S.ACTIVE, updated_at=NOW - 10_000), False),
        (_grant(S.ACTIVATING, activated_at=None, expires_at=None, requested_at=NOW - 1000), True),
        (
            _grant(
                S.ACTIVATING,
                activated_at=None,
                expires_at=None,
                requested_at=NOW - 1000,
                approvals=(Approval("U2", "approve", NOW - 10),),
            ),
            False,
        ),
        (_grant(S.REVOKING, expires_at=NOW - 100), False),
        (_grant(S.REVOKING, expires_at=NOW - 400), True),
    ],
)
def test_stuck_spots_in_flight_grants_older_than_grace(grant: Grant, is_stuck: bool) -> None:
    """Activating/revoking grants past the grace (from updated_at, else the latest stamp) are stuck."""
    assert gl.stuck(grant, NOW, timedelta(minutes=5)) is is_stuck


@pytest.mark.parametrize(
    ("grant", "warn"),
    [
        (_grant(expires_at=NOW + 600), True),
        (_grant(expires_at=NOW + 60), True),
        (_grant(expires_at=NOW + 601), False),
        (_grant(expires_at=NOW), False),
        (_grant(S.REVOKING, expires_at=NOW + 60), False),
    ],
)
def test_expiry_warning_within_the_lead_time(grant: Grant, warn: bool) -> None:
    """The warning is due in the last 10 minutes of an active grant, not before and not after expiry."""
    assert gl.needs_expiry_warning(grant, NOW) is warn


@pytest.mark.parametrize(
    ("grant", "expired"),
    [
        (_grant(S.REQUESTED, request_expires_at=NOW), True),
        (_grant(S.REQUESTED, request_expires_at=NOW + 1), False),
        (_grant(S.REQUESTED, request_expires_at=None), False),
        (_grant(S.APPROVED, request_expires_at=NOW - 1), False),
    ],
)
def test_request_expired_only_for_undecided_requests(grant: Grant, expired: bool) -> None:
    """Only a still-requested grant past request_expires_at has expired."""
    assert gl.request_expired(grant, NOW) is expired
