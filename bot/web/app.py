"""The ASGI app uvicorn serves: its routes and its lifespan (wire the bot, start jobs, close everything)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot import wiring
from bot.config import Config, warnings
from bot.core.errors import UpstreamError
from bot.core.ports import Clock
from bot.services.metrics import METRICS
from bot.web import oauth, ops
from bot.web.limits import BodyLimit

log = logging.getLogger(__name__)

Hook = Callable[[wiring.Bot], Any]


def _components(request: Request) -> wiring.Bot:
    components: wiring.Bot = request.app.state.components
    return components


async def slack_events(request: Request) -> Response:
    """Verify the Slack signature (auditing refusals), then hand the request to Bolt."""
    components = _components(request)
    body = await request.body()
    remote = request.client.host if request.client else ""
    verdict = components.guard.check(request.headers, body, remote=remote)
    if not verdict.ok:
        METRICS.count_request("/slack/events", 401)
        return JSONResponse({"error": "invalid request"}, status_code=401)
    handler: AsyncSlackRequestHandler = request.app.state.slack_handler
    response = await handler.handle(request)
    METRICS.count_request("/slack/events", response.status_code)
    return response


def create_app(
    config: Config,
    *,
    clock: Clock | None = None,
    on_start: list[Hook] | None = None,
    socket_mode: bool = False,
    run_jobs: bool = True,
) -> Starlette:
    """The Starlette app; everything stateful is built in the lifespan; `run_jobs=False` keeps jobs off."""
    hooks = list(on_start or [])

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        for line in warnings(config):
            log.warning("configuration: %s", line)
        components = wiring.build(config, clock=clock)
        components.audit.ensure_keyed()
        app.state.components = components
        app.state.linking = components.deps.linking
        app.state.slack_handler = AsyncSlackRequestHandler(components.bolt)
        token = config.server.metrics_token
        app.state.metrics_token = token.get_secret_value() if token is not None else None
        for hook in hooks:
            result = hook(components)
            if hasattr(result, "__await__"):
                await result
        # Start-up objects (modules, schemas, clients) never die: keep them out of full collections, whose pauses
        # otherwise hit every other large /access list answer (bench/access_list.py: p50 -25..35%).
        gc.collect()
        gc.freeze()
        socket = await _start_socket_mode(components) if socket_mode else None
        if run_jobs:
            await components.scheduler.start()
        checks = asyncio.create_task(_check_policy(components))
        tallies = asyncio.create_task(_flush_tallies(components))
        log.info("accessbot ready (jobs: %s)", components.role)
        try:
            yield
        finally:
            checks.cancel()
            tallies.cancel()
            if run_jobs:
                await components.scheduler.stop()
            if socket is not None:
                await socket.close_async()
            await components.aclose()

    routes = [
        Route("/slack/events", slack_events, methods=["POST"]),
        Route("/healthz", ops.healthz, methods=["GET"]),
        Route("/metrics", ops.metrics, methods=["GET"]),
    ]
    routes += oauth.routes()
    middleware = [Middleware(BodyLimit, max_body=int(config.server.max_body))]
    return Starlette(routes=routes, lifespan=lifespan, middleware=middleware)


async def _check_policy(components: wiring.Bot) -> None:
    """Validate the policy against Rancher once at start; problems are warnings with names, never a crash."""
    try:
        for warning in await components.grants.queries.validate():
            log.warning("policy: %s", warning)
    except UpstreamError as err:
        log.warning("policy not checked against Rancher at start: %s", err)


async def _flush_tallies(components: wiring.Bot, every: float = 10.0) -> None:
    """Audit the refusal tallies of each finished minute (the first refusal of each kind is audited at once)."""
    while True:
        await asyncio.sleep(every)
        try:
            components.flush_tallies(before=components.clock.now())
        except Exception:
            log.exception("could not audit the refusal tallies")


async def _start_socket_mode(components: wiring.Bot) -> Any:
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler  # noqa: PLC0415

    token = components.config.slack.app_token
    if token is None:
        raise RuntimeError("slack.app_token is required for --socket-mode")
    handler = AsyncSocketModeHandler(components.bolt, token.get_secret_value())
    await handler.connect_async()  # type: ignore[no-untyped-call]
    return handler
