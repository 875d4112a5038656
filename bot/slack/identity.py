"""`/access link`, `/access unlink` and `/access whoami`: the Slack side of identity linking."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from bot.core import commands
from bot.core.durations import format_duration
from bot.core.groups import label
from bot.slack.context import Caller, Reply, SlackDeps
from bot.slack.mrkdwn import code, escape
from bot.slack.notices import RELINK_ACTION

LINK_ACTION = "identity_link_start"


def _ago(now: int, then: int | None) -> str:
    if not then:
        return "never"
    when = datetime.fromtimestamp(then, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"{format_duration(timedelta(seconds=max(0, now - then)))} ago ({when})"


async def link(deps: SlackDeps, caller: Caller, cmd: commands.Link) -> Reply:
    """Answer with a one-time button that starts the sign-in in the browser."""
    service = deps.linking
    url = service.begin_link(caller.user_id, caller.team_id)
    minutes = max(1, service.login_ttl // 60)
    if service.is_linked(caller.user_id):
        current = service.identity(caller.user_id)
        intro = (
            f"You are linked as {code(current.email or current.subject)}. Sign in again to replace that link "
            f"(the button works once, for {minutes} minutes)."
        )
    else:
        intro = (
            "Link your Slack account to your company identity: sign in with the button "
            f"(it works once, for {minutes} minutes, and only in the browser you open it in)."
        )
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": intro, "verbatim": True}},
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "action_id": LINK_ACTION,
                    "text": {"type": "plain_text", "text": "Sign in to link"},
                    "style": "primary",
                    "url": url,
                }
            ],
        },
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": "Do not share this button: it is bound to you.", "verbatim": True}],
        },
    ]
    return Reply(intro, blocks)


async def unlink(deps: SlackDeps, caller: Caller, cmd: commands.Unlink) -> Reply:
    """Remove the link; say plainly whether the IdP revocation worked."""
    result = await deps.linking.unlink(caller.user_id)
    who = code(result.identity.email or result.identity.subject)
    text = f":broken_chain: Unlinked {who}. Stored tokens are deleted and your active grants are being revoked."
    if result.idp_revoked is True:
        text += " The refresh token was revoked at the identity provider."
    elif result.idp_revoked is None:
        text += (
            f"\n:warning: Revoking the refresh token at the identity provider failed ({escape(result.idp_error)}); "
            "the security team was told. Sign out of your identity provider sessions to be sure."
        )
    return Reply(text)


async def whoami(deps: SlackDeps, caller: Caller, cmd: commands.Whoami) -> Reply:
    """Show the identity, groups, link age, last refresh and the Rancher principals it maps to."""
    info = deps.linking.whoami(caller.user_id)
    ident = info.identity
    now = deps.clock.now()
    principals = deps.principals.of(ident)
    names = ident.names
    groups = ", ".join(code(label(g, names)) for g in ident.groups) or "_none_"
    lines = [
        f"*You are* {escape(ident.name or ident.email)} ({code(ident.email or '-')})",
        f"*Subject* {code(ident.subject)} at {code(ident.issuer)}",
        f"*Groups* {groups}",
        f"*Linked* {_ago(now, ident.linked_at)}",
        f"*Last refresh* {_ago(now, ident.refreshed_at)}",
    ]
    if info.relink_by is not None:
        when = datetime.fromtimestamp(info.relink_by, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
        lines.append(
            f":key: Your identity provider asks you to sign in again: run `{deps.command} link`. Until then you "
            f"cannot request or approve; your grants stay until {when}."
        )
    elif not info.monitored:
        lines.append(
            ":warning: *Unmonitored*: your identity provider issued no refresh token, so this link is never "
            "re-checked there."
        )
    if info.refresh_failures:
        failed = info.refresh_failures
        lines.append(
            f":warning: The last {'refresh attempt' if failed == 1 else f'{failed} refresh attempts'} failed; retrying."
        )
    lines.append(f"*Rancher user principal* {code(principals.user_principal_id)}")
    if principals.user_id:
        # the id Rancher derives for a new user; an existing user may have another (`/access list` shows the real one)
        lines.append(f"*Rancher user id (derived)* {code(principals.user_id)}")
    group_ids = ", ".join(code(p) for p in principals.group_principal_ids) or "_none_"
    lines.append(f"*Rancher group principals* {group_ids}")
    text = "\n".join(lines)
    return Reply(text, [{"type": "section", "text": {"type": "mrkdwn", "text": text[:3000], "verbatim": True}}])


def register(app: AsyncApp, deps: SlackDeps) -> None:
    """Acknowledge clicks on the link button; answer the re-sign-in DM's Link button with a fresh sign-in button."""

    @app.action(LINK_ACTION)
    async def on_link_click(ack: AsyncAck) -> None:
        await ack()

    @app.action(RELINK_ACTION)
    async def on_relink_click(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        user, team = body.get("user") or {}, body.get("team") or {}
        caller = Caller(str(user.get("id", "")), str(team.get("id", "") or user.get("team_id", "")))
        reply = await link(deps, caller, commands.Link())
        await respond(text=reply.text, blocks=reply.blocks, replace_original=False)
