"""`review:` access reviews: who reviews when no approver rule does, self-attestation, applying, deadlines."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import Field, field_validator

from bot.config.base import Duration, FrozenModel
from bot.core.review_commands import MAX_DUE, MIN_DUE

OnTimeout = Literal["keep", "remove", "convert"]


class ReviewConfig(FrozenModel):
    """How access review campaigns run (`accessbot review …`, `/access review …`, `schedule.reviews`)."""

    reviewer_groups: tuple[str, ...] = ()  # review bindings no approver rule governs (self-service rules, no rule)
    self_attestation: bool = False  # may a reviewer decide a binding they hold themselves (recorded as such)
    auto_apply: bool = False  # apply the decisions when a campaign closes (else `accessbot review apply NAME`)
    due: Duration = timedelta(days=14)  # a campaign's deadline when `--due` is not given
    on_timeout: OnTimeout = "keep"  # what happens to bindings nobody decided by the deadline
    remind_before: tuple[Duration, ...] = (timedelta(days=3), timedelta(days=1))  # reminders before the deadline
    max_items: int = Field(50_000, ge=1, le=1_000_000)  # the most bindings one campaign may hold

    @field_validator("due")
    @classmethod
    def _due(cls, value: timedelta) -> timedelta:
        return due_in_range(value)

    @field_validator("remind_before")
    @classmethod
    def _reminders(cls, value: tuple[timedelta, ...]) -> tuple[timedelta, ...]:
        if len(value) > 5:
            raise ValueError("at most 5 reminders (like [3d, 1d])")
        return tuple(sorted(set(value), reverse=True))


def due_in_range(value: timedelta) -> timedelta:
    """A review's deadline between 1h and 365d (as `review start … due` accepts)."""
    if not MIN_DUE <= value <= MAX_DUE:
        raise ValueError("must be between 1h and 365d")
    return value
