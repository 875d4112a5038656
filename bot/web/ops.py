"""Operator endpoints: /healthz (database and migrations, job role) and /metrics (Prometheus text)."""

from __future__ import annotations

import json
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from bot.core.ports import Store
from bot.services.metrics import METRICS


class RunningBot(Protocol):
    """What these handlers read from the running bot (`app.state.components`)."""

    @property
    def store(self) -> Store:
        """The database."""
        ...

    @property
    def role(self) -> str:
        """`leader`, `standby` or `off`: whether this process runs the scheduled jobs."""
        ...


def _running(request: Request) -> RunningBot:
    running: RunningBot = request.app.state.components
    return running


async def healthz(request: Request) -> Response:
    """200 when the database answers and migrations are current, else 503; says whether this process runs jobs."""
    components = _running(request)
    status: dict[str, Any] = {"status": "ok", "jobs": components.role}
    try:
        components.store.ping()
        pending = components.store.pending_migrations()
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
    extra = {"accessbot_outbox_pending": float(components.store.outbox_pending_count())}
    body = METRICS.render(components.store.grant_counts(), extra)
    return PlainTextResponse(body, media_type="text/plain; version=0.0.4")
