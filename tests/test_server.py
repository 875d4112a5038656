"""Health and metrics endpoints of the running server."""

from __future__ import annotations

import sqlite3

from tests.conftest import RunningBot


def test_healthz_is_ok_with_current_migrations(bot: RunningBot) -> None:
    """/healthz answers 200 with the database reachable and migrations current."""
    response = bot.http.get(f"{bot.url}/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["database"] == "ok"
    assert body["migrations"] == "current"


def test_healthz_is_503_when_migrations_are_missing(bot: RunningBot) -> None:
    """/healthz answers 503 when the schema is behind (a migration record was removed)."""
    conn = sqlite3.connect(bot.config.database)
    conn.execute("delete from _sqlite_migrations")
    conn.commit()
    conn.close()
    response = bot.http.get(f"{bot.url}/healthz")
    assert response.status_code == 503
    assert response.json()["migrations"] == "2 pending"


def test_metrics_exposes_prometheus_text(bot: RunningBot) -> None:
    """/metrics serves Prometheus text with request counters and grant gauges."""
    bot.http.get(f"{bot.url}/healthz")
    response = bot.http.get(f"{bot.url}/metrics")
    assert response.status_code == 200
    assert "# TYPE accessbot_http_requests_total counter" in response.text
    assert 'accessbot_http_requests_total{route="/healthz",status="200"}' in response.text
