"""`schedule:` the intervals of the scheduled jobs and when the weekly digest is posted."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from bot.config.base import Duration, FrozenModel
from bot.config.review import due_in_range

_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class DigestConfig(FrozenModel):
    """When the weekly audit digest is posted."""

    day: str = "monday"
    time: str = "09:00"
    timezone: str = "UTC"

    @field_validator("day")
    @classmethod
    def _day(cls, value: str) -> str:
        day = value.strip().lower()
        matches = [d for d in _DAYS if d.startswith(day[:3])] if len(day) >= 3 else []
        if len(matches) != 1 or not (day == matches[0] or day == matches[0][:3]):
            raise ValueError("must be a day name like monday (numbers are ambiguous)")
        return matches[0]

    @field_validator("time")
    @classmethod
    def _time(cls, value: str) -> str:
        match = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", value.strip())
        if not match:
            raise ValueError("must be HH:MM in 24-hour time, like 09:00")
        return f"{int(match.group(1)):02d}:{match.group(2)}"

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("is not a known IANA timezone (like Europe/Berlin or UTC)") from None
        return value


class ScheduledReview(FrozenModel):
    """An access review started every `every` (named `<name>-<YYYY-MM-DD>`)."""

    name: str = Field(min_length=1, max_length=40, pattern=r"^[a-z0-9][a-z0-9-]*$")
    every: Duration
    roles: tuple[str, ...] = ()  # role template ids (globs); empty: every role the policy governs
    targets: tuple[str, ...] = ("*",)  # cluster globs, or CLUSTER/PROJECT globs
    subjects: Literal["users", "groups", "both"] = "both"
    due: Duration | None = None  # default review.due
    on_timeout: Literal["keep", "remove", "convert"] | None = None  # default review.on_timeout

    @field_validator("due")
    @classmethod
    def _due(cls, value: timedelta | None) -> timedelta | None:
        return due_in_range(value) if value is not None else None

    @field_validator("every")
    @classmethod
    def _every(cls, value: timedelta) -> timedelta:
        if value < timedelta(days=1):
            raise ValueError("must be at least 1d (a review every day at most)")
        return value


class ScheduleConfig(FrozenModel):
    """Intervals of the scheduled jobs."""

    sweep_interval: Duration = timedelta(seconds=30)
    reconcile_interval: Duration = timedelta(minutes=10)
    outbox_interval: Duration = timedelta(seconds=5)
    lease_ttl: Duration = timedelta(seconds=60)
    revoke_concurrency: int = Field(16, ge=1, le=256)
    overdue_alert_after: Duration = timedelta(minutes=2)
    activation_timeout: Duration = timedelta(minutes=10)
    expiry_warning: Duration = timedelta(minutes=10)
    repair_drift: bool = False
    report_untagged: bool = False
    digest: DigestConfig = DigestConfig()
    review_interval: Duration = timedelta(
        minutes=1
    )  # the review job: deadlines, reminders, progress, scheduled reviews
    reviews: tuple[ScheduledReview, ...] = ()

    @field_validator("reviews")
    @classmethod
    def _unique_reviews(cls, value: tuple[ScheduledReview, ...]) -> tuple[ScheduledReview, ...]:
        names = [r.name for r in value]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"scheduled review {name!r} is named twice (names must be unique)")
        return value
