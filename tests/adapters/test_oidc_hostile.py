"""Hostile answers to the new parsing paths: token endpoint refusals and directory pages of pathological size and
shape are read within time and memory budgets and never raise anything but the core's errors."""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable

import pytest

from bot.adapters.oidc.claims import ClaimNames, build_login, groups_value, parse_refusal
from bot.core.token_refusals import RefusalKind, classify


def _budget(fn: Callable[[], None], runs: int = 3) -> tuple[float, int]:
    """Best-of-`runs` seconds and the peak bytes allocated by `fn()`."""
    best, peak = float("inf"), 0
    for _ in range(runs):
        tracemalloc.start()
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
        peak = max(peak, tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    return best, peak


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 200_000,  # nesting far past the JSON parser's recursion limit
        b'{"error": "invalid_grant", "error_description": "' + b"A" * 5_000_000 + b'"}',
        b'{"error": ' + b'"x",' * 100_000 + b'"y"}',
        b"\xff\xfe" * 100_000,
        b'{"error": "invalid_grant", "error_codes": [' + b"50076," * 100_000 + b"1]}",
    ],
)
def test_token_endpoint_refusals_of_any_shape_are_bounded(body: bytes) -> None:
    """Parsed from at most 64 KiB, fields cut short, classified; 0.5 s and 8 MB at most (generous, shared machine)."""

    def run() -> None:
        refusal = parse_refusal(400, body)
        classify(refusal)
        assert len(refusal.description) <= 512
        assert len(refusal.codes) <= 10

    seconds, peak = _budget(run)
    assert seconds < 0.5
    assert peak < 8 * 1024 * 1024


def test_a_truncated_error_body_reads_as_no_error_code() -> None:
    """A body cut inside a string is not JSON: the refusal has no error code, so it is not about the grant."""
    refusal = parse_refusal(400, b'{"error": "invalid_grant", "error_description": "' + b"A" * 100_000)
    assert (refusal.error, classify(refusal)) == ("", None)


def test_entra_codes_in_error_codes_must_be_integers() -> None:
    """Strings, booleans and floats in `error_codes` are ignored (a boolean is not a code)."""
    refusal = parse_refusal(400, b'{"error": "invalid_grant", "error_codes": ["50076", true, 70043.0, 50079]}')
    assert refusal.codes == (50079,)
    assert classify(refusal) is RefusalKind.REAUTH


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"a": 1}, None),
        (42, None),
        ([1, None, "", "eng", "eng", {"x": 1}], ("eng",)),
        ("", ()),
    ],
)
def test_groups_claim_of_any_shape_is_groups_or_unknown(value: object, expected: tuple[str, ...] | None) -> None:
    """A groups claim that is not a list of strings (or one string) is "cannot tell", never a crash."""
    assert groups_value(value) == expected


def test_claims_with_hostile_types_build_a_login() -> None:
    """Numbers, lists and objects where strings belong become empty strings; the login is still built."""
    login = build_login(
        issuer="https://idp",
        claims={"sub": "s", "email": ["x"], "name": {"a": 1}, "oid": 7, "groups": "one", "_claim_names": "junk"},
        names=ClaimNames(principal="oid"),
        refresh_token=None,
        access_token_expires_at=None,
    )
    assert (login.email, login.name, login.principal_subject, login.groups) == ("", "", "7", ("one",))
    assert not login.groups_overage
