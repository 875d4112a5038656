"""Durations as people write them (`30s`, `15m`, `4h`, `2d`, `1h30m`) and back."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from bot.core.errors import UserError, is_number, shown

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_WORDS = {
    "sec": "s", "secs": "s", "second": "s", "seconds": "s",
    "min": "m", "mins": "m", "minute": "m", "minutes": "m",
    "hr": "h", "hrs": "h", "hour": "h", "hours": "h",
    "day": "d", "days": "d", "week": "w", "weeks": "w",
}  # fmt: skip
# One alternation of disjoint character classes, scanned once: linear in the input, no backtracking to blow up
# (the old `^(\s*[0-9]+\s*[smhdw]\s*)+$` was exponential on `1s 1s … 1s x`).
_TOKENS = re.compile(r"([0-9]+)|([a-z]+)|(\s+)|(.)", re.ASCII | re.DOTALL)
MAX_DURATION_CHARS = 64
"""Longest duration text read at all; anything longer is refused before it is parsed."""

DURATION_HINT = "write a duration like `30m`, `4h`, `1h30m` or `2d`"


def _shown(text: str) -> str:
    return shown(text, 24)


def parse_duration(text: str) -> timedelta:
    """Parse `4h`, `1h30m`, `90 minutes` into a timedelta, or raise UserError (linear time, capped length)."""
    raw = text.strip().lower()
    if len(raw) > MAX_DURATION_CHARS:
        raise UserError(
            f"`{_shown(text)}` is too long for a duration (at most {MAX_DURATION_CHARS} characters)", DURATION_HINT
        )
    seconds = 0
    number: str | None = None
    for digits, letters, _space, other in _TOKENS.findall(raw):
        if other:
            raise UserError(f"`{_shown(text)}` is not a duration", DURATION_HINT)
        if digits:
            if number is not None:
                raise UserError(f"`{_shown(text)}` is not a duration", DURATION_HINT)
            number = digits
        elif letters:
            unit = letters if letters in _UNITS else _WORDS.get(letters)
            if unit is None or number is None:
                raise UserError(f"`{_shown(text)}` is not a duration", DURATION_HINT)
            seconds += int(number) * _UNITS[unit]
            number = None
    if number is not None or not raw:
        raise UserError(f"`{_shown(text)}` is not a duration", DURATION_HINT)
    if seconds <= 0:
        raise UserError(f"`{_shown(text)}` is not a positive duration", DURATION_HINT)
    try:
        return timedelta(seconds=seconds)
    except OverflowError:
        raise UserError(f"`{_shown(text)}` is far too long a duration", DURATION_HINT) from None


def parse_duration_within(text: str, minimum: timedelta, maximum: timedelta) -> timedelta:
    """Parse a duration and check it lies in [minimum, maximum]."""
    value = parse_duration(text)
    if value < minimum:
        raise UserError(f"{format_duration(value)} is shorter than the minimum {format_duration(minimum)}")
    if value > maximum:
        raise UserError(f"{format_duration(value)} is over the {format_duration(maximum)} maximum")
    return value


def format_duration(value: timedelta) -> str:
    """Render a timedelta compactly: `2d 3h`, `1h 20m`, `45s`; at most two units."""
    total = int(value.total_seconds())
    if total <= 0:
        return "0s"
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if total >= size:
            parts.append(f"{total // size}{unit}")
            total %= size
    return " ".join(parts[:2])


def to_spec(value: timedelta) -> str:
    """Render a timedelta in the config spelling that parse_duration reads back (`1h30m`)."""
    total = int(value.total_seconds())
    out = ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if total >= size:
            out += f"{total // size}{unit}"
            total %= size
    return out or "0s"


MAX_MOMENT_CHARS = 40
"""Longest point-in-time text read at all (an ISO time with offset and fraction fits)."""
_LATEST_EPOCH = 253402300799  # 9999-12-31T23:59:59Z, the last second datetime can show


def parse_moment(text: str, now: datetime) -> int:
    """A point in time as epoch seconds: `7d` (that long before `now`), an ISO time (UTC unless it says), or epoch."""
    raw = text.strip()
    if len(raw) > MAX_MOMENT_CHARS:
        raise UserError(f"`{shown(raw)}` is too long for a time (at most {MAX_MOMENT_CHARS} characters)")
    if is_number(raw):
        value = int(raw)
        if value > _LATEST_EPOCH:
            raise UserError(f"`{shown(raw)}` is too far in the future (epoch seconds up to {_LATEST_EPOCH})")
        return value
    try:
        delta = parse_duration(raw)
    except UserError:
        pass
    else:
        try:
            return int((now - delta).timestamp())
        except (OverflowError, ValueError):
            raise UserError(f"`{shown(raw)}` reaches back before the year 1", "use something like 7d or 365d") from None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise UserError(f"`{shown(raw)}` is neither a duration (7d) nor an ISO time (2026-11-01T00:00)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())
