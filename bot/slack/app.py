"""Builds the Bolt AsyncApp: the body-parsing fix, the global error handler, and each listener group."""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import parse_qsl

import slack_bolt.request.async_request as bolt_async_request
import slack_bolt.request.request as bolt_request
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack import commands
from bot.slack.context import SlackDeps

log = logging.getLogger(__name__)


def parse_body(body: str, content_type: str | None) -> dict[str, Any]:
    """Parse a Slack request body; JSON only when the form's single key is `payload`.

    Bolt's own parser treats any body containing the substring "payload" as an interaction
    (`/access list payload-api` would become `{}` and a 404), see libraries.md §1.8.
    """
    if not body:
        return {}
    if (content_type or "").split(";")[0].strip() == "application/json" or body.startswith("{"):
        parsed = json.loads(body)
        return parsed if isinstance(parsed, dict) else {}
    form = dict(parse_qsl(body, keep_blank_values=True))
    if set(form) == {"payload"}:
        payload = json.loads(form["payload"])
        return payload if isinstance(payload, dict) else {}
    return form


def patch_bolt_body_parser() -> None:
    """Replace Bolt's parse_body in both request modules (idempotent)."""
    bolt_async_request.parse_body = parse_body  # type: ignore[attr-defined]
    bolt_request.parse_body = parse_body  # type: ignore[attr-defined]


def build_app(deps: SlackDeps, client: AsyncWebClient, signing_secret: str) -> AsyncApp:
    """The Bolt app with every listener group registered.

    Signatures are checked (and refusals audited) by slack.verification before Bolt sees a request,
    so Bolt's own check is off; Socket Mode requests are authenticated by the WebSocket itself.
    """
    patch_bolt_body_parser()
    app = AsyncApp(
        client=client,
        signing_secret=signing_secret,
        request_verification_enabled=False,
        ssl_check_enabled=True,
        url_verification_enabled=True,
        raise_error_for_unhandled_request=False,
        logger=logging.getLogger("slack_bolt"),
    )

    @app.error
    async def on_error(error: Exception, body: dict[str, Any]) -> None:
        log.error("unhandled error in a Slack listener: %s", type(error).__name__, exc_info=error)

    commands.register(app, deps)
    for module in _feature_modules():
        module.register(app, deps)
    return app


def _feature_modules() -> list[Any]:
    """Listener groups beyond the slash command (each has `register(app, deps)`)."""
    from bot.slack import features  # noqa: PLC0415 - imported late so each feature registers its handlers

    return list(features.MODULES)
