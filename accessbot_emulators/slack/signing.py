"""Signing request bodies exactly as Slack does (`v0=` HMAC-SHA256 over `v0:{timestamp}:{body}`)."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable

from accessbot_emulators.slack.payloads import (
    app_home_opened_event,
    block_actions_payload,
    interaction_body,
    json_body,
    slash_command_body,
    view_submission_payload,
)


class SlackSigner:
    """Signs request bodies exactly as Slack does (`v0=` HMAC-SHA256 over `v0:{timestamp}:{body}`)."""

    slash_command_body = staticmethod(slash_command_body)
    interaction_body = staticmethod(interaction_body)
    json_body = staticmethod(json_body)
    block_actions_payload = staticmethod(block_actions_payload)
    view_submission_payload = staticmethod(view_submission_payload)
    app_home_opened_event = staticmethod(app_home_opened_event)

    def __init__(self, signing_secret: str, clock: Callable[[], float] = time.time) -> None:
        """Keep the signing secret; `clock` gives the default timestamp."""
        self._secret = signing_secret.encode("utf-8")
        self._clock = clock

    def __repr__(self) -> str:
        """Never show the secret."""
        return "SlackSigner(signing_secret=***)"

    def signature(self, body: bytes | str, timestamp: int | str) -> str:
        """Return `v0=<hex>` for this body and timestamp."""
        raw = body.encode("utf-8") if isinstance(body, str) else body
        base = b"v0:" + str(timestamp).encode("ascii") + b":" + raw
        return "v0=" + hmac.new(self._secret, base, hashlib.sha256).hexdigest()

    def sign(self, body: bytes | str, timestamp: int | None = None) -> dict[str, str]:
        """Return the X-Slack-Request-Timestamp and X-Slack-Signature headers for `body`."""
        ts = int(self._clock()) if timestamp is None else timestamp
        return {"X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": self.signature(body, ts)}

    def headers(
        self,
        body: bytes | str,
        *,
        content_type: str = "application/x-www-form-urlencoded",
        timestamp: int | None = None,
    ) -> dict[str, str]:
        """Return the signature headers plus Content-Type (use `application/json` for Events API bodies)."""
        return {"Content-Type": content_type, **self.sign(body, timestamp)}
