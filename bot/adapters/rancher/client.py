"""The Rancher v3 client: pagination, re-checked filters, retries, name caches (implements core.ports.RancherApi)."""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

import httpx

from bot.adapters.rancher.check import RancherCheck, check_key
from bot.adapters.rancher.payloads import (
    CRTBS,
    GRBS,
    PRTBS,
    SERVICE,
    Item,
    binding_of,
    error_from,
    json_of,
    path_of,
    retry_after_of,
    text_of,
    user_of,
)
from bot.core.errors import ConflictError, PermanentUpstreamError, TransientUpstreamError, UpstreamError
from bot.core.model import Cluster, GlobalRole, Project, RancherUser, RoleBinding, RoleTemplate, Scope

log = logging.getLogger(__name__)


_T = TypeVar("_T")


class _ApiKey:
    """Holds the API key; its repr and str never show it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The key itself, for the Authorization header only."""
        return self._value

    def __repr__(self) -> str:
        return "<Rancher API key hidden>"

    __str__ = __repr__


class RancherClient:
    """The bot's Rancher v3 client; every answer is re-checked against what was asked."""

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
        filter_chunk: int = 20,
    ) -> None:
        self._base = url.rstrip("/")
        self._key = _ApiKey(token)
        self._retries = max(0, retries)
        self._backoff = backoff
        self._cache_ttl = cache_ttl
        self._page_size = page_size
        self._chunk = max(1, filter_chunk)
        self._timeout = timeout
        self.verify_tls = verify_tls
        verify: ssl.SSLContext | bool
        if not verify_tls:
            log.warning("Rancher TLS verification is OFF (rancher.verify_tls: false); use only in development")
            verify = False
        elif ca_bundle is not None:
            verify = ssl.create_default_context(cafile=str(ca_bundle))
        else:
            verify = ssl.create_default_context()
        self._http = httpx.AsyncClient(
            base_url=self._base,
            headers={
                "Authorization": f"Bearer {self._key.reveal()}",
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

    def __repr__(self) -> str:
        return f"RancherClient(url={self._base!r}, key=<hidden>)"

    async def __aenter__(self) -> RancherClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    def invalidate_cache(self) -> None:
        """Forget cached cluster, project, role template and global role names."""
        self._cache.clear()

    # --- HTTP core ---------------------------------------------------------------------------------------

    async def _request(
        self, method: str, url: str, *, params: Any = None, body: Any = None, retry: bool = True
    ) -> httpx.Response:
        attempt = 0
        while True:
            error: UpstreamError
            retry_after: float | None = None
            try:
                response = await self._http.request(method, url, params=params, json=body)
            except httpx.TimeoutException:
                error = TransientUpstreamError(SERVICE, f"no answer from {self._base} within {self._timeout:g}s")
            except httpx.ConnectError:
                error = TransientUpstreamError(SERVICE, f"cannot connect to {self._base} (is Rancher up?)")
            except httpx.TransportError as exc:
                error = TransientUpstreamError(SERVICE, f"connection to {self._base} failed ({type(exc).__name__})")
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

    async def _get_json(self, url: str, params: Any = None) -> Item:
        response = await self._request("GET", url, params=params)
        return json_of(response)

    async def _list(self, plural: str, params: Sequence[tuple[str, str]] = ()) -> list[Item]:
        """Every item of a collection, following pagination.next to the end, de-duplicated by id."""
        query = list(params)
        if self._page_size:
            query.append(("limit", str(self._page_size)))
        url: str | None = f"/v3/{plural}"
        seen: dict[str, Item] = {}
        visited: set[str] = set()
        first = True
        while url:
            body = await self._get_json(url, query if first else None)
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

        Rancher builds links from its `server-url`, which behind a proxy may differ (http vs https, an internal
        host name); only the path and query of a link are taken.
        """
        mine, theirs = urlsplit(self._base), urlsplit(link)
        if (mine.scheme, mine.netloc) == (theirs.scheme, theirs.netloc):
            return link
        return urlunsplit((mine.scheme, mine.netloc, theirs.path, theirs.query, ""))

    async def _query(
        self, plural: str, field: str, values: Sequence[str], extra: Mapping[str, str] | None = None
    ) -> list[Item]:
        """Items whose `field` is one of `values` (and each `extra` field equals its value), re-checked, fail closed."""
        wanted = list(dict.fromkeys(v for v in values if v))
        if not wanted:
            return []
        extra = dict(extra or {})
        chunks = [wanted[i : i + self._chunk] for i in range(0, len(wanted), self._chunk)]

        async def one(chunk: list[str]) -> list[Item]:
            params = [(field, chunk[0])] if len(chunk) == 1 else [(f"{field}_in", v) for v in chunk]
            params += list(extra.items())
            return await self._list(plural, params)

        results = await asyncio.gather(*(one(c) for c in chunks))
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

    async def _cached(self, key: str, load: Callable[[], Awaitable[_T]]) -> _T:
        hit = self._cache.get(key)
        now = time.monotonic()
        if hit is not None and now - hit[0] < self._cache_ttl:
            return hit[1]  # type: ignore[no-any-return]
        lock = self._cache_locks.setdefault(key, asyncio.Lock())
        async with lock:
            hit = self._cache.get(key)
            if hit is not None and time.monotonic() - hit[0] < self._cache_ttl:
                return hit[1]  # type: ignore[no-any-return]
            value = await load()
            self._cache[key] = (time.monotonic(), value)
            return value

    # --- RancherApi ----------------------------------------------------------------------------------------

    async def me(self) -> RancherUser:
        """The user the API key belongs to (`/v3/users?me=true`, re-checked)."""
        items = [u for u in await self._list("users", [("me", "true")]) if u.get("me") is True]
        if len(items) != 1:
            raise PermanentUpstreamError(SERVICE, "could not tell which user the API key belongs to")
        return user_of(items[0])

    async def server_version(self) -> str:
        """Rancher's version string, e.g. `v2.12.3`."""
        body = await self._get_json("/v3/settings/server-version")
        return str(body.get("value", ""))

    async def get_user(self, user_id: str) -> RancherUser | None:
        """A user by id, or None when Rancher has no such user."""
        try:
            body = await self._get_json(f"/v3/users/{quote(user_id, safe='')}")
        except PermanentUpstreamError as exc:
            if exc.status == 404:
                return None
            raise
        return user_of(body) if body.get("id") == user_id else None

    async def list_clusters(self) -> Sequence[Cluster]:
        """Every cluster the key may see (cached for cache_ttl)."""

        async def load() -> tuple[Cluster, ...]:
            items = await self._list("clusters")
            return tuple(
                Cluster(id=c["id"], name=str(c.get("name") or c["id"]), labels=dict(c.get("labels") or {}))
                for c in items
            )

        return await self._cached("clusters", load)

    async def list_projects(self, cluster_id: str | None = None) -> Sequence[Project]:
        """Every project, optionally of one cluster (all projects cached for cache_ttl)."""

        async def load() -> tuple[Project, ...]:
            items = await self._list("projects")
            return tuple(
                Project(
                    id=p["id"],
                    name=str(p.get("name") or p["id"]),
                    cluster_id=str(p.get("clusterId") or p["id"].split(":", 1)[0]),
                )
                for p in items
            )

        projects = await self._cached("projects", load)
        return projects if cluster_id is None else tuple(p for p in projects if p.cluster_id == cluster_id)

    async def list_role_templates(self) -> Sequence[RoleTemplate]:
        """Every role template (cached for cache_ttl)."""

        async def load() -> tuple[RoleTemplate, ...]:
            return tuple(
                RoleTemplate(
                    id=r["id"],
                    name=str(r.get("name") or r["id"]),
                    context=str(r.get("context") or ""),
                    hidden=bool(r.get("hidden")),
                    locked=bool(r.get("locked")),
                    builtin=bool(r.get("builtin")),
                )
                for r in await self._list("roletemplates")
            )

        return await self._cached("roletemplates", load)

    async def list_global_roles(self) -> Sequence[GlobalRole]:
        """Every global role (cached for cache_ttl)."""

        async def load() -> tuple[GlobalRole, ...]:
            return tuple(
                GlobalRole(
                    id=g["id"],
                    name=str(g.get("name") or g["id"]),
                    inherited_cluster_roles=tuple(g.get("inheritedClusterRoles") or ()),
                )
                for g in await self._list("globalroles")
            )

        return await self._cached("globalroles", load)

    async def list_bindings(
        self,
        *,
        user_ids: Sequence[str] = (),
        user_principal_ids: Sequence[str] = (),
        group_principal_ids: Sequence[str] = (),
    ) -> Sequence[RoleBinding]:
        """Global, cluster and project bindings held by any of the given subjects (fresh, re-checked)."""
        queries: list[tuple[str, Awaitable[list[RoleBinding]]]] = []
        for plural in (GRBS, CRTBS, PRTBS):
            queries.append((plural, self._query_bindings(plural, "userId", user_ids)))
            queries.append((plural, self._query_bindings(plural, "userPrincipalId", user_principal_ids)))
            queries.append((plural, self._query_bindings(plural, "groupPrincipalId", group_principal_ids)))
        results = await asyncio.gather(*(q for _, q in queries))
        out: dict[tuple[str, str], RoleBinding] = {}
        for (plural, _), found in zip(queries, results, strict=True):
            for binding in found:
                out.setdefault((plural, binding.id), binding)
        return list(out.values())

    async def _query_bindings(self, plural: str, field: str, values: Sequence[str]) -> list[RoleBinding]:
        """Bindings of one filter, converted as soon as they arrive so the raw JSON is freed early."""
        return [
            binding_of(plural, item) for item in await self._query(plural, field, values) if not item.get("removed")
        ]

    async def list_target_bindings(self, cluster_id: str, project_id: str | None) -> Sequence[RoleBinding]:
        """Every binding on one cluster (CRTBs) or one project (PRTBs), re-checked."""
        plural, field, value = (PRTBS, "projectId", project_id) if project_id else (CRTBS, "clusterId", cluster_id)
        items = await self._query(plural, field, [value])
        return [binding_of(plural, i) for i in items if not i.get("removed")]

    async def list_labelled_bindings(self, label_key: str) -> Sequence[RoleBinding]:
        """Every CRTB/PRTB carrying `label_key` (v3 cannot filter labels, so this reads both collections)."""
        crtbs, prtbs = await asyncio.gather(self._list(CRTBS), self._list(PRTBS))
        out = [binding_of(CRTBS, i) for i in crtbs if label_key in (i.get("labels") or {}) and not i.get("removed")]
        out += [binding_of(PRTBS, i) for i in prtbs if label_key in (i.get("labels") or {}) and not i.get("removed")]
        return out

    async def create_binding(
        self,
        *,
        name: str,
        cluster_id: str,
        project_id: str | None,
        role_id: str,
        user_id: str | None,
        user_principal_id: str | None,
        labels: Mapping[str, str],
        annotations: Mapping[str, str],
    ) -> RoleBinding:
        """Create a CRTB/PRTB with a deterministic name; our own earlier create (409) is found and returned."""
        if not name:
            raise ValueError("create_binding needs a deterministic name")
        if not user_id and not user_principal_id:
            raise ValueError("create_binding needs user_id or user_principal_id")
        plural = PRTBS if project_id else CRTBS
        body: Item = {"name": name, "roleTemplateId": role_id, "labels": dict(labels), "annotations": dict(annotations)}
        body["projectId" if project_id else "clusterId"] = project_id or cluster_id
        if user_id:
            body["userId"] = user_id
        else:
            body["userPrincipalId"] = user_principal_id
        try:
            # Safe to retry: the name is deterministic, so a repeat of a create that landed gets 409 AlreadyExists.
            response = await self._request("POST", f"/v3/{plural}", body=body, retry=True)
        except ConflictError as exc:
            return await self._resolve_conflict(exc, plural, body)
        return binding_of(plural, json_of(response))

    async def _resolve_conflict(self, exc: ConflictError, plural: str, body: Item) -> RoleBinding:
        scope_field = "projectId" if plural == PRTBS else "clusterId"
        subject_field = "userId" if body.get("userId") else "userPrincipalId"
        if exc.code == "AlreadyExists":
            found = await self._query(plural, "name", [body["name"]], {scope_field: body[scope_field]})
            for item in found:
                if (
                    item.get("roleTemplateId") == body["roleTemplateId"]
                    and item.get(subject_field) == body[subject_field]
                ):
                    return binding_of(plural, item)
            raise ConflictError(
                SERVICE,
                f"a binding named {body['name']} already exists for another role or subject",
                status=409,
                code="AlreadyExists",
            ) from exc
        same = await self._query(
            plural,
            subject_field,
            [body[subject_field]],
            {scope_field: body[scope_field], "roleTemplateId": body["roleTemplateId"]},
        )
        for item in same:
            if not item.get("removed") and all(key in (item.get("labels") or {}) for key in body["labels"]):
                return binding_of(plural, item)
        existing = ", ".join(sorted(i["id"] for i in same)) or "unknown"
        raise ConflictError(
            SERVICE, f"Rancher already has this binding ({existing}), not made by the bot", status=409, code="Conflict"
        ) from exc

    async def delete_binding(self, binding: RoleBinding) -> bool:
        """Delete a CRTB/PRTB (200 or 204); False when Rancher no longer has it (404)."""
        plural = {Scope.CLUSTER: CRTBS, Scope.PROJECT: PRTBS, Scope.GLOBAL: GRBS}[binding.scope]
        try:
            await self._request("DELETE", f"/v3/{plural}/{quote(binding.id, safe='')}")
        except PermanentUpstreamError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    # --- diagnostics ---------------------------------------------------------------------------------------

    # --- diagnostics ---------------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The Rancher server the client talks to."""
        return self._base

    async def ping(self) -> None:
        """Read the API root; raise an UpstreamError when Rancher does not answer."""
        await self._get_json("/v3/")

    async def current_token(self) -> Item:
        """The API key's own token object (`/v3/tokens`, the one marked `current`)."""
        tokens = [t for t in await self._list("tokens", [("current", "true")]) if t.get("current") is True]
        if len(tokens) != 1:
            raise PermanentUpstreamError(SERVICE, "could not find the API key's own token")
        return tokens[0]

    async def global_bindings_of(self, user_id: str) -> list[Item]:
        """The global role bindings held by one user id (raw objects)."""
        return await self._query(GRBS, "userId", [user_id])

    async def check(self, expected_provider: str | None = None) -> RancherCheck:
        """Connectivity, who the key is, its auth provider, the server version, and what will not work."""
        return await check_key(self, expected_provider)
