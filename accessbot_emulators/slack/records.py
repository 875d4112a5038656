"""What the Slack emulator records, as immutable snapshots handed to tests, and the workspace's member directory."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from accessbot_emulators.slack.workspace import BOT_ID, TEAM_ID


@dataclass(frozen=True)
class Call:
    """One Web API call as the emulator received and answered it."""

    method: str
    args: Mapping[str, Any]
    headers: Mapping[str, str]
    time: float
    status: int
    response: Mapping[str, Any]

    @property
    def ok(self) -> bool:
        """Whether the emulator answered `ok: true`."""
        return bool(self.response.get("ok"))


@dataclass(frozen=True)
class Message:
    """A message posted by the bot, in its latest state after any chat.update."""

    channel: str
    ts: str
    text: str | None
    blocks: list[Any]
    thread_ts: str | None
    args: Mapping[str, Any]
    edits: int = 0
    time: float = 0.0


@dataclass(frozen=True)
class Ephemeral:
    """An ephemeral message sent with chat.postEphemeral."""

    channel: str
    user: str
    message_ts: str
    text: str | None
    blocks: list[Any]
    args: Mapping[str, Any]
    time: float = 0.0


@dataclass(frozen=True)
class ResponsePost:
    """One JSON body POSTed to a response_url served by the emulator."""

    key: str
    body: Mapping[str, Any]
    time: float

    @property
    def text(self) -> str | None:
        """The `text` field, if any."""
        value = self.body.get("text")
        return value if isinstance(value, str) else None

    @property
    def blocks(self) -> list[Any]:
        """The `blocks` field, or an empty list."""
        value = self.body.get("blocks")
        return list(value) if isinstance(value, list) else []

    @property
    def response_type(self) -> str | None:
        """`ephemeral`, `in_channel` or None when not sent (Slack then treats it as ephemeral)."""
        value = self.body.get("response_type")
        return value if isinstance(value, str) else None

    @property
    def replace_original(self) -> bool:
        """Whether the post asked to replace the original message."""
        return self.body.get("replace_original") in (True, "true")

    @property
    def delete_original(self) -> bool:
        """Whether the post asked to delete the original message."""
        return self.body.get("delete_original") in (True, "true")

    @property
    def is_ephemeral(self) -> bool:
        """Whether Slack would show this reply only to the user (the default unless `in_channel`)."""
        return self.response_type != "in_channel"


@dataclass(frozen=True)
class View:
    """A modal opened with views.open or a Home tab published with views.publish, in its latest state."""

    id: str
    kind: str
    user: str | None
    trigger_id: str | None
    view: Mapping[str, Any]
    hash: str
    updates: int = 0

    @property
    def blocks(self) -> list[Any]:
        """The view's blocks."""
        value = self.view.get("blocks")
        return list(value) if isinstance(value, list) else []


@dataclass(frozen=True)
class UploadedFile:
    """A file uploaded through files.getUploadURLExternal, the upload URL and files.completeUploadExternal."""

    id: str
    filename: str
    length: int
    content: bytes | None
    title: str | None
    channel: str | None
    initial_comment: str | None
    thread_ts: str | None
    completed: bool


@dataclass(frozen=True)
class DirectoryUser:
    """A workspace member known to users.info."""

    id: str
    email: str | None
    name: str
    real_name: str
    is_bot: bool = False
    team_id: str = TEAM_ID
    deleted: bool = False
    is_admin: bool = False
    tz: str = "Europe/Berlin"
    display_name: str = ""

    def to_slack(self) -> dict[str, Any]:
        """Return the user object exactly as users.info nests it."""
        profile: dict[str, Any] = {
            "real_name": self.real_name,
            "real_name_normalized": self.real_name,
            "display_name": self.display_name,
            "display_name_normalized": self.display_name,
            "team": self.team_id,
            "image_72": f"https://avatars.example.invalid/{self.id}_72.png",
        }
        if self.email is not None:
            profile["email"] = self.email
        if self.is_bot:
            profile["bot_id"] = BOT_ID
        return {
            "id": self.id,
            "team_id": self.team_id,
            "name": self.name,
            "deleted": self.deleted,
            "real_name": self.real_name,
            "tz": self.tz,
            "tz_label": self.tz,
            "tz_offset": 0,
            "profile": profile,
            "is_admin": self.is_admin,
            "is_owner": False,
            "is_primary_owner": False,
            "is_restricted": False,
            "is_ultra_restricted": False,
            "is_bot": self.is_bot,
            "is_app_user": False,
            "updated": 1_700_000_000,
        }
