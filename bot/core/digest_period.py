"""The digest's period: an ISO week (Monday 00:00 to Monday 00:00) in a timezone, and when its digest falls due."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

DAYS: tuple[str, ...] = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True)
class DigestPeriod:
    """One digest period: the ISO week `key` (e.g. `2026-W47`) as [start, end) epoch seconds in `timezone`."""

    key: str
    start: int
    end: int
    timezone: str

    def previous(self) -> DigestPeriod:
        """The ISO week before this one."""
        tz = ZoneInfo(self.timezone)
        start_local = datetime.fromtimestamp(self.start, tz).replace(tzinfo=None)
        return _week(start_local - timedelta(days=7), tz, self.timezone)


def _week(monday_local: datetime, tz: ZoneInfo, name: str) -> DigestPeriod:
    """The period of the ISO week starting at the naive local Monday `monday_local` (midnight)."""
    begin = datetime.combine(monday_local.date(), time(0), tzinfo=tz)
    end = datetime.combine((monday_local + timedelta(days=7)).date(), time(0), tzinfo=tz)
    year, week, _ = begin.isocalendar()
    return DigestPeriod(f"{year}-W{week:02d}", int(begin.timestamp()), int(end.timestamp()), name)


def week_of(now: int, timezone: str) -> DigestPeriod:
    """The ISO week (Monday 00:00 to Monday 00:00 local time) that contains `now`."""
    tz = ZoneInfo(timezone)
    local = datetime.fromtimestamp(now, tz)
    monday = (local - timedelta(days=local.weekday())).replace(tzinfo=None)
    return _week(monday, tz, timezone)


def last_complete_week(now: int, timezone: str) -> DigestPeriod:
    """The last ISO week that ended at or before `now` (what a digest posted at `now` reports on)."""
    return week_of(now, timezone).previous()


def fire_time(now: int, timezone: str, day: str, at: str) -> int:
    """When this ISO week's digest falls due: weekday `day` (a name) at local `at` (HH:MM), as epoch seconds."""
    tz = ZoneInfo(timezone)
    week = week_of(now, timezone)
    hour, minute = (int(part) for part in at.split(":", 1))
    monday = datetime.fromtimestamp(week.start, tz).date()
    moment = datetime.combine(monday + timedelta(days=DAYS.index(day.lower())), time(hour, minute), tzinfo=tz)
    return int(moment.timestamp())


def utc_iso(ts: int) -> str:
    """Epoch seconds as `2026-11-29T09:00:00Z`."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
