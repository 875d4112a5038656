"""`server:` where `accessbot serve` listens."""

from __future__ import annotations

from pydantic import Field

from bot.config.base import FrozenModel


class ServerConfig(FrozenModel):
    """Where `accessbot serve` listens."""

    host: str = "0.0.0.0"  # noqa: S104 - a server in a container listens on all interfaces by default
    port: int = Field(3000, ge=1, le=65535)
