"""The Slack app manifest: slash command, scopes, request URLs (or Socket Mode), App Home."""

from __future__ import annotations

from typing import Any

BOT_SCOPES = (
    "commands",  # the slash command
    "chat:write",  # channel posts, approvals, updates in place
    "im:write",  # open DMs to requesters and holders
    "users:read",  # users.info for the account-takeover check
    "users:read.email",  # the profile email compared with the IdP email
    "files:write",  # the weekly digest CSV
)

WEB_API_SCOPES: dict[str, tuple[str, ...]] = {
    "auth.test": (),  # Bolt's authorization at start; no scope (docs.slack.dev/reference/methods/auth.test)
    "chat.postMessage": ("chat:write",),  # docs.slack.dev/reference/methods/chat.postMessage
    "chat.update": ("chat:write",),  # docs.slack.dev/reference/methods/chat.update
    "conversations.open": ("im:write",),  # a 1:1 DM (docs.slack.dev/reference/methods/conversations.open)
    "users.info": ("users:read", "users:read.email"),  # the profile email needs both (…/methods/users.info)
    "views.open": (),  # "No scope required" (docs.slack.dev/reference/methods/views.open)
    "views.update": (),  # "No scope required" (…/methods/views.update)
    "views.publish": (),  # "No scope required" (…/methods/views.publish)
    "files.getUploadURLExternal": ("files:write",),  # …/methods/files.getUploadURLExternal
    "files.completeUploadExternal": ("files:write",),  # …/methods/files.completeUploadExternal
}
"""Every Web API method the bot calls with its bot token, and the bot scopes each needs (tests check the code)."""


def build_manifest(*, public_url: str, command: str, socket_mode: bool) -> dict[str, Any]:
    """A manifest dict ready to dump as YAML and paste into api.slack.com/apps.

    `public_url` is where Slack reaches the bot (no trailing slash), `command` the slash command, and
    `socket_mode` whether events arrive over Socket Mode (then no request URLs are written).
    """
    events_url = f"{public_url}/slack/events"
    slash: dict[str, Any] = {
        "command": command,
        "description": "Access to Rancher clusters on your company identity",
        "usage_hint": "list | request TARGET ROLE for 2h because … | help",
        "should_escape": False,
    }
    interactivity: dict[str, Any] = {"is_enabled": True}
    event_subscriptions: dict[str, Any] = {"bot_events": ["app_home_opened"]}
    if not socket_mode:
        slash["url"] = events_url
        interactivity["request_url"] = events_url
        # the request form's external select loads its options here (docs.slack.dev/reference/app-manifest:
        # settings.interactivity.message_menu_options_url, "the interactive Options Load URL")
        interactivity["message_menu_options_url"] = events_url
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
            "slash_commands": [slash],
        },
        "oauth_config": {"scopes": {"bot": list(BOT_SCOPES)}},
        "settings": {
            "event_subscriptions": event_subscriptions,
            "interactivity": interactivity,
            "org_deploy_enabled": False,
            "socket_mode_enabled": socket_mode,
            "token_rotation_enabled": False,
        },
    }
