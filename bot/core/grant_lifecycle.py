"""The grant state machine: legal transitions, and what is due for a grant at `now`.

States and events (terminal states are DENIED, WITHDRAWN, EXPIRED_REQUEST, EXPIRED, REVOKED and FAILED)::

    requested --approve--> approved --activate--> activating --activated--> active --begin_revoke--> revoking
    requested --activate--> activating                 (self-service and break-glass: no approval step)
    requested --deny--> denied          requested --expire_request--> expired_request
    requested --withdraw--> withdrawn   (closed undecided: by the requester, an admin, offboarding, lost groups)
    activating --fail--> failed
    revoking --expired--> expired       (the grant ran out)
    revoking --revoked--> revoked       (a person ended it early)

A request needing several approvals stays `requested` until the last one arrives; only then does the service
fire `approve`. Retrying a step (a Rancher call after a crash) never needs a transition: the grant stays in
`activating` or `revoking` until the step succeeds, and `stuck()` tells the reconciler which ones to finish.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from bot.core.durations import format_duration
from bot.core.errors import InvalidTransition
from bot.core.model import Grant, GrantState
from bot.core.policy import Rule


class GrantEvent(StrEnum):
    """Something that moves a grant from one state to the next."""

    APPROVE = "approve"
    DENY = "deny"
    WITHDRAW = "withdraw"
    EXPIRE_REQUEST = "expire_request"
    ACTIVATE = "activate"
    ACTIVATED = "activated"
    FAIL = "fail"
    BEGIN_REVOKE = "begin_revoke"
    EXPIRED = "expired"
    REVOKED = "revoked"


S = GrantState
E = GrantEvent

TRANSITIONS: dict[tuple[GrantState, GrantEvent], GrantState] = {
    (S.REQUESTED, E.APPROVE): S.APPROVED,
    (S.REQUESTED, E.DENY): S.DENIED,
    (S.REQUESTED, E.WITHDRAW): S.WITHDRAWN,
    (S.REQUESTED, E.EXPIRE_REQUEST): S.EXPIRED_REQUEST,
    (S.REQUESTED, E.ACTIVATE): S.ACTIVATING,
    (S.APPROVED, E.ACTIVATE): S.ACTIVATING,
    (S.ACTIVATING, E.ACTIVATED): S.ACTIVE,
    (S.ACTIVATING, E.FAIL): S.FAILED,
    (S.ACTIVE, E.BEGIN_REVOKE): S.REVOKING,
    (S.REVOKING, E.EXPIRED): S.EXPIRED,
    (S.REVOKING, E.REVOKED): S.REVOKED,
}
"""Every legal (state, event) → next state; anything else raises InvalidTransition."""

# --- the one definition of every set of states ----------------------------------------------------------

TERMINAL: frozenset[GrantState] = frozenset({S.DENIED, S.WITHDRAWN, S.EXPIRED_REQUEST, S.EXPIRED, S.REVOKED, S.FAILED})
"""States a grant never leaves."""

OPEN: frozenset[GrantState] = frozenset(GrantState) - TERMINAL
"""States of a grant that is not over yet (requested … revoking): one per holder, role and target at a time."""

OPEN_REQUEST: frozenset[GrantState] = frozenset({S.REQUESTED, S.APPROVED})
"""States of a request that has not reached Rancher yet."""

IN_FLIGHT: frozenset[GrantState] = frozenset({S.ACTIVATING, S.REVOKING})
"""States in which a Rancher call is (or was, before a crash) under way."""

BOUND: frozenset[GrantState] = frozenset({S.ACTIVATING, S.ACTIVE, S.REVOKING})
"""States in which the grant's Rancher binding exists or may exist."""

GRANTED: frozenset[GrantState] = frozenset({S.ACTIVATING, S.ACTIVE})
"""States shown to the holder as access they have (or are about to have)."""


def transition(current: GrantState | str, event: GrantEvent | str) -> GrantState:
    """The state after `event`, or raise InvalidTransition when the event is not legal in `current`."""
    try:
        state = GrantState(current)
        ev = GrantEvent(event)
    except ValueError:
        raise InvalidTransition(str(current), str(event)) from None
    nxt = TRANSITIONS.get((state, ev))
    if nxt is None:
        raise InvalidTransition(state.value, ev.value)
    return nxt


def sources(event: GrantEvent | str) -> tuple[GrantState, ...]:
    """The states from which `event` is legal (the `expected` states of a compare-and-set update)."""
    ev = GrantEvent(event)
    return tuple(state for (state, e) in TRANSITIONS if e is ev)


def next_states(current: GrantState) -> frozenset[GrantState]:
    """Every state reachable from `current` in one step."""
    return frozenset(nxt for (state, _), nxt in TRANSITIONS.items() if state is current)


def is_terminal(state: GrantState) -> bool:
    """True when the grant can never change state again."""
    return state in TERMINAL


def due_for_expiry(grant: Grant, now: int) -> bool:
    """True when an active grant's time is up."""
    return grant.state is S.ACTIVE and grant.expires_at is not None and grant.expires_at <= now


def time_left(grant: Grant, now: int) -> timedelta:
    """Time until expiry: the remaining time when active, the full duration before activation, zero after."""
    if grant.state in (S.ACTIVE, S.REVOKING) and grant.expires_at is not None:
        return timedelta(seconds=max(0, grant.expires_at - now))
    if grant.state in OPEN_REQUEST or grant.state is S.ACTIVATING:
        return timedelta(seconds=grant.duration_s)
    return timedelta(0)


def can_extend(grant: Grant, rule: Rule, extra: timedelta, now: int) -> tuple[bool, str]:
    """Whether `extra` may be added: active, not expired, within max_extensions and max_duration from activation."""
    if grant.state is not S.ACTIVE or grant.expires_at is None or grant.activated_at is None:
        return False, f"grant {grant.id} is {grant.state.value}; only active grants can be extended"
    if grant.expires_at <= now:
        return False, f"grant {grant.id} has already run out"
    if extra <= timedelta(0):
        return False, "the extension must be a positive duration"
    if rule.max_extensions <= 0:
        return False, f"rule {rule.name} allows no extensions"
    if grant.extensions >= rule.max_extensions:
        times = "once" if rule.max_extensions == 1 else f"{rule.max_extensions} times"
        return False, f"grant {grant.id} was already extended {times}, the maximum of rule {rule.name}"
    held = grant.expires_at - grant.activated_at
    total = timedelta(seconds=held) + extra
    if total > rule.max_duration:
        room = rule.max_duration - timedelta(seconds=held)
        more = f" (at most {format_duration(room)} more)" if room > timedelta(0) else ""
        return False, (
            f"{format_duration(total)} in total is over the {format_duration(rule.max_duration)} maximum "
            f"of rule {rule.name}{more}"
        )
    left = rule.max_extensions - grant.extensions - 1
    return True, f"extends to {format_duration(total)} in total; {left} extension{'' if left == 1 else 's'} left"


def _state_since(grant: Grant) -> int:
    """When the grant entered its current state, as far as the value tells (updated_at, else the latest stamp)."""
    if grant.updated_at is not None:
        return grant.updated_at
    stamps = [grant.requested_at, *(a.at for a in grant.approvals)]
    if grant.state is S.REVOKING:
        stamps += [s for s in (grant.activated_at, grant.ended_at) if s is not None]
        if grant.expires_at is not None and grant.ended_at is None:
            stamps.append(grant.expires_at)
    return max(stamps)


def stuck(grant: Grant, now: int, grace: timedelta) -> bool:
    """True for a grant left `activating` or `revoking` for longer than `grace` (the reconciler finishes it)."""
    if grant.state not in IN_FLIGHT:
        return False
    return now - _state_since(grant) > grace.total_seconds()


def needs_expiry_warning(grant: Grant, now: int, lead: timedelta = timedelta(minutes=10)) -> bool:
    """True when an active grant expires within `lead` but has not expired (the caller remembers it warned)."""
    if grant.state is not S.ACTIVE or grant.expires_at is None:
        return False
    return grant.expires_at - lead.total_seconds() <= now < grant.expires_at


def request_expired(grant: Grant, now: int) -> bool:
    """True when an undecided request has passed its request_expires_at."""
    return grant.state is S.REQUESTED and grant.request_expires_at is not None and grant.request_expires_at <= now


# --- extension requests ---------------------------------------------------------------------------------


class ExtensionState(StrEnum):
    """Lifecycle of one extension of a grant (number N = the grant's extension count when it was asked).

    pending --approve--> approved --apply--> applied;  pending --deny--> denied.
    A self-service extension is recorded `approved` by its holder and applied at once.
    """

    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    APPLIED = "applied"


EXTENSION_MOVES: dict[ExtensionState, frozenset[ExtensionState]] = {
    ExtensionState.PENDING: frozenset({ExtensionState.APPROVED, ExtensionState.DENIED}),
    ExtensionState.APPROVED: frozenset({ExtensionState.APPLIED}),
    ExtensionState.DENIED: frozenset(),
    ExtensionState.APPLIED: frozenset(),
}
"""Legal moves of an extension request; the store turns them into compare-and-set preconditions."""


def extension_sources(target: ExtensionState) -> tuple[ExtensionState, ...]:
    """The states an extension may be in to move to `target` (the `expected` of a compare-and-set)."""
    return tuple(state for state, nexts in EXTENSION_MOVES.items() if target in nexts)


@dataclass(frozen=True)
class ExtensionRequest:
    """One request to extend a grant by `extra_s`, with the approvals it collected."""

    grant_id: str
    number: int
    extra_s: int
    requested_at: int
    requested_by: str
    state: ExtensionState = ExtensionState.PENDING
    approvers: tuple[str, ...] = ()
    decided_at: int | None = None
    decided_by: str = ""
