"""Every sentence a Slack user reads in a reply; user-supplied text is escaped before it goes in."""

from __future__ import annotations

from bot.core import commands
from bot.core.errors import NotLinked, UpstreamError, UserError
from bot.slack.mrkdwn import code, escape, fallback

__all__ = ["code", "escape", "fallback"]


def help_text(command: str, topic: str = "") -> str:
    """The help reply, for all subcommands or one."""
    if topic:
        syntax, what = commands.USAGE[topic]
        return f"*{command} {syntax}*\n{what}"
    lines = [f"*{command}* — access to Rancher clusters, on your company identity", ""]
    for syntax, what in commands.USAGE.values():
        lines.append(f"• `{command} {syntax}` — {what}")
    lines.append("")
    lines.append(f"New here? Start with `{command} link`, then `{command} list` and `{command} rules`.")
    return "\n".join(lines)


def user_error(err: UserError, command: str) -> str:
    """A friendly reply for a malformed or refused command (the message may quote user text: escaped)."""
    text = f":warning: {escape(err.message)}"
    if isinstance(err, NotLinked) and not err.hint:
        return text + f"\nRun `{command} link` first to link your Slack account to your company identity."
    if err.hint:
        text += f"\n{escape(err.hint)}"
    return text


def other_workspace(command: str) -> str:
    """The answer to someone whose Slack account belongs to another workspace than the bot's."""
    return (
        f":information_source: `{command}` works for people of the workspace it is installed in, and your Slack "
        "account belongs to another one, so I cannot link it or act for it. Ask in your own workspace."
    )


def upstream_error(err: UpstreamError) -> str:
    """A short sentence for an outside system's failure, with no internals."""
    if err.service == "Rancher" and err.status and err.status < 500 and err.message:
        return f":x: Rancher refused: {escape(err.message)}"
    return f":x: {escape(err.service)} is not answering right now; nothing was changed. Please try again in a minute."


def internal_error(request_id: str) -> str:
    """The catch-all reply: no exception text, only a reference for the logs."""
    return (
        ":x: Something went wrong on my side; nothing was changed. "
        f"If it persists, tell your platform team (ref `{request_id}`)."
    )


def not_available(what: str) -> str:
    """A feature this deployment does not offer."""
    return f":information_source: {what} is not available in this deployment."
