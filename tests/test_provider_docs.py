"""docs/providers/*.md: one page per preset, linked from the README, and every offboarding row names a test that
exists (so each row is backed by a test that runs)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.config.providers import PROVIDERS
from tests.services.test_offboarding_tables import TABLE

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "providers"
PAGES = [p for p in PROVIDERS if p != "generic"]
ROW_TEST = re.compile(r"`(test_\w+)(?:\[([^\]]+)\])?`(?:, `\[([^\]]+)\]`)?")


def _defined_tests() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "tests").rglob("test_*.py"):
        names |= set(re.findall(r"^(?:async )?def (test_\w+)", path.read_text(), re.M))
    return names


@pytest.mark.parametrize("provider", PAGES)
def test_every_provider_has_a_page_linked_from_the_readme(provider: str) -> None:
    """docs/providers/<provider>.md exists and the README links it."""
    assert (DOCS / f"{provider}.md").is_file()
    assert f"docs/providers/{provider}.md" in (ROOT / "README.md").read_text()


@pytest.mark.parametrize("provider", PAGES)
def test_offboarding_rows_name_tests_that_exist(provider: str) -> None:
    """Each row of the offboarding table names a test function (and, for the table, a parametrized case) that runs."""
    text = (DOCS / f"{provider}.md").read_text()
    table = text[text.index("## Offboarding") :]
    rows = [line for line in table.splitlines() if line.startswith("| ") and "test_" in line]
    assert len(rows) >= 5, provider
    defined = _defined_tests()
    cases = {f"{name}-{event}" for name, event, _ in TABLE}
    for row in rows:
        for function, case, extra in ROW_TEST.findall(row):
            assert function in defined, row
            for named in (case, extra):
                if named and function == "test_offboarding_table":
                    assert named in cases, row


@pytest.mark.parametrize("provider", PAGES)
def test_every_page_covers_the_five_offboarding_events(provider: str) -> None:
    """Disabled, deleted, removed from a group, password reset, MFA reset: each has a row."""
    table = (DOCS / f"{provider}.md").read_text().split("## Offboarding", 1)[1].lower()
    events = (("disabled", "deactivated", "suspended", "blocked"), ("deleted",), ("group",), ("password",))
    for words in (*events, ("mfa", "2-step", "otp")):
        assert any(w in table for w in words), (provider, words)
