"""Durations as people write them: parsing, rendering, and the round trips between them."""

from __future__ import annotations

import contextlib
import time
from datetime import timedelta

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from bot.core.durations import (
    MAX_DURATION_CHARS,
    format_duration,
    parse_duration,
    parse_duration_within,
    to_spec,
)
from bot.core.errors import UserError

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
WORDS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
positive = st.integers(min_value=1, max_value=10**8).map(lambda s: timedelta(seconds=s))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("45m", timedelta(minutes=45)),
        ("4h", timedelta(hours=4)),
        ("2d", timedelta(days=2)),
        ("1w", timedelta(weeks=1)),
        ("30s", timedelta(seconds=30)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1h 30m", timedelta(hours=1, minutes=30)),
        ("2d 3h", timedelta(days=2, hours=3)),
        (" 4H ", timedelta(hours=4)),
        ("90 minutes", timedelta(minutes=90)),
        ("1 hour 30 minutes", timedelta(hours=1, minutes=30)),
        ("2 hrs", timedelta(hours=2)),
        ("1 day", timedelta(days=1)),
        ("5 secs", timedelta(seconds=5)),
    ],
)
def test_parse_reads_the_usual_spellings(text: str, expected: timedelta) -> None:
    """Compact units, combined units, spaces, capitals and unit words all parse."""
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["", "h", "4", "1.5h", "-1h", "+1h", "4h,", "1h 30", "0s", "0h0m", "4 fortnights", "ten minutes"]
)
def test_parse_refuses_what_is_not_a_positive_duration(text: str) -> None:
    """Malformed, unit-less, fractional, signed and zero durations are UserErrors with a hint."""
    with pytest.raises(UserError) as caught:
        parse_duration(text)
    assert caught.value.hint


@given(positive)
def test_to_spec_round_trips_through_parse(value: timedelta) -> None:
    """Any positive whole-second duration survives to_spec → parse_duration unchanged."""
    assert parse_duration(to_spec(value)) == value


@given(positive)
def test_format_round_trips_within_its_two_units(value: timedelta) -> None:
    """format_duration keeps at most two units; parsing it back loses less than one of the smaller unit shown."""
    text = format_duration(value)
    parts = text.split()
    assert 1 <= len(parts) <= 2
    back = parse_duration(text)
    assert back <= value
    assert value - back < timedelta(seconds=UNITS[parts[-1][-1]])


@given(st.integers(min_value=1, max_value=999), st.integers(min_value=1, max_value=999))
def test_format_is_exact_for_two_unit_values(hours: int, minutes: int) -> None:
    """A value of whole hours and minutes under a day renders and parses back exactly."""
    value = timedelta(hours=hours % 24 or 1, minutes=minutes % 60 or 1)
    assert parse_duration(format_duration(value)) == value


@given(
    st.lists(
        st.tuples(st.integers(min_value=0, max_value=10_000), st.sampled_from(sorted(UNITS))), min_size=1, max_size=4
    ),
    st.sampled_from(["", " "]),
    st.booleans(),
)
def test_parse_sums_any_combination_of_parts(parts: list[tuple[int, str]], sep: str, words: bool) -> None:
    """Any sequence of number-unit parts, compact or in words, parses to their sum (or is refused when zero)."""
    text = (" " if words else sep).join(f"{n} {WORDS[u]}" if words else f"{n}{u}" for n, u in parts)
    total = sum(n * UNITS[u] for n, u in parts)
    if total == 0:
        with pytest.raises(UserError):
            parse_duration(text)
    else:
        assert parse_duration(text) == timedelta(seconds=total)


@given(st.text(max_size=20))
@example("999999999999d")
@example("١h")
@example("4h\n30m")
@example("1h\x00")
def test_parse_never_raises_anything_but_user_error(text: str) -> None:
    """Arbitrary text either parses to a positive duration or raises UserError — never another exception."""
    try:
        value = parse_duration(text)
    except UserError:
        return
    assert value > timedelta(0)


@pytest.mark.parametrize("text", ["999999999999d", "99999999999999999999s"])
def test_parse_refuses_absurdly_large_durations_as_user_error(text: str) -> None:
    """A duration too large for timedelta is a UserError, not an OverflowError crash."""
    with pytest.raises(UserError):
        parse_duration(text)


def test_format_renders_zero_and_negative_as_zero() -> None:
    """Zero and negative values render as `0s`."""
    assert format_duration(timedelta(0)) == "0s"
    assert format_duration(timedelta(seconds=-5)) == "0s"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(days=2, hours=3, minutes=4), "2d 3h"),
        (timedelta(hours=1, minutes=20), "1h 20m"),
        (timedelta(seconds=45), "45s"),
        (timedelta(weeks=1), "7d"),
    ],
)
def test_format_shows_at_most_two_units(value: timedelta, text: str) -> None:
    """Rendering keeps the two largest units and uses days as the largest."""
    assert format_duration(value) == text


def test_parse_within_accepts_values_inside_the_bounds() -> None:
    """A duration inside [minimum, maximum] is returned."""
    assert parse_duration_within("2h", timedelta(minutes=1), timedelta(hours=4)) == timedelta(hours=2)


@pytest.mark.parametrize(
    ("text", "message"),
    [("12h", "12h is over the 4h maximum"), ("30s", "30s is shorter than the minimum 1m")],
)
def test_parse_within_names_the_bound_that_was_crossed(text: str, message: str) -> None:
    """Values outside the bounds are UserErrors naming the limit."""
    with pytest.raises(UserError) as caught:
        parse_duration_within(text, timedelta(minutes=1), timedelta(hours=4))
    assert message in caught.value.message


def _best_time(text: str, runs: int = 5) -> float:
    """The best of a few timings of parse_duration on `text` (refused or not), in seconds."""
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        with contextlib.suppress(UserError):
            parse_duration(text)
        best = min(best, time.perf_counter() - started)
    return best


@pytest.mark.parametrize(
    "text",
    [
        " ".join(["1s"] * 26) + " x",  # the command that froze the process for 9 s (issue 10)
        " ".join(["1s"] * 10_000) + " x",
        "1" * 100_000,
        "1 " * 50_000 + "hours",
        "1h" * 50_000 + "!",
    ],
)
def test_parse_refuses_backtracking_bait_in_linear_time(text: str) -> None:
    """Inputs that made the old nested pattern backtrack exponentially are refused within 10 ms."""
    assert _best_time(text) < 0.010


def test_parse_refuses_overlong_text_with_the_limit_and_without_echoing_it() -> None:
    """Text over MAX_DURATION_CHARS is refused naming the limit; the message quotes at most a short prefix."""
    text = "1h " * 40
    with pytest.raises(UserError) as caught:
        parse_duration(text)
    assert f"at most {MAX_DURATION_CHARS} characters" in caught.value.message
    assert len(caught.value.message) < 120


@settings(max_examples=300)
@given(st.text(alphabet=st.sampled_from("0123456789 smhdwx\t"), max_size=MAX_DURATION_CHARS))
def test_parse_takes_under_a_millisecond_on_any_short_unit_soup(text: str) -> None:
    """Random soups of digits, units and spaces up to the length cap parse or are refused within 10 ms."""
    assert _best_time(text, runs=5) < 0.010
