"""`slack:` the Slack app's credentials, its slash command, the channels it posts to and its admins."""

from __future__ import annotations

import re

from pydantic import Field, SecretStr, ValidationInfo, field_validator

from bot.config.base import FrozenModel, require_http_url

_CHANNEL_ID = re.compile(r"[CG][A-Z0-9]{6,20}")
_USER_ID = re.compile(r"[UW][A-Z0-9]{6,20}")
_USERGROUP_ID = re.compile(r"S[A-Z0-9]{6,20}")


class SlackChannels(FrozenModel):
    """Channel ids the bot posts to (ids, never names: chat.update and file uploads accept only ids)."""

    grants: str | None = None
    approvals: str | None = None
    security: str | None = None
    digest: str | None = None
    reviews: str | None = None  # access review progress (else the security channel)

    @field_validator("grants", "approvals", "security", "digest", "reviews")
    @classmethod
    def _channel_id(cls, value: str | None) -> str | None:
        if value is None or _CHANNEL_ID.fullmatch(value):
            return value
        if value.startswith("#") or value != value.upper():
            raise ValueError(
                "is a channel name, not an id (a channel id like C0123ABCDEF: in Slack, open the channel's "
                "details; the id is at the bottom)"
            )
        raise ValueError("is not a Slack channel id (C… or G…, letters and digits)")


class SlackConfig(FrozenModel):
    """The Slack app's credentials and where the bot talks."""

    bot_token: SecretStr
    app_token: SecretStr | None = None
    signing_secret: SecretStr | None = Field(default=None, validate_default=True)  # none needed in Socket Mode
    api_url: str = "https://slack.com/api/"
    command: str = "/access"
    channels: SlackChannels = SlackChannels()
    admins: tuple[str, ...] = ()
    approver_usergroups: dict[str, str] = Field(default_factory=dict)  # IdP approver group -> Slack user group id

    @field_validator("signing_secret")
    @classmethod
    def _http_needs_a_signing_secret(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if value is None and info.data.get("app_token") is None:
            raise ValueError("is required (or set slack.app_token and run `accessbot serve --socket-mode`)")
        return value

    @field_validator("approver_usergroups")
    @classmethod
    def _usergroup_ids(cls, value: dict[str, str]) -> dict[str, str]:
        for group, usergroup in value.items():
            if not _USERGROUP_ID.fullmatch(usergroup):
                raise ValueError(f"{group} maps to something that is not a Slack user group id (S…, like S0123ABCDEF)")
        return value

    @field_validator("admins")
    @classmethod
    def _admin_ids(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            if not _USER_ID.fullmatch(item):
                what = "an email" if "@" in item else "a name" if item.startswith("@") else "not a user id"
                raise ValueError(f"holds {what} (Slack user ids only, like U0123ABCDEF: profile → ⋮ → Copy member ID)")
        return value

    @field_validator("command")
    @classmethod
    def _command_shape(cls, value: str) -> str:
        if not re.fullmatch(r"/[a-z0-9_-]{1,31}", value):
            raise ValueError("must be a slash command like /access")
        return value

    @field_validator("api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        require_http_url(value)
        return value if value.endswith("/") else value + "/"

    @field_validator("bot_token")
    @classmethod
    def _bot_token(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().startswith("xoxb-"):
            raise ValueError("must be a bot token starting with xoxb-")
        return value

    @field_validator("app_token")
    @classmethod
    def _app_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith("xapp-"):
            raise ValueError("must be an app-level token starting with xapp-")
        return value
