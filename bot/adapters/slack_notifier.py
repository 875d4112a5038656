"""The Notifier port over slack_sdk's AsyncWebClient on `slack.api_url`; every failure becomes an UpstreamError.

What is worth retrying is decided here, from Slack's own documentation: HTTP 429 (with `Retry-After`) and 5xx, a
network failure, and the codes Slack lists on every method page as server-side or transient (`ratelimited`,
`service_unavailable`, `internal_error`, `fatal_error`, `request_timeout`; docs.slack.dev/reference/methods/
chat.postMessage, "Errors"). Every other code (`user_disabled` from conversations.open for a deactivated user,
`channel_not_found`, `invalid_blocks`, `token_revoked`, `restricted_action`, …) will not change on a retry: it is
permanent, and the outbox parks the message at once.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError, SlackRequestError
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.errors import PermanentUpstreamError, TransientUpstreamError, UpstreamError

TRANSIENT_CODES = frozenset({"ratelimited", "service_unavailable", "internal_error", "fatal_error", "request_timeout"})
"""Slack error codes a later retry may cure (docs.slack.dev method pages, common errors); the rest are permanent."""

MAX_RETRY_AFTER = 3600
"""Longest Retry-After honoured (seconds); a larger or malformed header counts as this."""


def make_client(token: str, api_url: str) -> AsyncWebClient:
    """An AsyncWebClient on `api_url` with slack_sdk's default connection-error retry only.

    No rate-limit retry handler: it would sleep out a 429 inside the call, holding a Slack listener past its
    three seconds or the whole outbox run; the outbox instead pauses only the lane that was limited.
    """
    return AsyncWebClient(token=token, base_url=api_url)


def _retry_after(headers: Any) -> int | None:
    value = None
    if headers is not None:
        try:
            value = headers.get("Retry-After") or headers.get("retry-after")
        except AttributeError:
            return None
    if value is None:
        return None
    try:
        seconds = float(str(value).strip())
    except ValueError:
        return MAX_RETRY_AFTER
    if not math.isfinite(seconds) or seconds < 0:
        return MAX_RETRY_AFTER
    return max(1, min(MAX_RETRY_AFTER, math.ceil(seconds)))


def translate(err: SlackApiError) -> UpstreamError:
    """A Slack API error as a transient or permanent UpstreamError (`retry_after` set on a 429)."""
    response = err.response
    status = getattr(response, "status_code", None) or getattr(response, "status", None)
    code = ""
    try:
        code = str(response.get("error") or "") if response is not None else ""
    except (AttributeError, TypeError, ValueError):  # a non-JSON answer: slack_sdk hands over the raw response
        code = ""
    status = status if isinstance(status, int) else None
    message = "Slack answered " + (code or (f"HTTP {status}" if status else "an error"))
    server_side = status is not None and status >= 500
    unexplained = not code and (status is None or status < 400)
    if status == 429 or server_side or code in TRANSIENT_CODES or unexplained:
        error = TransientUpstreamError("Slack", message, status=status, code=code)
        if status == 429 or code == "ratelimited":
            error.retry_after = _retry_after(getattr(response, "headers", None)) or 1  # type: ignore[attr-defined]
        return error
    return PermanentUpstreamError("Slack", message, status=status, code=code)


def client_failure(err: BaseException) -> UpstreamError:
    """Any other failure of a Slack call: transport problems are transient, a malformed request is permanent."""
    if isinstance(err, SlackApiError):
        return translate(err)
    if isinstance(err, SlackRequestError):  # e.g. the file upload URL answered non-200 (files_upload_v2)
        return TransientUpstreamError("Slack", f"the upload was refused ({type(err).__name__})")
    if isinstance(err, SlackClientError):
        return PermanentUpstreamError("Slack", f"the request could not be made ({type(err).__name__})")
    return TransientUpstreamError("Slack", f"cannot reach the Slack API ({type(err).__name__})")


_FAILURES = (SlackClientError, aiohttp.ClientError, OSError, TimeoutError)
"""What a slack_sdk call may raise besides our own errors: every one is translated, none escapes."""


class SlackNotifier:
    """Sends messages through the Slack Web API; failures become UpstreamErrors."""

    def __init__(self, client: AsyncWebClient) -> None:
        self._client = client
        self._dm_channels: dict[str, str] = {}

    async def _call(self, method: str, **kwargs: Any) -> Any:
        try:
            return await self._client.api_call(method, json=kwargs)
        except _FAILURES as err:
            raise client_failure(err) from None

    async def post(self, channel: str, text: str, blocks: Sequence[Mapping[str, object]] | None = None) -> str:
        """Post a message to a channel; return its ts."""
        kwargs: dict[str, Any] = {"channel": channel, "text": text, "unfurl_links": False, "unfurl_media": False}
        if blocks:
            kwargs["blocks"] = list(blocks)
        response = await self._call("chat.postMessage", **kwargs)
        return str(response.get("ts", ""))

    async def update(
        self, channel: str, ts: str, text: str, blocks: Sequence[Mapping[str, object]] | None = None
    ) -> None:
        """Edit a posted message in place."""
        kwargs: dict[str, Any] = {"channel": channel, "ts": ts, "text": text}
        kwargs["blocks"] = list(blocks or [])
        await self._call("chat.update", **kwargs)

    async def dm(self, user: str, text: str, blocks: Sequence[Mapping[str, object]] | None = None) -> str:
        """Open (or reuse) the DM channel with a user and post there."""
        return await self.post(await self.open_dm(user), text, blocks)

    def knows_dm(self, user: str) -> bool:
        """True when this process already opened the DM channel with `user`."""
        return user in self._dm_channels

    async def open_dm(self, user: str) -> str:
        """The DM channel with a user (conversations.open once per user and process)."""
        channel = self._dm_channels.get(user)
        if channel is None:
            response = await self._call("conversations.open", users=user)
            found = (response.get("channel") or {}).get("id")
            if not found:
                raise PermanentUpstreamError("Slack", "conversations.open answered without a channel")
            channel = str(found)
            self._dm_channels[user] = channel
        return channel

    async def upload(self, channel: str, filename: str, content: bytes, comment: str) -> None:
        """Upload a file into a channel (files.getUploadURLExternal, the upload URL, completeUploadExternal)."""
        try:
            await self._client.files_upload_v2(
                channel=channel, filename=filename, content=content, initial_comment=comment
            )
        except _FAILURES as err:
            raise client_failure(err) from None

    async def user_email(self, user: str) -> str | None:
        """The Slack profile email of a user (needs users:read.email)."""
        email = (await self._profile(user)).get("email")
        return str(email) if email else None

    async def user_name(self, user: str) -> str | None:
        """The profile's display name, else its real name (users.info `profile.display_name`, `real_name`)."""
        profile = await self._profile(user)
        name = profile.get("display_name") or profile.get("real_name")
        return str(name) if name else None

    async def _profile(self, user: str) -> dict[str, Any]:
        try:
            response = await self._client.users_info(user=user)
        except _FAILURES as err:
            raise client_failure(err) from None
        user_data: dict[str, Any] = response.get("user") or {}
        profile = user_data.get("profile")
        return profile if isinstance(profile, dict) else {}
