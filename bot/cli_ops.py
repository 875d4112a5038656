"""Operator subcommands of `accessbot` beyond the basics (rancher check, policy test, digest, grants)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.cli_digest import register_digest
from bot.cli_grants import register_grants, register_policy
from bot.cli_rancher import register_rancher

REGISTRARS: list[Callable[..., Any]] = [register_rancher, register_policy, register_grants, register_digest]
