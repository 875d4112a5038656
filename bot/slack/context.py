"""What a Slack listener gets: the services it may call and who is asking."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from bot.core.ports import Clock
from bot.core.principals import PrincipalMapping
from bot.services.access import AccessService
from bot.services.grants import GrantServices
from bot.services.linking import LinkingService
from bot.services.reviews import ReviewServices


@dataclass(frozen=True)
class Reply:
    """An ephemeral answer: fallback text plus optional Block Kit blocks."""

    text: str
    blocks: list[dict[str, Any]] | None = None


@dataclass(frozen=True)
class SlackDeps:
    """Services and settings the Slack listeners use (built once by wiring.py)."""

    linking: LinkingService
    access: AccessService
    grants: GrantServices
    reviews: ReviewServices
    principals: PrincipalMapping
    clock: Clock
    command: str = "/access"
    response_origins: tuple[str, ...] = ("https://hooks.slack.com",)
    """Where a response_url kept in a form's metadata may point (Slack's hooks host; the Web API host in tests)."""


@dataclass
class Caller:
    """Who sent a command or clicked a button, and how to answer them."""

    user_id: str
    team_id: str
    channel_id: str = ""
    trigger_id: str = ""
    response_url: str = ""
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    client: Any = None  # slack_sdk AsyncWebClient, for views.open
    respond: Callable[..., Awaitable[Any]] | None = None
