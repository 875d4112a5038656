"""`server:` where `accessbot serve` listens, how much it reads of a request, and who may read `/metrics`."""

from __future__ import annotations

from typing import Any

from pydantic import ByteSize, Field, SecretStr, field_validator

from bot.config.base import FrozenModel

MIN_BODY, MAX_BODY = 1024, 16 * 1024 * 1024
MIN_METRICS_TOKEN = 16


class ServerConfig(FrozenModel):
    """Where `accessbot serve` listens, the largest request body it reads, and the token `/metrics` asks for."""

    host: str = "0.0.0.0"  # noqa: S104 - a server in a container listens on all interfaces by default
    port: int = Field(3000, ge=1, le=65535)
    max_body: ByteSize = Field(ByteSize(64 * 1024))
    metrics_token: SecretStr | None = None  # when set, /metrics answers only `Authorization: Bearer <token>`

    @field_validator("max_body")
    @classmethod
    def _max_body(cls, value: ByteSize) -> ByteSize:
        if not MIN_BODY <= int(value) <= MAX_BODY:
            raise ValueError("must be between 1KiB and 16MiB (Slack's largest request is far below 64KiB)")
        return value

    @field_validator("metrics_token", mode="before")
    @classmethod
    def _unset_when_empty(cls, value: Any) -> Any:
        """`${ACCESSBOT_METRICS_TOKEN:-}` with the variable unset leaves /metrics open, as leaving the key out does."""
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("metrics_token")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_METRICS_TOKEN:
            raise ValueError(
                f"is too short (at least {MIN_METRICS_TOKEN} random characters, e.g. from `openssl rand -hex 32`)"
            )
        return value
