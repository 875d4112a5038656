"""The emulator's knobs (page size, latency, failures, the Rancher version it plays) and the version's profile.

Behaviours that differ between Rancher versions ask `settings.profile.has(...)` (profiles.py lists each with its
source); `version_tuple` stays for callers that only need (major, minor).
"""

from __future__ import annotations

from dataclasses import dataclass

from accessbot_emulators.rancher.profiles import Profile, parse_version, profile_for


@dataclass
class EmulatorSettings:
    """Knobs of the emulator; every field can be changed at run time through `/_emulator/settings`.

    `server_version` is the Rancher version played (2.7 to 2.15, e.g. `v2.9.3`); changing it re-seeds the estate,
    as a server of that version would hold it.
    """

    page_size: int = 1000
    latency: float = 0.0
    failure_rate: float = 0.0
    failure_status: int = 503
    server_version: str = "v2.14.4"
    fill_delay: float = 0.0
    finalizer_delay: float | None = 0.0
    seed: int = 0
    ignored_filters: tuple[str, ...] = ()  # filter fields to treat as unknown (beyond what the version lacks)
    advertised_url: str | None = None  # Rancher's `server-url` when it differs from how clients reach it (a proxy)

    @property
    def profile(self) -> Profile:
        """The behaviours of the version played."""
        return profile_for(self.server_version)


def version_tuple(version: str) -> tuple[int, int]:
    """`v2.14.4` → (2, 14); unparsable → (2, 14)."""
    try:
        return parse_version(version)
    except ValueError:
        return (2, 14)
