"""HTTP to a directory API: bearer tokens fetched and cached, answers bounded, failures in the core's error tree.

Transport failures, 429 and 5xx are transient; any other non-2xx is permanent and carries the API's own error
code (Graph `error.code`, Google `error.status`). Pagination links must stay on the API's own host.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

from bot.core.errors import PermanentUpstreamError, TransientUpstreamError

MAX_BODY = 4 * 1024 * 1024
"""Bytes of one answer that are read; a bigger answer is refused (no directory page is that large)."""
TOKEN_MARGIN = 60
"""Seconds before an access token's expiry when a new one is fetched."""


def error_code(data: object) -> str:
    """The API's own error code: Graph `{"error": {"code"}}`, Google `{"error": {"status"}}`, OAuth `error`."""
    if not isinstance(data, dict):
        return ""
    error = data.get("error")
    if isinstance(error, dict):
        return str(error.get("code") or error.get("status") or "")[:80]
    return str(error or "")[:80]


class DirectoryHttp:
    """One API's HTTP client: JSON in and out, a cached bearer token, the service named in every error."""

    def __init__(
        self,
        service: str,
        base_url: str,
        fetch_token: Callable[[DirectoryHttp], Awaitable[tuple[str, float]]],
        *,
        timeout: float = 10.0,
        http: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.service = service
        self.base_url = base_url.rstrip("/")
        self._host = urlsplit(self.base_url).netloc
        self._fetch_token = fetch_token
        self._clock = clock
        self._owns_http = http is None
        self.http = http or httpx.AsyncClient(timeout=timeout, follow_redirects=False)
        self._token: tuple[str, float] | None = None

    async def aclose(self) -> None:
        """Close the HTTP client if this instance created it."""
        if self._owns_http:
            await self.http.aclose()

    async def send(self, method: str, url: str, **kwargs: Any) -> tuple[int, object]:
        """(status, parsed JSON or None) of one request; transport failures, 429 and 5xx raise transient errors."""
        try:
            async with self.http.stream(method, url, **kwargs) as response:
                status = response.status_code
                if status == 429 or status >= 500:
                    raise TransientUpstreamError(self.service, f"answered HTTP {status}", status=status)
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_BODY:
                        raise PermanentUpstreamError(self.service, "answer too large", status=status)
        except httpx.TimeoutException:
            raise TransientUpstreamError(self.service, "timed out") from None
        except httpx.HTTPError as err:
            raise TransientUpstreamError(self.service, f"cannot be reached ({type(err).__name__})") from None
        try:
            data: object = json.loads(bytes(body)) if body else None
        except (ValueError, UnicodeDecodeError, RecursionError):
            data = None
        return status, data

    async def token(self, *, fresh: bool = False) -> str:
        """A bearer token, reused until shortly before it expires."""
        if fresh or self._token is None or self._clock() >= self._token[1] - TOKEN_MARGIN:
            self._token = await self._fetch_token(self)
        return self._token[0]

    async def get(self, url: str, params: Mapping[str, str] | None = None) -> tuple[int, object]:
        """GET with the bearer token; one retry with a fresh token after a 401. The URL must be on this API."""
        if urlsplit(url).netloc != self._host:
            raise PermanentUpstreamError(self.service, "pagination link points at another host")
        for attempt in range(2):
            headers = {"Authorization": f"Bearer {await self.token(fresh=attempt > 0)}", "Accept": "application/json"}
            status, data = await self.send("GET", url, params=params, headers=headers)
            if status != 401:
                return status, data
        return status, data

    def refused(self, status: int, data: object, what: str) -> PermanentUpstreamError:
        """The permanent error for a non-2xx answer, with the API's own code."""
        code = error_code(data)
        return PermanentUpstreamError(
            self.service, f"{what} answered HTTP {status}" + (f" ({code})" if code else ""), status=status, code=code
        )

    async def oauth_token(self, url: str, form: Mapping[str, str]) -> tuple[str, float]:
        """(access token, expiry) from an OAuth token endpoint (RFC 6749 §5.1), or an error naming its code."""
        status, data = await self.send("POST", url, data=dict(form), headers={"Accept": "application/json"})
        if status != 200 or not isinstance(data, dict) or not isinstance(data.get("access_token"), str):
            raise self.refused(status, data, "the token endpoint")
        expires_in = data.get("expires_in")
        lifetime = (
            float(expires_in) if isinstance(expires_in, int | float) and not isinstance(expires_in, bool) else 300
        )
        return str(data["access_token"]), self._clock() + lifetime
