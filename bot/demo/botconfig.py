"""A complete bot configuration for loopback use (tests and `accessbot demo`), pointing at the emulators."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

from bot.config import Config, parse_config

SIGNING_SECRET = "dev-signing-secret-0123456789abcdef"
BOT_TOKEN = "xoxb-dev-0000-bot-token"
CLIENT_ID = "accessbot"
CLIENT_SECRET = "dev-client-secret"
CHANNELS = {"grants": "CGRANTS001", "approvals": "CAPPROVE01", "security": "CSECURITY1", "digest": "CDIGEST001"}
DEMO_POLICY: dict[str, Any] = {
    "request_ttl": "1h",
    "rules": [
        {
            "name": "dev-self-service",
            "groups": ["engineering"],
            "clusters": ["dev-*"],
            "projects": ["dev-*/*"],
            "roles": ["cluster-member", "project-member", "read-only"],
            "max_duration": "8h",
            "default_duration": "1h",
            "approval": "none",
            "max_extensions": 2,
        },
        {
            "name": "prod-with-approval",
            "groups": ["engineering"],
            "projects": ["prod-*/*", "staging-*/*"],
            "roles": ["project-member", "read-only"],
            "max_duration": "4h",
            "default_duration": "1h",
            "approval": {"groups": ["sre"], "count": 1},
            "require_reason": True,
            "max_extensions": 1,
        },
        {
            "name": "prod-break-glass",
            "groups": ["sre"],
            "clusters": ["prod-*"],
            "roles": ["cluster-owner"],
            "max_duration": "1h",
            "default_duration": "30m",
            "break_glass": True,
            "approval": {"groups": ["sre"], "count": 1},
        },
    ],
}


def _merge(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def config_data(
    *,
    database: str | Path,
    public_url: str,
    slack_api_url: str,
    oidc_issuer: str,
    rancher_url: str,
    rancher_token: str,
    encryption_key: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Configuration data (before validation) for a bot wired to loopback emulators."""
    data: dict[str, Any] = {
        "database": str(database),
        "public_url": public_url,
        "log_level": "warning",
        "server": {"host": "127.0.0.1", "port": 3000},
        "slack": {
            "bot_token": BOT_TOKEN,
            "signing_secret": SIGNING_SECRET,
            "api_url": slack_api_url,
            "command": "/access",
            "channels": dict(CHANNELS),
            "admins": ["UADMIN0001"],
        },
        "oidc": {
            "issuer": oidc_issuer,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "scopes": ["openid", "email", "profile", "groups", "offline_access"],
            "refresh_interval": "6h",
            "timeout": "5s",
        },
        "rancher": {
            "url": rancher_url,
            "token": rancher_token,
            "auth_provider": "genericoidc",
            "timeout": "5s",
            "cache_ttl": "5m",
        },
        "security": {"token_encryption_keys": [encryption_key or Fernet.generate_key().decode()]},
        "policy": copy.deepcopy(DEMO_POLICY),
        "schedule": {
            "sweep_interval": "30s",
            "reconcile_interval": "10m",
            "outbox_interval": "5s",
            "digest": {"day": "monday", "time": "09:00", "timezone": "UTC"},
        },
    }
    return _merge(data, overrides or {})


def make_config(**kwargs: Any) -> Config:
    """Validated Config from `config_data` arguments."""
    return parse_config(config_data(**kwargs))
