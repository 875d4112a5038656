"""The listener groups the app registers, in order (each module has `register(app, deps)`)."""

from __future__ import annotations

from typing import Any

from bot.slack import access, grants, identity

MODULES: list[Any] = [identity, access, grants]
