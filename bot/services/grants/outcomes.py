"""What the grant use cases answer: the outcome of a request, an approval click, an extension, a policy test."""

from __future__ import annotations

from dataclasses import dataclass

from bot.core.model import Grant, RoleBinding
from bot.core.notices import GrantFacts
from bot.core.policy import Decision


@dataclass(frozen=True)
class RequestOutcome:
    """What became of a request: `active`, `pending`, `activating`, `failed`, `denied`, `covered` or `duplicate`."""

    status: str
    message: str
    target: str = ""
    role: str = ""
    grant: Grant | None = None
    decision: Decision | None = None
    covering: tuple[RoleBinding, ...] = ()


@dataclass(frozen=True)
class DecisionOutcome:
    """What a click on Approve/Deny did: `approved`, `recorded` (more approvals needed), `denied` or `unchanged`."""

    status: str
    message: str
    grant: Grant
    facts: GrantFacts | None = None


@dataclass(frozen=True)
class ExtendOutcome:
    """What an extension did: `extended`, `pending` (awaiting re-approval), `denied` or `unchanged`."""

    status: str
    message: str
    grant: Grant


@dataclass(frozen=True)
class PolicyTest:
    """A policy decision explained for the command line."""

    target: str
    role: str
    groups: tuple[str, ...]
    decision: Decision
