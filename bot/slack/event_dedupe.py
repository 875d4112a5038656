"""Events API retries handled once: an event_id already seen is acknowledged and not run again.

Slack retries an event it thinks was not acknowledged in time (up to three times, with the headers
`X-Slack-Retry-Num` and `X-Slack-Retry-Reason`) and the retry carries the same `event_id`
(docs.slack.dev/apis/events-api, "Failure conditions" and "Retries"). The signature replay cache in front of Bolt
is a different guard (a copied request); this one makes a legitimate retry harmless.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.response import BoltResponse

REMEMBER_SECONDS = 3600  # Slack's retries come within minutes; an hour is plenty
REMEMBER_MAX = 10_000


class SeenEvents:
    """A bounded, time-limited set of event ids (oldest forgotten first)."""

    def __init__(self, *, ttl: float = REMEMBER_SECONDS, limit: int = REMEMBER_MAX) -> None:
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._ttl = ttl
        self._limit = limit

    def first_time(self, event_id: str, now: float | None = None) -> bool:
        """True the first time `event_id` is offered (within the TTL), False for a repeat."""
        moment = time.monotonic() if now is None else now
        while self._seen:
            oldest, at = next(iter(self._seen.items()))
            if moment - at <= self._ttl and len(self._seen) < self._limit:
                break
            self._seen.pop(oldest)
        if event_id in self._seen:
            return False
        self._seen[event_id] = moment
        return True


def register(app: AsyncApp, seen: SeenEvents | None = None) -> SeenEvents:
    """Acknowledge a repeated Events API delivery without running its listeners again."""
    memory = seen or SeenEvents()

    @app.middleware
    async def once_per_event(body: dict[str, Any], next: Callable[[], Awaitable[Any]]) -> Any:
        event_id = body.get("event_id") if body.get("type") == "event_callback" else None
        if isinstance(event_id, str) and event_id and not memory.first_time(event_id[:64]):
            return BoltResponse(status=200, body="")
        return await next()

    return memory
