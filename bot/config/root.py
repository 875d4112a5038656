"""The root `Config` model: the top-level keys (database, public_url, log_level) and one section per YAML key."""

from __future__ import annotations

from typing import Literal

from pydantic import field_validator

from bot.config.base import FrozenModel, require_http_url
from bot.config.database import DatabaseTarget
from bot.config.oidc import OidcConfig
from bot.config.policy import PolicyConfig
from bot.config.rancher import RancherConfig
from bot.config.review import ReviewConfig
from bot.config.schedule import ScheduleConfig
from bot.config.security import SecurityConfig
from bot.config.server import ServerConfig
from bot.config.slack import SlackConfig


class Config(FrozenModel):
    """The whole configuration."""

    database: DatabaseTarget = DatabaseTarget("./accessbot.db")
    public_url: str
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    server: ServerConfig = ServerConfig()
    slack: SlackConfig
    oidc: OidcConfig
    rancher: RancherConfig
    security: SecurityConfig
    policy: PolicyConfig = PolicyConfig()
    review: ReviewConfig = ReviewConfig()
    schedule: ScheduleConfig = ScheduleConfig()

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str) -> str:
        require_http_url(value)
        return value.rstrip("/")

    @property
    def redirect_uri(self) -> str:
        """The OAuth redirect registered at the IdP."""
        return f"{self.public_url}/oauth/callback"
