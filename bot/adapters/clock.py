"""The operating system's clock, as the Clock port."""

from __future__ import annotations

import time


class SystemClock:
    """Reads wall-clock time in epoch seconds (time-machine can move it in tests)."""

    def now(self) -> int:
        """Current UTC time in whole epoch seconds."""
        return int(time.time())
