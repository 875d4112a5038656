"""`rancher:` the Rancher server, the API key the bot uses, and how bindings are labelled."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator

from bot.config.base import Duration, FrozenModel, require_http_url


class RancherConfig(FrozenModel):
    """The Rancher server and the API key the bot uses."""

    url: str
    token: SecretStr
    verify_tls: bool = True
    ca_bundle: Path | None = None
    auth_provider: str = "genericoidc"
    user_principal_claim: str = "sub"
    user_principal_template: str | None = None
    group_principal_template: str | None = None
    group_format: Literal["name", "full_path"] = "name"
    timeout: Duration = timedelta(seconds=10)
    cache_ttl: Duration = timedelta(minutes=5)
    max_connections: int = Field(20, ge=1, le=500)
    page_size: int = Field(5000, ge=1, le=10000)
    filter_chunk: int = Field(100, ge=1, le=1000)
    grant_label: str = "accessbot.io/grant"

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        require_http_url(value)
        return value.rstrip("/")

    @field_validator("token")
    @classmethod
    def _token(cls, value: SecretStr) -> SecretStr:
        if not re.fullmatch(r"(token-[a-z0-9]+|ext/[a-z0-9.-]+):\S+", value.get_secret_value()):
            raise ValueError("must be a Rancher API key like token-abcde:<secret>")
        return value

    @field_validator("user_principal_claim")
    @classmethod
    def _claim(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_:/.\-]{1,200}", value):
            raise ValueError("must be a claim name like sub or oid")
        return value

    @field_validator("ca_bundle")
    @classmethod
    def _ca_bundle(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"file {value} does not exist (a PEM CA bundle)")
        return value

    @field_validator("grant_label")
    @classmethod
    def _label(cls, value: str) -> str:
        if value.startswith("cattle.io/") or "/" not in value:
            raise ValueError("must be a prefixed label key outside cattle.io/, like accessbot.io/grant")
        return value
