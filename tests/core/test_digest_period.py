"""The digest's weekly period in a timezone and its due time."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from bot.core.digest_period import fire_time, last_complete_week, week_of

BERLIN = ZoneInfo("Europe/Berlin")


def _ts(*args: int, tz: ZoneInfo = BERLIN) -> int:
    return int(datetime(*args, tzinfo=tz).timestamp())  # type: ignore[misc]


@pytest.mark.parametrize(
    ("moment", "key", "hours"),
    [
        (_ts(2026, 3, 31, 12), "2026-W14", 168),
        (_ts(2026, 3, 29, 12), "2026-W13", 167),  # the week DST starts has 167 hours
        (_ts(2026, 10, 25, 23), "2026-W43", 169),  # the week DST ends has 169 hours
        (_ts(2027, 1, 1, 0), "2026-W53", 168),  # ISO year, not calendar year
    ],
)
def test_week_of_is_the_local_iso_week(moment: int, key: str, hours: int) -> None:
    """A moment falls in the ISO week of its local date; the period runs local Monday to Monday midnight."""
    period = week_of(moment, "Europe/Berlin")
    assert period.key == key
    assert (period.end - period.start) // 3600 == hours
    start = datetime.fromtimestamp(period.start, BERLIN)
    assert (start.weekday(), start.hour, start.minute) == (0, 0, 0)


def test_last_complete_week_is_the_week_before() -> None:
    """On Monday morning the digest reports the ISO week that just ended."""
    period = last_complete_week(_ts(2026, 3, 30, 9, 5), "Europe/Berlin")
    assert period.key == "2026-W13"
    assert period.end == _ts(2026, 3, 30, 0, 0)


def test_fire_time_is_the_configured_local_weekday_and_time() -> None:
    """`wednesday 14:30` in Berlin is that week's Wednesday 14:30 local time, also after a DST change."""
    assert fire_time(_ts(2026, 3, 30, 8), "Europe/Berlin", "wednesday", "14:30") == _ts(2026, 4, 1, 14, 30)
    assert fire_time(_ts(2026, 10, 26, 8), "Europe/Berlin", "monday", "09:00") == _ts(2026, 10, 26, 9, 0)
