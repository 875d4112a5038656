"""What a Slack listener gets: the services it may call and who is asking."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bot.core.ports import Clock
from bot.services.audit import AuditLog
from bot.services.notifications import Notifications

if TYPE_CHECKING:
    from bot.services.access import AccessService
    from bot.services.granting import GrantingService
    from bot.services.linking import LinkingService


@dataclass(frozen=True)
class Reply:
    """An ephemeral answer: fallback text plus optional Block Kit blocks."""

    text: str
    blocks: list[dict[str, Any]] | None = None


@dataclass
class SlackDeps:
    """Services and settings the Slack listeners use (built by wiring.py)."""

    audit: AuditLog
    notifications: Notifications
    clock: Clock
    command: str = "/access"
    admins: frozenset[str] = frozenset()
    linking: LinkingService | None = None
    access: AccessService | None = None
    granting: GrantingService | None = None
    extras: dict[str, Any] = field(default_factory=dict)


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
