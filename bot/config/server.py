"""`server:` where `accessbot serve` listens, and how much it reads of a request."""

from __future__ import annotations

from pydantic import ByteSize, Field, field_validator

from bot.config.base import FrozenModel

MIN_BODY, MAX_BODY = 1024, 16 * 1024 * 1024


class ServerConfig(FrozenModel):
    """Where `accessbot serve` listens, and the largest request body it reads."""

    host: str = "0.0.0.0"  # noqa: S104 - a server in a container listens on all interfaces by default
    port: int = Field(3000, ge=1, le=65535)
    max_body: ByteSize = Field(ByteSize(64 * 1024))

    @field_validator("max_body")
    @classmethod
    def _max_body(cls, value: ByteSize) -> ByteSize:
        if not MIN_BODY <= int(value) <= MAX_BODY:
            raise ValueError("must be between 1KiB and 16MiB (Slack's largest request is far below 64KiB)")
        return value
