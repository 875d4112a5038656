"""The Slack emulator: Web API on loopback, the request signer and Slack's request bodies (one import for tests)."""

from accessbot_emulators.slack.emulator import SlackEmulator
from accessbot_emulators.slack.payloads import (
    app_home_opened_event,
    block_actions_payload,
    block_suggestion_payload,
    interaction_body,
    json_body,
    slash_command_body,
    view_submission_payload,
)
from accessbot_emulators.slack.records import Call, DirectoryUser, Ephemeral, Message, ResponsePost, UploadedFile, View
from accessbot_emulators.slack.signing import SlackSigner
from accessbot_emulators.slack.workspace import (
    APP_ID,
    APP_TOKEN,
    BOT_ID,
    BOT_TOKEN,
    BOT_USER_ID,
    TEAM_DOMAIN,
    TEAM_ID,
    VERIFICATION_TOKEN,
    dm_channel_id,
)

__all__ = [
    "APP_ID",
    "APP_TOKEN",
    "BOT_ID",
    "BOT_TOKEN",
    "BOT_USER_ID",
    "TEAM_DOMAIN",
    "TEAM_ID",
    "VERIFICATION_TOKEN",
    "Call",
    "DirectoryUser",
    "Ephemeral",
    "Message",
    "ResponsePost",
    "SlackEmulator",
    "SlackSigner",
    "UploadedFile",
    "View",
    "app_home_opened_event",
    "block_actions_payload",
    "block_suggestion_payload",
    "dm_channel_id",
    "interaction_body",
    "json_body",
    "slash_command_body",
    "view_submission_payload",
]
