"""Rancher's v3 over HTTP: the key, retries with backoff, marker pagination, re-checked filters, a TTL cache.

Every filtered list is a full Kubernetes LIST on Rancher's side (norman store/proxy/proxy_store.go lists, then
store/wrapper/wrapper.go filters in memory), so a query sends all its values in one `_in` request whenever the
URL stays under `MAX_QUERY_BYTES`, never one request per value or per small chunk.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode, urlsplit, urlunsplit

import httpx

from bot.adapters.rancher.payloads import SERVICE, Item, error_from, json_of, path_of, retry_after_of, text_of
from bot.core.errors import PermanentUpstreamError, TransientUpstreamError, UpstreamError

log = logging.getLogger(__name__)

_T = TypeVar("_T")

MAX_QUERY_BYTES = 6000
"""Longest query string sent: ingress-nginx, in front of most Rancher servers, refuses request lines longer than
its 8 KiB `large-client-header-buffers` (ingress-nginx ConfigMap docs), so a long `_in` list is split under it."""


class _ApiKey:
    """Holds the API key; its repr and str never show it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The key itself, for the Authorization header only."""
        return self._value

    @property
    def name(self) -> str:
        """The token's name, the part before the colon (`token-abcde`); not a secret."""
        return self._value.split(":", 1)[0]

    def __repr__(self) -> str:
        return "<Rancher API key hidden>"

    __str__ = __repr__


class Transport:
    """HTTP to one Rancher server with its API key; counts the list requests it sends (`lists`)."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        verify_tls: bool = True,
        ca_bundle: str | Path | None = None,
        timeout: float = 10.0,
        max_connections: int = 20,
        retries: int = 3,
        backoff: float = 0.2,
        cache_ttl: float = 300.0,
        page_size: int | None = None,
        filter_chunk: int = 100,
    ) -> None:
        self.base = url.rstrip("/")
        self.key = _ApiKey(token)
        self._retries = max(0, retries)
        self._backoff = backoff
        self.cache_ttl = cache_ttl
        self._page_size = page_size
        self._chunk = max(1, filter_chunk)
        self._timeout = timeout
        self.verify_tls = verify_tls
        self.lists = 0
        verify: ssl.SSLContext | bool
        if not verify_tls:
            log.warning("Rancher TLS verification is OFF (rancher.verify_tls: false); use only in development")
            verify = False
        elif ca_bundle is not None:
            verify = ssl.create_default_context(cafile=str(ca_bundle))
        else:
            verify = ssl.create_default_context()
        self._http = httpx.AsyncClient(
            base_url=self.base,
            headers={
                "Authorization": f"Bearer {self.key.reveal()}",
                "Accept": "application/json",
                "User-Agent": "rancher-access-bot",
            },
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            verify=verify,
            follow_redirects=False,
        )
        self._cache: dict[str, tuple[float, Any]] = {}
        self._cache_locks: dict[str, asyncio.Lock] = {}

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    def forget(self, key: str | None = None) -> None:
        """Forget one cached value, or all of them."""
        if key is None:
            self._cache.clear()
        else:
            self._cache.pop(key, None)

    async def request(
        self, method: str, url: str, *, params: Any = None, body: Any = None, retry: bool = True
    ) -> httpx.Response:
        """One request; transient failures (timeouts, 429, 502-504, 5xx on reads) retried with backoff and jitter."""
        attempt = 0
        while True:
            error: UpstreamError
            retry_after: float | None = None
            try:
                response = await self._http.request(method, url, params=params, json=body)
            except httpx.TimeoutException:
                error = TransientUpstreamError(SERVICE, f"no answer from {self.base} within {self._timeout:g}s")
            except httpx.ConnectError:
                error = TransientUpstreamError(SERVICE, f"cannot connect to {self.base} (is Rancher up?)")
            except httpx.TransportError as exc:
                error = TransientUpstreamError(SERVICE, f"connection to {self.base} failed ({type(exc).__name__})")
            else:
                if response.status_code < 400:
                    return response
                error = error_from(method, response)
                retry_after = retry_after_of(response)
            if not retry or not isinstance(error, TransientUpstreamError) or attempt >= self._retries:
                raise error
            delay = retry_after if retry_after is not None else self._backoff * (2**attempt)
            delay = min(delay, 10.0) * (0.5 + random.random())  # noqa: S311 - jitter, not crypto
            log.info(
                "Rancher %s %s failed (%s); retry %d in %.2fs", method, path_of(url), error.message, attempt + 1, delay
            )
            attempt += 1
            await asyncio.sleep(delay)

    async def get_json(self, url: str, params: Any = None) -> Item:
        """GET one object."""
        return json_of(await self.request("GET", url, params=params))

    async def collect(self, plural: str, params: Sequence[tuple[str, str]] = ()) -> list[Item]:
        """Every item of a collection, following pagination.next to the end, de-duplicated by id."""
        query = list(params)
        if self._page_size:
            query.append(("limit", str(self._page_size)))
        url: str | None = f"/v3/{plural}"
        seen: dict[str, Item] = {}
        visited: set[str] = set()
        first = True
        while url:
            self.lists += 1
            body = await self.get_json(url, query if first else None)
            first = False
            if body.get("type") != "collection" or not isinstance(body.get("data"), list):
                raise PermanentUpstreamError(SERVICE, f"unexpected answer listing {plural}", code="InvalidCollection")
            for item in body["data"]:
                if isinstance(item, dict) and isinstance(item.get("id"), str):
                    seen.setdefault(item["id"], item)
            following = (body.get("pagination") or {}).get("next")
            if not following:
                break
            if not isinstance(following, str):
                raise PermanentUpstreamError(SERVICE, "pagination link is not a URL")
            following = self._rebase(following)
            if following in visited:
                break
            visited.add(following)
            url = following
        return list(seen.values())

    def _rebase(self, link: str) -> str:
        """The link on our configured origin: the API key never goes to a host Rancher names in a link.

        Rancher builds links from the request's forwarded host headers (norman urlbuilder/url.go), which behind a
        proxy may differ from our URL (http vs https, an internal host name); only the path and query are taken.
        """
        mine, theirs = urlsplit(self.base), urlsplit(link)
        if (mine.scheme, mine.netloc) == (theirs.scheme, theirs.netloc):
            return link
        return urlunsplit((mine.scheme, mine.netloc, theirs.path, theirs.query, ""))

    def chunks(self, field: str, values: Sequence[str]) -> list[list[str]]:
        """`values` split so each `<field>_in` query stays under MAX_QUERY_BYTES and `filter_chunk` values."""
        out: list[list[str]] = []
        current: list[str] = []
        size = 0
        for value in values:
            cost = len(urlencode([(f"{field}_in", value)])) + 1
            if current and (size + cost > MAX_QUERY_BYTES or len(current) >= self._chunk):
                out.append(current)
                current, size = [], 0
            current.append(value)
            size += cost
        if current:
            out.append(current)
        return out

    async def query(
        self, plural: str, field: str, values: Sequence[str], extra: Mapping[str, str] | None = None
    ) -> list[Item]:
        """Items whose `field` is one of `values` (and each `extra` field equals its value), re-checked, fail closed."""
        wanted = list(dict.fromkeys(v for v in values if v))
        if not wanted:
            return []
        extra = dict(extra or {})

        async def one(chunk: list[str]) -> list[Item]:
            params = [(field, chunk[0])] if len(chunk) == 1 else [(f"{field}_in", v) for v in chunk]
            params += list(extra.items())
            return await self.collect(plural, params)

        results = await asyncio.gather(*(one(c) for c in self.chunks(field, wanted)))
        allowed = set(wanted)
        out: dict[str, Item] = {}
        dropped = 0
        for items in results:
            for item in items:
                if item.get(field) in allowed and (
                    not extra or all(text_of(item.get(k)) == v for k, v in extra.items())
                ):
                    out.setdefault(item["id"], item)
                else:
                    dropped += 1
        if dropped:
            log.warning("Rancher ignored the %s filter on %s: dropped %d unrequested item(s)", field, plural, dropped)
        return list(out.values())

    async def cached(self, key: str, load: Callable[[], Awaitable[_T]], *, fresh: bool = False) -> _T:
        """`load()` once per cache_ttl (concurrent callers share one load); `fresh` reloads now."""
        hit = self._cache.get(key)
        if not fresh and hit is not None and time.monotonic() - hit[0] < self.cache_ttl:
            return hit[1]  # type: ignore[no-any-return]
        lock = self._cache_locks.setdefault(key, asyncio.Lock())
        async with lock:
            hit = self._cache.get(key)
            if not fresh and hit is not None and time.monotonic() - hit[0] < self.cache_ttl:
                return hit[1]  # type: ignore[no-any-return]
            value = await load()
            self._cache[key] = (time.monotonic(), value)
            return value
