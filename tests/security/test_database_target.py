"""Hostile `database:` values (config files, `db copy --from/--to`): pathological sizes and shapes are refused or
accepted quickly, in bounded memory, and never echoed; the SQL placeholder rewrite keeps quoted text intact."""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable

import pytest

from bot.adapters.store.sql import POSTGRES
from bot.config.database import DatabaseTarget

CPU_BUDGET_S = 1.0  # CPU seconds (not wall clock) for one call on a megabyte of input
MEMORY_BUDGET = 64 * 2**20
SECRET = "Hunter2-very-secret"


def _within_budget(call: Callable[[], object]) -> None:
    tracemalloc.start()
    started = time.process_time()
    try:
        call()
    except ValueError:
        pass
    finally:
        spent = time.process_time() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert spent < CPU_BUDGET_S, f"{spent:.2f} CPU s"
    assert peak < MEMORY_BUDGET, f"{peak / 2**20:.0f} MiB"


HOSTILE = [
    "postgresql://u:" + SECRET + "@" + "@" * 1_000_000 + "h/db",
    "postgresql://u:" + SECRET + "@h:" + "9" * 100_000 + "/db",  # beyond int()'s digit limit
    "postgresql://u:" + SECRET + "@[" + ":" * 100_000 + "]/db",
    "postgresql://u:" + SECRET + "@h/" + "%" * 1_000_000,
    "postgresql://" + "u" * 1_000_000 + ":" + SECRET + "@h/db",
    "postgresql://u:" + SECRET + "@h/db\x00",
    "postgresql://u:" + SECRET + "@h/db?" + "&".join(["host=x"] * 50_000),
    "\u202epostgresql://u:" + SECRET + "@h/db",
    "x" * 1_000_000 + "://u:" + SECRET + "@h/db",
]


@pytest.mark.parametrize("value", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_database_values_are_handled_quickly_and_never_echoed(value: str) -> None:
    """Each value is refused with a message that does not contain the password, or accepted and masked."""
    _within_budget(lambda: DatabaseTarget.parse(value))
    try:
        target = DatabaseTarget.parse(value)
    except ValueError as err:
        assert SECRET not in str(err)
        assert len(str(err)) < 300
    else:
        assert SECRET not in str(target)
        assert SECRET not in repr(target)


def test_placeholder_rewrite_of_a_huge_statement_is_bounded_and_keeps_literals() -> None:
    """`?` outside quotes becomes %s, `%` is doubled everywhere, quoted `?` stays, in bounded time and memory."""
    statement = "select '?''%' as q, " + ", ".join("?" for _ in range(200_000)) + " where x like 'a%?'"
    _within_budget(lambda: POSTGRES.prepare(statement))
    prepared = POSTGRES.prepare(statement)
    assert prepared.startswith("select '?''%%' as q, %s, %s")
    assert prepared.endswith("where x like 'a%%?'")
    assert prepared.count("%s") == 200_000
