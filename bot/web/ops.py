"""Operator endpoints: /healthz (database and migrations, job role, which replica leads) and /metrics.

Both are reachable by whoever reaches the bot, so neither may cost more than a few cheap reads: /metrics reads its
database gauges at most once per GAUGES_TTL seconds however often it is asked, and answers only a bearer token when
`server.metrics_token` is set.
"""

from __future__ import annotations

import hmac
import json
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from bot.core.ports import Clock
from bot.core.storage import Storage
from bot.services.metrics import METRICS

GAUGES_TTL = 10
"""Seconds the database gauges of /metrics are reused (Prometheus scrapes every 15 s to 1 min): at 300,000 grants
one read costs about 16 ms of the event loop on SQLite, so an outsider asking many times a second must not cause it."""


class RunningBot(Protocol):
    """What these handlers read from the running bot (`app.state.components`)."""

    @property
    def clock(self) -> Clock:
        """The bot's clock (the age of the cached gauges)."""
        ...

    @property
    def storage(self) -> Storage:
        """The database's ports."""
        ...

    @property
    def role(self) -> str:
        """`leader`, `standby` or `off`: whether this process runs the scheduled jobs."""
        ...

    @property
    def replica(self) -> str:
        """This process's lease owner id (host, pid, random suffix)."""
        ...

    def leader(self) -> str | None:
        """The replica holding the jobs lease now, if any."""
        ...


def _running(request: Request) -> RunningBot:
    running: RunningBot = request.app.state.components
    return running


async def healthz(request: Request) -> Response:
    """200 when the database answers and migrations are current, else 503; says which replica this is and leads."""
    components = _running(request)
    status: dict[str, Any] = {"status": "ok", "jobs": components.role, "replica": components.replica}
    try:
        components.storage.database.ping()
        status["leader"] = components.leader()
        pending = components.storage.database.pending_migrations()
        status["database"] = "ok"
        status["migrations"] = "current" if not pending else f"{len(pending)} pending"
        if pending:
            status["status"] = "degraded"
    except Exception as err:
        status.update({"status": "unavailable", "database": f"error: {type(err).__name__}"})
    code = 200 if status["status"] == "ok" else 503
    METRICS.count_request("/healthz", code)
    return Response(json.dumps(status), status_code=code, media_type="application/json")


async def metrics(request: Request) -> Response:
    """Prometheus text exposition (401 without the bearer token when `server.metrics_token` is set)."""
    components = _running(request)
    token: str | None = getattr(request.app.state, "metrics_token", None)  # server.metrics_token, set by create_app
    if token is not None and not _bearer_matches(request, token):
        METRICS.count_request("/metrics", 401)
        return PlainTextResponse(
            "/metrics needs `Authorization: Bearer <server.metrics_token>`\n",
            status_code=401,
            headers={"WWW-Authenticate": 'Bearer realm="accessbot metrics"'},
        )
    grants, extra = _database_gauges(request, components)
    body = METRICS.render(grants, extra)
    return PlainTextResponse(body, media_type="text/plain; version=0.0.4")


def _bearer_matches(request: Request, token: str) -> bool:
    """True when the request carries `Authorization: Bearer <token>` (compared in constant time)."""
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    # Starlette decodes header bytes as latin-1: encoding back gives the bytes the client sent, whatever they were
    return hmac.compare_digest(given.strip().encode("latin-1"), token.encode("utf-8"))


Gauges = tuple[dict[str, int], dict[str, float]]


def _database_gauges(request: Request, components: RunningBot) -> Gauges:
    """Grants by state and the other database gauges, read at most once per GAUGES_TTL seconds."""
    now = components.clock.now()
    cached: tuple[int, Gauges] | None = getattr(request.app.state, "metrics_gauges", None)
    if cached is not None and 0 <= now - cached[0] < GAUGES_TTL:
        return cached[1]
    storage = components.storage
    outbox = storage.outbox.counts()
    extra = {
        "accessbot_outbox_pending": float(outbox.get("pending", 0)),
        "accessbot_outbox_parked": float(outbox.get("parked", 0)),
        "accessbot_links_unmonitored": float(storage.links.count_unmonitored()),
    }
    standing = storage.standing.latest()  # measured by the reconcile job, one sample a day (the last one wins)
    if standing is not None:
        extra["accessbot_standing_bindings"] = float(standing[1])
    gauges = (storage.grants.counts(), extra)
    request.app.state.metrics_gauges = (now, gauges)
    return gauges
