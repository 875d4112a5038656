"""The adapters every contract test runs against: a SQLite file and a fresh database on a real PostgreSQL server
(the `postgres_url` fixture; skipped only where the server is not installed, required in CI)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.adapters.store import open_storage
from bot.core.storage import Storage


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a fresh database of each adapter lives: a SQLite file, or a new database on a real PostgreSQL."""
    if request.param == "sqlite":
        return str(tmp_path / "contract.db")
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def storage(target: str) -> Iterator[Storage]:
    """A fresh, migrated store of each adapter."""
    store = open_storage(target)
    yield store
    store.database.close()
