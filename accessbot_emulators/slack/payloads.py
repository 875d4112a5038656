"""Request bodies exactly as Slack sends them: slash commands, block actions, view submissions and events."""

from __future__ import annotations

import copy
import json
import secrets
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from accessbot_emulators.slack.workspace import (
    APP_ID,
    BOT_ID,
    BOT_USER_ID,
    TEAM_DOMAIN,
    TEAM_ID,
    VERIFICATION_TOKEN,
    dm_channel_id,
    new_trigger_id,
    now_ts,
)


def slash_command_body(  # noqa: PLR0917 - the six fields every test sets, in Slack's order
    command: str,
    text: str,
    user_id: str,
    team_id: str,
    channel_id: str,
    response_url: str,
    *,
    trigger_id: str | None = None,
    user_name: str | None = None,
    channel_name: str | None = None,
    team_domain: str = TEAM_DOMAIN,
    api_app_id: str = APP_ID,
    token: str = VERIFICATION_TOKEN,
    is_enterprise_install: bool = False,
) -> str:
    """Return a slash command's form body with exactly the fields, in the order, Slack sends them."""
    if channel_name is None:
        channel_name = "directmessage" if channel_id.startswith("D") else "general"
    fields = [
        ("token", token),
        ("team_id", team_id),
        ("team_domain", team_domain),
        ("channel_id", channel_id),
        ("channel_name", channel_name),
        ("user_id", user_id),
        ("user_name", user_name if user_name is not None else user_id.lower()),
        ("command", command),
        ("text", text),
        ("api_app_id", api_app_id),
        ("is_enterprise_install", "true" if is_enterprise_install else "false"),
        ("response_url", response_url),
        ("trigger_id", trigger_id or new_trigger_id()),
    ]
    return urlencode(fields)


def interaction_body(payload: Mapping[str, Any]) -> str:
    """Return an interaction's form body: one `payload` field holding the JSON."""
    return urlencode({"payload": json.dumps(payload, separators=(",", ":"))})


def json_body(envelope: Mapping[str, Any]) -> str:
    """Return an Events API body (JSON) for `envelope`."""
    return json.dumps(envelope, separators=(",", ":"))


def _user_object(user_id: str, user_name: str | None, team_id: str) -> dict[str, Any]:
    name = user_name if user_name is not None else user_id.lower()
    return {"id": user_id, "username": name, "name": name, "team_id": team_id}


def block_actions_payload(
    user_id: str,
    action_id: str,
    value: str,
    *,
    response_url: str | None = None,
    channel_id: str | None = None,
    message: Mapping[str, Any] | None = None,
    message_ts: str | None = None,
    is_ephemeral: bool = False,
    view: Mapping[str, Any] | None = None,
    block_id: str = "actions",
    button_text: str = "Button",
    action: Mapping[str, Any] | None = None,
    state_values: Mapping[str, Any] | None = None,
    team_id: str = TEAM_ID,
    team_domain: str = TEAM_DOMAIN,
    user_name: str | None = None,
    channel_name: str | None = None,
    trigger_id: str | None = None,
    api_app_id: str = APP_ID,
    token: str = VERIFICATION_TOKEN,
) -> dict[str, Any]:
    """Return a block_actions payload for a button click on a message (give response_url) or in a view."""
    clicked: dict[str, Any] = {
        "type": "button",
        "action_id": action_id,
        "block_id": block_id,
        "text": {"type": "plain_text", "text": button_text, "emoji": True},
        "value": value,
        "action_ts": now_ts(),
    }
    if action is not None:
        clicked.update(action)
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": _user_object(user_id, user_name, team_id),
        "api_app_id": api_app_id,
        "token": token,
        "trigger_id": trigger_id or new_trigger_id(),
        "team": {"id": team_id, "domain": team_domain},
        "enterprise": None,
        "is_enterprise_install": False,
    }
    if view is not None:
        payload["container"] = {"type": "view", "view_id": view.get("id")}
        payload["view"] = copy.deepcopy(dict(view))
        payload["state"] = {"values": copy.deepcopy(dict(state_values or {}))}
    else:
        if response_url is None or channel_id is None:
            raise ValueError("a message button click needs response_url and channel_id")
        ts = message_ts or (str(message["ts"]) if message is not None and "ts" in message else now_ts())
        payload["container"] = {
            "type": "message",
            "message_ts": ts,
            "channel_id": channel_id,
            "is_ephemeral": is_ephemeral,
        }
        if channel_name is None:
            channel_name = "directmessage" if channel_id.startswith("D") else "general"
        payload["channel"] = {"id": channel_id, "name": channel_name}
        if not is_ephemeral:
            payload["message"] = (
                copy.deepcopy(dict(message))
                if message is not None
                else {"type": "message", "ts": ts, "text": "", "bot_id": BOT_ID, "user": BOT_USER_ID}
            )
        payload["state"] = {"values": copy.deepcopy(dict(state_values or {}))}
        payload["response_url"] = response_url
    payload["actions"] = [clicked]
    return payload


def block_suggestion_payload(
    user_id: str,
    action_id: str,
    value: str,
    *,
    view_id: str = "V0EMU000001",
    block_id: str = "target_role",
    team_id: str = TEAM_ID,
    team_domain: str = TEAM_DOMAIN,
    api_app_id: str = APP_ID,
    token: str = VERIFICATION_TOKEN,
) -> dict[str, Any]:
    """Return the payload Slack sends to the Options Load URL while someone types into an external select.

    Shape from docs.slack.dev/reference/interaction-payloads/block_suggestion-payload (type, user, container,
    api_app_id, token, action_id, block_id, value, team); the app must answer with `options` or `option_groups`.
    """
    return {
        "type": "block_suggestion",
        "user": _user_object(user_id, None, team_id),
        "container": {"type": "view", "view_id": view_id},
        "api_app_id": api_app_id,
        "token": token,
        "action_id": action_id,
        "block_id": block_id,
        "value": value,
        "team": {"id": team_id, "domain": team_domain},
        "enterprise": None,
        "is_enterprise_install": False,
        "action_ts": now_ts(),
    }


def _state_values(values: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Expand `{block: {action: "text"}}` into Slack's `{block: {action: {type, value}}}`; dicts pass through."""
    out: dict[str, dict[str, Any]] = {}
    for block_id, actions in values.items():
        out[block_id] = {}
        for action_id, value in actions.items():
            if isinstance(value, str) or value is None:
                out[block_id][action_id] = {"type": "plain_text_input", "value": value}
            else:
                out[block_id][action_id] = copy.deepcopy(value)
    return out


def view_submission_payload(
    user_id: str,
    callback_id: str,
    values: Mapping[str, Mapping[str, Any]],
    *,
    private_metadata: str = "",
    view_id: str | None = None,
    blocks: list[Any] | None = None,
    title: str = "Request access",
    external_id: str = "",
    response_urls: list[Mapping[str, Any]] | None = None,
    team_id: str = TEAM_ID,
    team_domain: str = TEAM_DOMAIN,
    user_name: str | None = None,
    trigger_id: str | None = None,
    api_app_id: str = APP_ID,
    token: str = VERIFICATION_TOKEN,
) -> dict[str, Any]:
    """Return a view_submission payload; `values` maps block_id → action_id → text (or a full state dict)."""
    view_id = view_id or "V" + secrets.token_hex(5).upper()
    return {
        "type": "view_submission",
        "team": {"id": team_id, "domain": team_domain},
        "user": _user_object(user_id, user_name, team_id),
        "api_app_id": api_app_id,
        "token": token,
        "trigger_id": trigger_id or new_trigger_id(),
        "view": {
            "id": view_id,
            "team_id": team_id,
            "type": "modal",
            "blocks": copy.deepcopy(blocks or []),
            "private_metadata": private_metadata,
            "callback_id": callback_id,
            "state": {"values": _state_values(values)},
            "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
            "title": {"type": "plain_text", "text": title, "emoji": True},
            "clear_on_close": False,
            "notify_on_close": False,
            "close": {"type": "plain_text", "text": "Cancel", "emoji": True},
            "submit": {"type": "plain_text", "text": "Submit", "emoji": True},
            "previous_view_id": None,
            "root_view_id": view_id,
            "app_id": api_app_id,
            "external_id": external_id,
            "app_installed_team_id": team_id,
            "bot_id": BOT_ID,
        },
        "response_urls": [dict(r) for r in response_urls or []],
        "is_enterprise_install": False,
        "enterprise": None,
    }


def app_home_opened_event(
    user_id: str,
    *,
    channel_id: str | None = None,
    tab: str = "home",
    view: Mapping[str, Any] | None = None,
    team_id: str = TEAM_ID,
    api_app_id: str = APP_ID,
    bot_user_id: str = BOT_USER_ID,
    event_ts: str | None = None,
    event_id: str | None = None,
    event_time: int | None = None,
    token: str = VERIFICATION_TOKEN,
) -> dict[str, Any]:
    """Return the Events API envelope Slack sends when a user opens the app's Home tab."""
    event: dict[str, Any] = {
        "type": "app_home_opened",
        "user": user_id,
        "channel": channel_id or dm_channel_id(user_id),
        "tab": tab,
        "event_ts": event_ts or now_ts(),
    }
    if view is not None:
        event["view"] = copy.deepcopy(dict(view))
    return {
        "token": token,
        "team_id": team_id,
        "api_app_id": api_app_id,
        "event": event,
        "type": "event_callback",
        "event_id": event_id or "Ev" + secrets.token_hex(5).upper(),
        "event_time": event_time if event_time is not None else int(time.time()),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": team_id,
                "user_id": bot_user_id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
    }
