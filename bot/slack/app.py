"""Builds the Bolt AsyncApp: the body-parsing fix, the error handler, the command table and each listener group."""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import parse_qsl

import slack_bolt.request.async_request as bolt_async_request
import slack_bolt.request.request as bolt_request
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.core import commands as parsed
from bot.slack import access, commands, event_dedupe, grants, identity, reviews
from bot.slack.commands import Handlers
from bot.slack.context import SlackDeps

log = logging.getLogger(__name__)
MAX_FORM_FIELDS = 100
"""A slash command has about 15 form fields; more is not Slack."""

HANDLERS: Handlers = {
    parsed.Link: identity.link,
    parsed.Unlink: identity.unlink,
    parsed.Whoami: identity.whoami,
    parsed.ListAccess: access.on_list,
    parsed.Request: grants.on_request,
    parsed.Grants: grants.on_grants,
    parsed.Revoke: grants.on_revoke,
    parsed.Extend: grants.on_extend,
    parsed.Who: grants.on_who,
    parsed.Rules: grants.on_rules,
    parsed.Review: reviews.on_review,
}
"""Every `/access` subcommand and the function that answers it (help and the bare command are built in)."""


def parse_body(body: str, content_type: str | None) -> dict[str, Any]:
    """Parse a Slack request body; JSON only when the form's single key is `payload`.

    Bolt's own parser treats any body containing the substring "payload" as an interaction
    (`/access list payload-api` would become `{}` and a 404), see libraries.md §1.8.
    """
    if not body:
        return {}
    try:
        if (content_type or "").split(";")[0].strip() == "application/json" or body.startswith("{"):
            parsed = json.loads(body)
            return parsed if isinstance(parsed, dict) else {}
        form = dict(parse_qsl(body, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS))
        if set(form) == {"payload"}:
            payload = json.loads(form["payload"])
            return payload if isinstance(payload, dict) else {}
    except (ValueError, RecursionError):
        return {}  # malformed (or absurdly nested) JSON from a signed request: nothing Bolt can route
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

    event_dedupe.register(app)
    commands.register(app, deps, HANDLERS)
    for group in (identity, access, grants, reviews):  # buttons, forms and events beyond the slash command
        group.register(app, deps)
    return app
