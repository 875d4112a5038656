"""The `/access` listener: answer help and usage errors in the ack, else ack at once, run the one handler, reply."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond

from bot.core import commands
from bot.core.errors import NotLinked, UpstreamError, UserError
from bot.services.metrics import METRICS
from bot.slack import messages
from bot.slack.context import Caller, Reply, SlackDeps

log = logging.getLogger(__name__)

Handler = Callable[[SlackDeps, Caller, Any], Awaitable[Reply | None]]
Handlers = Mapping[type[Any], Handler]
"""The handler of each parsed command type (bot.slack.app holds the table)."""


async def run_command(deps: SlackDeps, handlers: Handlers, caller: Caller, text: str) -> Reply:
    """Parse and run one command; every failure becomes a friendly reply, never an exception."""
    try:
        cmd = commands.parse(text)
        if isinstance(cmd, commands.Bare):
            cmd = commands.ListAccess() if deps.linking.is_linked(caller.user_id) else commands.Help()
        if isinstance(cmd, commands.Help):
            return Reply(messages.help_text(deps.command, cmd.topic))
        handler = handlers.get(type(cmd))
        if handler is None:
            return Reply(messages.not_available(f"`{deps.command} {text.split(maxsplit=1)[0]}`"))
        reply = await handler(deps, caller, cmd)
        return reply or Reply("")
    except NotLinked as err:
        return Reply(messages.user_error(err, deps.command))
    except UserError as err:
        return Reply(messages.user_error(err, deps.command))
    except UpstreamError as err:
        log.warning("upstream failure in command (ref %s): %s", caller.request_id, err)
        return Reply(messages.upstream_error(err))
    except Exception:
        log.exception("command failed (ref %s)", caller.request_id)
        return Reply(messages.internal_error(caller.request_id))


def immediate_reply(deps: SlackDeps, handlers: Handlers, user_id: str, text: str) -> Reply | None:
    """The reply to a command that needs nothing but its text and the database (help, a usage error), else None.

    Such a reply goes in the acknowledgement itself, Slack's "immediate response" to a slash command
    (https://api.slack.com/interactivity/slash-commands#responding_to_commands): no response_url round trip, so a
    burst of them costs the event loop a fraction of the rest.
    """
    try:
        cmd = commands.parse(text)
    except UserError as err:
        return Reply(messages.user_error(err, deps.command))
    if isinstance(cmd, commands.Bare) and not deps.linking.is_linked(user_id):
        cmd = commands.Help()
    if isinstance(cmd, commands.Help):
        return Reply(messages.help_text(deps.command, cmd.topic))
    if not isinstance(cmd, commands.Bare) and type(cmd) not in handlers:
        return Reply(messages.not_available(f"`{deps.command} {text.split(maxsplit=1)[0]}`"))
    return None


def _from_another_workspace(body: dict[str, Any], context: AsyncBoltContext) -> bool:
    """True when the command comes from a workspace other than the one the bot token belongs to (auth.test)."""
    result = context.authorize_result
    ours = getattr(result, "team_id", None) if result is not None else None
    theirs = body.get("team_id")
    return bool(ours and theirs and str(theirs) != str(ours))


def register(app: AsyncApp, deps: SlackDeps, handlers: Handlers) -> None:
    """Attach the slash-command listener."""

    @app.command(deps.command)
    async def on_command(
        ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, client: Any, context: AsyncBoltContext
    ) -> None:
        if _from_another_workspace(body, context):
            await ack(text=messages.other_workspace(deps.command), response_type="ephemeral")
            return
        started = time.monotonic()
        text = str(body.get("text", ""))
        subcommand = (text.split() or ["(bare)"])[0].lower()
        metric = subcommand if subcommand in commands.USAGE else "other"
        try:
            quick = immediate_reply(deps, handlers, str(body.get("user_id", "")), text)
        except Exception:  # e.g. the database: the full path below answers with the error and a reference
            log.exception("could not answer the command in its acknowledgement")
            quick = None
        if quick is not None:
            await ack(text=messages.fallback(quick.text), blocks=quick.blocks, response_type="ephemeral")
            METRICS.observe_command(metric, time.monotonic() - started)
            return
        await ack()
        caller = Caller(
            user_id=str(body.get("user_id", "")),
            team_id=str(body.get("team_id", "")),
            channel_id=str(body.get("channel_id", "")),
            trigger_id=str(body.get("trigger_id", "")),
            response_url=str(body.get("response_url", "")),
            client=client,
            respond=respond,
        )
        reply = await run_command(deps, handlers, caller, text)
        if reply.text or reply.blocks:
            try:
                await respond(
                    text=messages.fallback(reply.text),
                    blocks=reply.blocks,
                    response_type="ephemeral",
                    replace_original=False,
                )
            except Exception:
                log.exception("could not deliver the reply (ref %s)", caller.request_id)
        METRICS.observe_command(metric, time.monotonic() - started)
