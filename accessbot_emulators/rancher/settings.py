"""The emulator's knobs (page size, latency, failures, the Rancher version it plays) and version parsing.

Behaviours that differ between Rancher versions read `server_version` through `version_tuple`; per-version
profiles can grow beside this module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass
class EmulatorSettings:
    """Knobs of the emulator; every field can be changed at run time through `/_emulator/settings`."""

    page_size: int = 1000
    latency: float = 0.0
    failure_rate: float = 0.0
    failure_status: int = 503
    server_version: str = "v2.14.4"
    fill_delay: float = 0.0
    finalizer_delay: float | None = 0.0
    seed: int = 0
    ignored_filters: tuple[str, ...] = ()  # filter fields to treat as unknown, e.g. GRB userPrincipalId before 2.11
    advertised_url: str | None = None  # Rancher's `server-url` when it differs from how clients reach it (a proxy)


def version_tuple(version: str) -> tuple[int, int]:
    """`v2.14.4` → (2, 14); unparsable → (2, 14)."""
    match = re.match(r"v?(\d+)\.(\d+)", version)
    return (int(match.group(1)), int(match.group(2))) if match else (2, 14)
