"""Operator subcommands of `accessbot` beyond the basics (rancher check, policy test, digest, grants)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

REGISTRARS: list[Callable[..., Any]] = []
