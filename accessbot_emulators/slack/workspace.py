"""The emulated workspace's identity: its fixed ids and tokens, and the channel and trigger ids Slack derives."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

TEAM_ID = "T0TEST0001"
TEAM_DOMAIN = "accessbot-test"
TEAM_NAME = "Access Bot Test"
APP_ID = "A0TEST0001"
BOT_ID = "B0TEST0001"
BOT_USER_ID = "U0BOT00001"
BOT_NAME = "accessbot"
BOT_TOKEN = "xoxb-test-bot-token"
APP_TOKEN = "xapp-1-A0TEST0001-test-app-token"  # app-level token for Socket Mode (apps.connections.open)
VERIFICATION_TOKEN = "legacy-verification-token"


@dataclass(frozen=True)
class Workspace:
    """Who the emulated workspace and its bot are (what auth.test answers and messages carry)."""

    bot_token: str = BOT_TOKEN
    team_id: str = TEAM_ID
    team_domain: str = TEAM_DOMAIN
    team_name: str = TEAM_NAME
    app_id: str = APP_ID
    bot_id: str = BOT_ID
    bot_user_id: str = BOT_USER_ID
    bot_name: str = BOT_NAME
    app_token: str = APP_TOKEN


def dm_channel_id(user_id: str) -> str:
    """Return the stable id of the bot's direct-message channel with `user_id` (same in emulator and builders)."""
    return "D" + hashlib.sha256(user_id.encode()).hexdigest()[:10].upper()


def mpim_channel_id(user_ids: list[str]) -> str:
    """Return a stable id for a multi-person DM with these users."""
    joined = ",".join(sorted(user_ids))
    return "G" + hashlib.sha256(joined.encode()).hexdigest()[:10].upper()


def new_trigger_id(issued_at: float | None = None) -> str:
    """Return a trigger id shaped like Slack's (`<digits>.<digits>.<hex32>`), its first part the issue time in ms.

    The emulator reads the time back to refuse triggers older than three seconds, as Slack does.
    """
    issued_ms = int((time.time() if issued_at is None else issued_at) * 1000)
    return f"{issued_ms}.{secrets.randbelow(10**11)}.{secrets.token_hex(16)}"


def trigger_issued_at(trigger_id: str) -> float | None:
    """When a trigger id made by `new_trigger_id` was issued (epoch seconds), None for foreign ones."""
    head = trigger_id.split(".", 1)[0]
    if not head.isdigit() or len(head) != 13:
        return None
    return int(head) / 1000


def now_ts() -> str:
    """Return the current time as a Slack event timestamp string."""
    return f"{time.time():.6f}"
