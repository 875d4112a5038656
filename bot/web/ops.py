"""Operator endpoints: /healthz (database and migrations, job role, which replica leads) and /metrics."""

from __future__ import annotations

import json
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from bot.core.storage import Storage
from bot.services.metrics import METRICS


class RunningBot(Protocol):
    """What these handlers read from the running bot (`app.state.components`)."""

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
    """Prometheus text exposition."""
    components = _running(request)
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
    body = METRICS.render(storage.grants.counts(), extra)
    return PlainTextResponse(body, media_type="text/plain; version=0.0.4")
