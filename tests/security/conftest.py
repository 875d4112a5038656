"""Shared pieces of the security tests: a clock that can be moved, and the CLI's config file for a running bot."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from bot.config import Config
from bot.demo import botconfig


class MovableClock:
    """Wall-clock time plus an offset the test moves (Slack signatures made now stay valid while it is 0)."""

    def __init__(self, offset: int = 0) -> None:
        self.offset = offset

    def now(self) -> int:
        """Current time, shifted by the offset."""
        return int(time.time()) + self.offset


def cli_config(
    path: Path,
    config: Config,
    *,
    audit_keys: list[str] | None = None,
    database: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Path:
    """Write a config file the `accessbot` CLI reads: the bot's database and keys (or `database`, `audit_keys`)."""
    security: dict[str, object] = {
        "token_encryption_keys": [key.get_secret_value() for key in config.security.token_encryption_keys],
    }
    keys = audit_keys if audit_keys is not None else [k.get_secret_value() for k in config.security.audit_keys]
    if keys:
        security["audit_keys"] = keys
    data = botconfig.config_data(
        database=database or config.database.reveal(),
        public_url=config.public_url,
        slack_api_url=config.slack.api_url,
        oidc_issuer=config.oidc.issuer,
        rancher_url=config.rancher.url,
        rancher_token=config.rancher.token.get_secret_value(),
        overrides=overrides,
    )
    data["security"] = security
    path.write_text(yaml.safe_dump(data))
    return path
