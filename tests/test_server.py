"""Health and metrics endpoints of the running server."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from bot.adapters.store.migrations import MIGRATIONS
from tests import attacker
from tests.conftest import RunningBot


def test_healthz_is_ok_with_current_migrations(bot: RunningBot) -> None:
    """/healthz answers 200 with the database reachable and migrations current."""
    response = bot.http.get(f"{bot.url}/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["database"] == "ok"
    assert body["migrations"] == "current"


def test_healthz_names_this_replica_and_the_one_that_leads(bot: RunningBot) -> None:
    """/healthz says which replica answered and which replica holds the jobs lease (here: itself)."""
    body = bot.http.get(f"{bot.url}/healthz").json()
    assert body["jobs"] == "leader"
    assert body["replica"]
    assert body["leader"] == body["replica"]


def test_healthz_is_503_when_migrations_are_missing(bot: RunningBot) -> None:
    """/healthz answers 503 when the schema is behind (a migration record was removed)."""
    attacker.execute(bot.config.database.reveal(), "delete from schema_migrations")
    response = bot.http.get(f"{bot.url}/healthz")
    assert response.status_code == 503
    assert response.json()["migrations"] == f"{len(MIGRATIONS)} pending"


def test_metrics_exposes_prometheus_text(bot: RunningBot) -> None:
    """/metrics serves Prometheus text with request counters and grant gauges."""
    bot.http.get(f"{bot.url}/healthz")
    response = bot.http.get(f"{bot.url}/metrics")
    assert response.status_code == 200
    assert "# TYPE accessbot_http_requests_total counter" in response.text
    assert 'accessbot_http_requests_total{route="/healthz",status="200"}' in response.text


def test_policy_is_checked_against_rancher_at_start(
    make_bot: Any, rancher: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """An unknown role template in a rule is a warning naming it at start, not a crash."""
    from tests.conftest import BOT_KEY, wait_until

    rules = [
        {
            "name": "typo",
            "groups": ["engineering"],
            "clusters": ["dev-*"],
            "roles": ["cluster-membr"],
            "max_duration": "1h",
        }
    ]
    with (
        caplog.at_level(logging.WARNING),
        make_bot(rancher_url=rancher.url, rancher_token=BOT_KEY, overrides={"policy": {"rules": rules}}) as bot,
    ):
        assert bot.http.get(f"{bot.url}/healthz").status_code == 200
        wait_until(lambda: "cluster-membr" in caplog.text)
    assert "policy:" in caplog.text
