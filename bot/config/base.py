"""What every config section is built from: the frozen model base, the `Duration` field type and the URL check."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict

from bot.core.durations import parse_duration
from bot.core.errors import UserError


def _duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not value > 0:  # also NaN
            raise ValueError("must be positive (a duration like 30s, 15m, 4h or 2d)")
        try:
            return timedelta(seconds=value)
        except OverflowError:
            raise ValueError("is far too long (a duration like 30s, 15m, 4h or 2d)") from None
    if not isinstance(value, str):
        raise ValueError("must be a duration like 30s, 15m, 4h or 2d")
    try:
        return parse_duration(value)
    except UserError as err:
        raise ValueError(f"{err.message} (a duration like 30s, 15m, 4h or 2d)") from None


Duration = Annotated[timedelta, BeforeValidator(_duration)]
"""A positive duration written as `30s`, `15m`, `4h`, `2d` (or plain seconds)."""


class FrozenModel(BaseModel):
    """Base of every config model: immutable once validated, unknown keys refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def require_http_url(value: str) -> None:
    """Raise ValueError unless `value` is an absolute http(s) URL."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an http(s) URL like https://host.example.com")
