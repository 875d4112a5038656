"""Health and metrics endpoints of the running server."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest

from bot.adapters.store import open_storage
from bot.adapters.store.migrations import MIGRATIONS
from bot.demo import botconfig
from bot.web.ops import GAUGES_TTL
from tests import attacker, factories
from tests.conftest import FakeClock, RunningBot

METRICS_TOKEN = "metrics-token-7f3a9c1e5b2d4680"


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


def _gauge(bot: RunningBot, name: str, headers: dict[str, str] | None = None) -> float:
    response = bot.http.get(f"{bot.url}/metrics", headers=headers or {})
    assert response.status_code == 200
    return float(next(line.split()[-1] for line in response.text.splitlines() if line.startswith(f"{name} ")))


def test_metrics_answers_only_the_bearer_token_when_one_is_configured(make_bot: Any) -> None:
    """With server.metrics_token set, /metrics is 401 (with WWW-Authenticate, no token echoed) unless it is given."""
    with make_bot(overrides={"server": {"metrics_token": METRICS_TOKEN}}) as bot:
        refused = [
            {},
            {"Authorization": "Bearer metrics-token-wrong-0000000"},
            {"Authorization": f"Basic {METRICS_TOKEN}"},
            {"Authorization": f"Bearer {METRICS_TOKEN}x"},
            {"Authorization": "Bearer " + "A" * 8000},
        ]
        for headers in refused:
            response = bot.http.get(f"{bot.url}/metrics", headers=headers)
            assert response.status_code == 401, headers
            assert response.headers["www-authenticate"].startswith("Bearer")
            assert METRICS_TOKEN not in response.text
            assert "accessbot_grants" not in response.text
        assert _gauge(bot, "accessbot_outbox_pending", {"Authorization": f"Bearer {METRICS_TOKEN}"}) >= 0
        assert bot.http.get(f"{bot.url}/healthz").status_code == 200  # health checks need no token
        text = bot.http.get(f"{bot.url}/metrics", headers={"Authorization": f"bearer {METRICS_TOKEN}"}).text
        assert 'accessbot_http_requests_total{route="/metrics",status="401"} 5' in text


def test_hostile_authorization_headers_get_a_401_within_budget(make_bot: Any) -> None:
    """Hostile input: odd bytes, other schemes and 60 KB tokens are refused (401, or uvicorn's 4xx for an oversized
    header), never a 500; 300 refusals stay within a generous time budget and read nothing from the database."""
    clock = FakeClock()
    with make_bot(clock=clock, run_jobs=False, overrides={"server": {"metrics_token": METRICS_TOKEN}}) as bot:
        shapes: list[bytes] = [
            b"Bearer \xff\xfe\x7f",
            b"Bearer",
            b"Bearer  " + METRICS_TOKEN.encode() + b"  x",
            b"Token " + METRICS_TOKEN.encode(),
            b"Bearer " + METRICS_TOKEN.encode() + b"\xc3",
            b"Bearer " + b"\xe2\x80\x8b" * 2000,
            b"Bearer " + b"A" * 60_000,
            b"Bearer\t" + b"\t" * 1000 + b"x",
        ]
        started = time.perf_counter()
        statuses = set()
        for round_number in range(300):
            headers = {"Authorization": shapes[round_number % len(shapes)]}
            response = bot.http.get(f"{bot.url}/metrics", headers=headers)  # type: ignore[dict-item]
            statuses.add(response.status_code)
            assert METRICS_TOKEN not in response.text
        elapsed = time.perf_counter() - started
        assert statuses <= {401, 400, 431}, statuses
        assert 401 in statuses
        assert elapsed < 15.0, f"300 refusals took {elapsed:.1f} s"
        assert bot.http.get(f"{bot.url}/healthz").status_code == 200
        storage = open_storage(bot.config.database.reveal())
        try:  # had a refusal read (and so cached) the gauges, the clock standing still would show the old count
            factories.queue(storage, "post", botconfig.CHANNELS["grants"], "after", "queued", now=clock.now())
            pending = storage.outbox.counts().get("pending", 0)
        finally:
            storage.database.close()
        assert _gauge(bot, "accessbot_outbox_pending", {"Authorization": f"Bearer {METRICS_TOKEN}"}) == pending


def test_metrics_reads_the_database_gauges_at_most_once_per_ttl(make_bot: Any) -> None:
    """Hostile input: however often /metrics is asked, its database gauges are read once per GAUGES_TTL seconds.

    At 300,000 grants one read is about 16 ms of the event loop on SQLite; uncached, 60 requests a second from
    anyone who reaches the bot would hold it all the time.
    """
    clock = FakeClock()
    with make_bot(clock=clock, run_jobs=False) as bot:
        before = _gauge(bot, "accessbot_outbox_pending")
        storage = open_storage(bot.config.database.reveal())
        try:
            factories.queue(storage, "post", botconfig.CHANNELS["grants"], "m-1", "queued", now=clock.now())
        finally:
            storage.database.close()
        for _ in range(50):
            assert _gauge(bot, "accessbot_outbox_pending") == before  # the same reading, not a new one
        clock.value += GAUGES_TTL
        assert _gauge(bot, "accessbot_outbox_pending") == before + 1


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
