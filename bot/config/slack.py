"""`slack:` the Slack app's credentials, its slash command, the channels it posts to and its admins."""

from __future__ import annotations

import re

from pydantic import SecretStr, field_validator

from bot.config.base import FrozenModel, require_http_url


class SlackChannels(FrozenModel):
    """Channel ids the bot posts to."""

    grants: str | None = None
    approvals: str | None = None
    security: str | None = None
    digest: str | None = None


class SlackConfig(FrozenModel):
    """The Slack app's credentials and where the bot talks."""

    bot_token: SecretStr
    signing_secret: SecretStr
    app_token: SecretStr | None = None
    api_url: str = "https://slack.com/api/"
    command: str = "/access"
    channels: SlackChannels = SlackChannels()
    admins: tuple[str, ...] = ()

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
