"""The Slack app manifest for a configuration: command, scopes, request URLs, App Home."""

from __future__ import annotations

from typing import Any

from bot.config import Config

BOT_SCOPES = (
    "commands",  # the slash command
    "chat:write",  # channel posts, approvals, updates in place
    "im:write",  # open DMs to requesters and holders
    "users:read",  # users.info for the account-takeover check
    "users:read.email",  # the profile email compared with the IdP email
    "files:write",  # the weekly digest CSV
)


def build_manifest(config: Config) -> dict[str, Any]:
    """A manifest dict ready to dump as YAML and paste into api.slack.com/apps."""
    events_url = f"{config.public_url}/slack/events"
    socket = config.slack.app_token is not None
    command: dict[str, Any] = {
        "command": config.slack.command,
        "description": "Access to Rancher clusters on your company identity",
        "usage_hint": "list | request TARGET ROLE for 2h because … | help",
        "should_escape": False,
    }
    interactivity: dict[str, Any] = {"is_enabled": True}
    event_subscriptions: dict[str, Any] = {"bot_events": ["app_home_opened"]}
    if not socket:
        command["url"] = events_url
        interactivity["request_url"] = events_url
        event_subscriptions["request_url"] = events_url
    return {
        "display_information": {
            "name": "Access Bot",
            "description": "Time-boxed, identity-based access to Rancher clusters",
        },
        "features": {
            "app_home": {
                "home_tab_enabled": True,
                "messages_tab_enabled": True,
                "messages_tab_read_only_enabled": True,
            },
            "bot_user": {"display_name": "accessbot", "always_online": True},
            "slash_commands": [command],
        },
        "oauth_config": {"scopes": {"bot": list(BOT_SCOPES)}},
        "settings": {
            "event_subscriptions": event_subscriptions,
            "interactivity": interactivity,
            "org_deploy_enabled": False,
            "socket_mode_enabled": socket,
            "token_rotation_enabled": False,
        },
    }
