"""The Notifier port over slack_sdk's AsyncWebClient, pointed at `slack.api_url`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.errors import PermanentUpstreamError, TransientUpstreamError

_PERMANENT = {
    "channel_not_found",
    "not_in_channel",
    "is_archived",
    "user_not_found",
    "invalid_blocks",
    "msg_too_long",
    "cant_update_message",
    "message_not_found",
    "invalid_auth",
    "not_authed",
    "account_inactive",
    "missing_scope",
}


def make_client(token: str, api_url: str) -> AsyncWebClient:
    """An AsyncWebClient on `api_url` that waits out 429s (Retry-After) twice before giving up."""
    client = AsyncWebClient(token=token, base_url=api_url)
    client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=2))
    return client


def _translate(err: SlackApiError) -> Exception:
    response = err.response
    code = str(response.get("error", "unknown_error")) if response is not None else "unknown_error"
    status = response.status_code if response is not None else None
    retry_after = response.headers.get("Retry-After", response.headers.get("retry-after")) if response else None
    message = f"Slack answered {code}"
    if status == 429 or (status is not None and status >= 500) or code not in _PERMANENT:
        error = TransientUpstreamError("Slack", message, status=status, code=code)
        if retry_after:
            error.retry_after = int(retry_after)  # type: ignore[attr-defined]
        return error
    return PermanentUpstreamError("Slack", message, status=status, code=code)


class SlackNotifier:
    """Sends messages through the Slack Web API; failures become UpstreamErrors."""

    def __init__(self, client: AsyncWebClient) -> None:
        self._client = client
        self._dm_channels: dict[str, str] = {}

    async def _call(self, method: str, **kwargs: Any) -> Any:
        try:
            return await self._client.api_call(method, json=kwargs)
        except SlackApiError as err:
            raise _translate(err) from None
        except (OSError, TimeoutError) as err:
            raise TransientUpstreamError("Slack", f"cannot reach the Slack API ({type(err).__name__})") from None

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
        channel = self._dm_channels.get(user)
        if channel is None:
            response = await self._call("conversations.open", users=user)
            channel = str(response["channel"]["id"])
            self._dm_channels[user] = channel
        return await self.post(channel, text, blocks)

    async def upload(self, channel: str, filename: str, content: bytes, comment: str) -> None:
        """Upload a file into a channel (files.getUploadURLExternal + completeUploadExternal)."""
        try:
            await self._client.files_upload_v2(
                channel=channel, filename=filename, content=content, initial_comment=comment
            )
        except SlackApiError as err:
            raise _translate(err) from None
        except (OSError, TimeoutError) as err:
            raise TransientUpstreamError("Slack", f"cannot reach the Slack API ({type(err).__name__})") from None

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
        except SlackApiError as err:
            raise _translate(err) from None
        except (OSError, TimeoutError) as err:
            raise TransientUpstreamError("Slack", f"cannot reach the Slack API ({type(err).__name__})") from None
        user_data: dict[str, Any] = response.get("user") or {}
        profile = user_data.get("profile")
        return profile if isinstance(profile, dict) else {}
