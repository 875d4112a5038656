"""`/access list` (and the bare command once linked) and the App Home tab: what you can access, and why."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.core import commands, principals
from bot.core.errors import BotError, NotLinked, UpstreamError
from bot.core.model import GrantState, Identity, PrincipalSet
from bot.services.access import AccessReport
from bot.slack import access_blocks, messages
from bot.slack.commands import handles
from bot.slack.context import Caller, Reply, SlackDeps

log = logging.getLogger(__name__)

_ACTIVE = (GrantState.ACTIVE, GrantState.ACTIVATING)
_PENDING = (GrantState.REQUESTED, GrantState.APPROVED)


def principals_of(deps: SlackDeps, identity: Identity) -> PrincipalSet:
    """The Rancher principals a linked identity maps to, per `rancher.auth_provider` and templates."""
    extras = deps.extras
    return principals.principal_set(
        str(extras.get("rancher_auth_provider", "genericoidc")),
        identity.subject,
        identity.groups,
        user_template=extras.get("rancher_user_principal_template"),
        group_template=extras.get("rancher_group_principal_template"),
    )


async def report_for(deps: SlackDeps, slack_user: str, target: str | None) -> AccessReport:
    """Rancher RBAC plus the user's own grants, for one linked Slack user."""
    if deps.linking is None or deps.access is None:
        raise NotLinked("linking is not configured")
    identity = deps.linking.identity(slack_user)
    grants = deps.granting.list_grants(identity) if deps.granting is not None else []
    active = [g for g in grants if g.state in _ACTIVE]
    return await deps.access.describe(principals_of(deps, identity), active, deps.clock.now(), target)


@handles(commands.ListAccess)
async def on_list(deps: SlackDeps, caller: Caller, cmd: commands.ListAccess) -> Reply:
    """What the caller can access, grouped by cluster, with provenance."""
    report = await report_for(deps, caller.user_id, cmd.target)
    message = access_blocks.access_list_message(report)
    return Reply(str(message["text"]), list(message["blocks"]))


async def home_view(deps: SlackDeps, slack_user: str) -> dict[str, Any]:
    """The App Home view for a user: grants, pending requests and access; a link prompt when unlinked."""
    now = deps.clock.now()
    if deps.linking is None or not deps.linking.is_linked(slack_user):
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
    grants = deps.granting.list_grants(slack_user) if deps.granting is not None else []
    active = [g for g in grants if g.state in _ACTIVE]
    pending = [g for g in grants if g.state in _PENDING]
    try:
        report: AccessReport | None = await report_for(deps, slack_user, None)
        problem = ""
    except UpstreamError as err:
        report, problem = None, messages.upstream_error(err).removeprefix(":x: ")
    return access_blocks.app_home_view(report, active=active, pending=pending, now=now, problem=problem)


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
