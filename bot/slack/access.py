"""`/access list` (and the bare command once linked) and the App Home tab: what you can access, and why."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.core import commands
from bot.core.errors import BotError, UpstreamError
from bot.services.access import AccessReport
from bot.slack import access_blocks, messages, review_blocks
from bot.slack.context import Caller, Reply, SlackDeps

log = logging.getLogger(__name__)


async def on_list(deps: SlackDeps, caller: Caller, cmd: commands.ListAccess) -> Reply:
    """What the caller can access, grouped by cluster, with provenance."""
    report = await deps.access.report(caller.user_id, cmd.target)
    message = access_blocks.access_list_message(report)
    return Reply(str(message["text"]), list(message["blocks"]))


async def home_view(deps: SlackDeps, slack_user: str) -> dict[str, Any]:
    """The App Home view for a user: approvals and reviews awaiting them, grants, pending requests and access; a
    link prompt when unlinked."""
    now = deps.clock.now()
    if not deps.linking.is_linked(slack_user):
        return {
            "type": "home",
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": "Rancher access"}},
                {
                    "type": "section",
                    "text": {
                        "type": "mrkdwn",
                        "text": f"You are not linked yet. Send `{deps.command} link` to link your company identity.",
                    },
                },
            ],
        }
    active, pending = deps.access.granted(slack_user), deps.access.pending(slack_user)
    try:
        report: AccessReport | None = await deps.access.report(slack_user)
        problem = ""
    except UpstreamError as err:
        report, problem = None, messages.upstream_error(err).removeprefix(":x: ")
    waiting = deps.grants.queries.awaiting(slack_user)
    awaiting = [await deps.grants.directory.facts_of(g) for g in waiting[: access_blocks.MAX_HOME_REQUESTS]]
    to_review = deps.reviews.directory.awaiting(slack_user)
    first = deps.reviews.directory.reviewer_view(to_review[0][0], slack_user) if to_review else None
    return access_blocks.app_home_view(
        report,
        active=active,
        pending=pending,
        now=now,
        problem=problem,
        awaiting=awaiting,
        awaiting_total=len(waiting),
        reviews=review_blocks.home_section(to_review, first),
    )


def register(app: AsyncApp, deps: SlackDeps) -> None:
    """Publish the App Home tab whenever a user opens it."""

    @app.event("app_home_opened")
    async def on_home(event: dict[str, Any], client: Any) -> None:
        if event.get("tab", "home") != "home":
            return
        user = str(event.get("user", ""))
        try:
            view = await home_view(deps, user)
            await client.views_publish(user_id=user, view=view)
        except BotError:
            log.warning("could not build the App Home for %s", user, exc_info=True)
        except Exception:
            log.exception("App Home failed for %s", user)
