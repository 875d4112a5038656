"""The Rancher v3 client: Rancher's resources as core values, answers re-checked (implements core.ports.RancherApi).

HTTP, retries, pagination and caching live in transport.py. Names (clusters, projects, roles, the server version)
and the principal → user index are cached for `cache_ttl`; bindings are always read fresh.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

from bot.adapters.rancher.check import RancherCheck, check_key
from bot.adapters.rancher.payloads import (
    CRTBS,
    GRBS,
    PRTBS,
    SERVICE,
    Item,
    binding_of,
    global_role_of,
    json_of,
    role_template_of,
    user_of,
)
from bot.adapters.rancher.transport import Transport
from bot.core.errors import ConflictError, PermanentUpstreamError, TransientUpstreamError
from bot.core.model import (
    Cluster,
    Deletion,
    GlobalRole,
    Project,
    RancherUser,
    RoleBinding,
    RoleTemplate,
    Scope,
)
from bot.core.principals import derive_user_id
from bot.core.rancher_versions import RancherFeatures, features_of

log = logging.getLogger(__name__)

PLURALS = {Scope.CLUSTER: CRTBS, Scope.PROJECT: PRTBS, Scope.GLOBAL: GRBS}


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
        filter_chunk: int = 100,
    ) -> None:
        self._t = Transport(
            url,
            token,
            verify_tls=verify_tls,
            ca_bundle=ca_bundle,
            timeout=timeout,
            max_connections=max_connections,
            retries=retries,
            backoff=backoff,
            cache_ttl=cache_ttl,
            page_size=page_size,
            filter_chunk=filter_chunk,
        )
        self.verify_tls = verify_tls

    def __repr__(self) -> str:
        return f"RancherClient(url={self._t.base!r}, key=<hidden>)"

    async def __aenter__(self) -> RancherClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._t.aclose()

    def invalidate_cache(self) -> None:
        """Forget cached names, the server version and the user index."""
        self._t.forget()

    @property
    def list_requests(self) -> int:
        """Collection pages requested since the client was made (the benchmark reports it per answer)."""
        return self._t.lists

    # --- who ------------------------------------------------------------------------------------------------

    async def me(self) -> RancherUser:
        """The user the API key belongs to (`/v3/users?me=true`, re-checked)."""
        items = [u for u in await self._t.collect("users", [("me", "true")]) if u.get("me") is True]
        if len(items) != 1:
            raise PermanentUpstreamError(SERVICE, "could not tell which user the API key belongs to")
        return user_of(items[0])

    async def server_version(self) -> str:
        """Rancher's version string, e.g. `v2.12.3` (cached)."""

        async def load() -> str:
            return str((await self._t.get_json("/v3/settings/server-version")).get("value", ""))

        return await self._t.cached("server-version", load)

    async def features(self) -> RancherFeatures:
        """What this server's version implies (core.rancher_versions)."""
        return features_of(await self.server_version())

    async def get_user(self, user_id: str) -> RancherUser | None:
        """A user by id, or None when Rancher has no such user."""
        try:
            body = await self._t.get_json(f"/v3/users/{quote(user_id, safe='')}")
        except PermanentUpstreamError as exc:
            if exc.status == 404:
                return None
            raise
        return user_of(body) if body.get("id") == user_id else None

    async def find_user(self, principal_id: str, *, fresh: bool = False) -> RancherUser | None:
        """The Rancher user holding a user principal: the derived id first, else by principal (cached index).

        Rancher derives `u-` + sha256 only when no user holds the principal yet (usermanager.go EnsureUser): the
        admin who enabled the provider keeps `user-xxxxx`, users created through the API have random ids, so a
        404 on the derived id is not "never logged in". `principalIds` cannot be filtered, so the index is built
        from one list of every user, kept `cache_ttl`; `fresh` rebuilds it (before binding someone).
        """
        if principal_id.startswith("local://"):
            return await self.get_user(principal_id.removeprefix("local://"))
        derived = await self.get_user(derive_user_id(principal_id))
        if derived is not None and principal_id in derived.principal_ids:
            return derived

        async def load() -> dict[str, RancherUser]:
            index: dict[str, RancherUser] = {}
            for item in await self._t.collect("users"):
                user = user_of(item)
                for pid in user.principal_ids:
                    index.setdefault(pid, user)
            return index

        return (await self._t.cached("user-index", load, fresh=fresh)).get(principal_id)

    async def group_principals(self) -> list[str]:
        """The key's own group principals (`GET /v3/principals`, the ones with `memberOf`)."""
        items = await self._t.collect("principals")
        return [str(p["id"]) for p in items if p.get("principalType") == "group" and p.get("memberOf") is True]

    async def list_users(self) -> Sequence[RancherUser]:
        """Every Rancher user (fresh, one list)."""
        return [user_of(item) for item in await self._t.collect("users")]

    # --- names (cached) ---------------------------------------------------------------------------------------

    async def list_clusters(self) -> Sequence[Cluster]:
        """Every cluster the key may see (cached for cache_ttl)."""

        async def load() -> tuple[Cluster, ...]:
            items = await self._t.collect("clusters")
            return tuple(
                Cluster(id=c["id"], name=str(c.get("name") or c["id"]), labels=dict(c.get("labels") or {}))
                for c in items
            )

        return await self._t.cached("clusters", load)

    async def list_projects(self, cluster_id: str | None = None) -> Sequence[Project]:
        """Every project, optionally of one cluster (all projects cached for cache_ttl)."""

        async def load() -> tuple[Project, ...]:
            items = await self._t.collect("projects")
            return tuple(
                Project(
                    id=p["id"],
                    name=str(p.get("name") or p["id"]),
                    cluster_id=str(p.get("clusterId") or p["id"].split(":", 1)[0]),
                )
                for p in items
            )

        projects = await self._t.cached("projects", load)
        return projects if cluster_id is None else tuple(p for p in projects if p.cluster_id == cluster_id)

    async def list_role_templates(self) -> Sequence[RoleTemplate]:
        """Every role template with its rules and inheritance (cached for cache_ttl)."""

        async def load() -> tuple[RoleTemplate, ...]:
            return tuple(role_template_of(r) for r in await self._t.collect("roletemplates"))

        return await self._t.cached("roletemplates", load)

    async def list_global_roles(self) -> Sequence[GlobalRole]:
        """Every global role with its rules (cached for cache_ttl)."""

        async def load() -> tuple[GlobalRole, ...]:
            return tuple(global_role_of(g) for g in await self._t.collect("globalroles"))

        return await self._t.cached("globalroles", load)

    # --- bindings (fresh) ---------------------------------------------------------------------------------------

    async def list_bindings(
        self,
        *,
        user_ids: Sequence[str] = (),
        user_principal_ids: Sequence[str] = (),
        group_principal_ids: Sequence[str] = (),
        scopes: Sequence[Scope] = (Scope.GLOBAL, Scope.CLUSTER, Scope.PROJECT),
    ) -> Sequence[RoleBinding]:
        """Bindings of the given scopes held by any of the given subjects (fresh, re-checked, live ones).

        One request per collection and subject field (all groups in one `_in` list while the URL allows), so the
        server-side LISTs do not grow with the number of groups; GRB `userPrincipalId` only from Rancher 2.11.
        """
        features = await self.features()
        queries: list[tuple[str, Awaitable[list[RoleBinding]]]] = []
        for plural in (PLURALS[scope] for scope in scopes):
            queries.append((plural, self._query_bindings(plural, "userId", user_ids)))
            if plural != GRBS or features.has("grb_user_principal"):
                queries.append((plural, self._query_bindings(plural, "userPrincipalId", user_principal_ids)))
            queries.append((plural, self._query_bindings(plural, "groupPrincipalId", group_principal_ids)))
        results = await asyncio.gather(*(q for _, q in queries))
        out: dict[tuple[str, str], RoleBinding] = {}
        for (plural, _), found in zip(queries, results, strict=True):
            for binding in found:
                out.setdefault((plural, binding.id), binding)
        return list(out.values())

    async def _query_bindings(self, plural: str, field: str, values: Sequence[str]) -> list[RoleBinding]:
        """Live bindings of one filter, converted as soon as they arrive so the raw JSON is freed early."""
        return [
            binding_of(plural, item) for item in await self._t.query(plural, field, values) if not item.get("removed")
        ]

    async def list_target_bindings(self, cluster_id: str, project_id: str | None) -> Sequence[RoleBinding]:
        """Every binding on one cluster (CRTBs) or one project (PRTBs), re-checked; terminating ones flagged."""
        plural, field, value = (PRTBS, "projectId", project_id) if project_id else (CRTBS, "clusterId", cluster_id)
        items = await self._t.query(plural, field, [value])
        return [binding_of(plural, i) for i in items]

    async def list_all_bindings(self) -> Sequence[RoleBinding]:
        """Every CRTB and PRTB, each collection listed once (terminating ones flagged): the reconciler's view."""
        crtbs, prtbs = await asyncio.gather(self._t.collect(CRTBS), self._t.collect(PRTBS))
        return [binding_of(CRTBS, i) for i in crtbs] + [binding_of(PRTBS, i) for i in prtbs]

    async def list_labelled_bindings(self, label_key: str) -> Sequence[RoleBinding]:
        """Every CRTB/PRTB carrying `label_key` (v3 cannot filter labels, so this reads both collections)."""
        return [b for b in await self.list_all_bindings() if label_key in b.labels]

    async def get_binding(self, binding: RoleBinding) -> RoleBinding | None:
        """The binding as Rancher holds it now (terminating flagged), or None when it is gone."""
        plural = PLURALS[binding.scope]
        try:
            body = await self._t.get_json(f"/v3/{plural}/{quote(binding.id, safe='')}")
        except PermanentUpstreamError as exc:
            if exc.status == 404:
                return None
            raise
        return binding_of(plural, body)

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
        group_principal_id: str | None = None,
    ) -> RoleBinding:
        """Create a CRTB/PRTB with a deterministic name; our own earlier create (409) is found and returned."""
        if not name:
            raise ValueError("create_binding needs a deterministic name")
        if not user_id and not user_principal_id and not group_principal_id:
            raise ValueError("create_binding needs user_id, user_principal_id or group_principal_id")
        plural = PRTBS if project_id else CRTBS
        body: Item = {"name": name, "roleTemplateId": role_id, "labels": dict(labels), "annotations": dict(annotations)}
        body["projectId" if project_id else "clusterId"] = project_id or cluster_id
        if group_principal_id:
            body["groupPrincipalId"] = group_principal_id  # rtb_store.go: exactly one subject
        elif user_id:
            body["userId"] = user_id
        else:
            body["userPrincipalId"] = user_principal_id
        try:
            # Safe to retry: the name is deterministic, so a repeat of a create that landed gets 409 AlreadyExists.
            response = await self._t.request("POST", f"/v3/{plural}", body=body, retry=True)
        except ConflictError as exc:
            return await self._resolve_conflict(exc, plural, body)
        return binding_of(plural, json_of(response))

    async def _resolve_conflict(self, exc: ConflictError, plural: str, body: Item) -> RoleBinding:
        """Our own binding behind a 409: the same name (AlreadyExists), or a duplicate carrying our labels' values.

        A binding being deleted (`removed`) is never adopted: the create is retried once it is gone.
        """
        scope_field = "projectId" if plural == PRTBS else "clusterId"
        subject_field = next(f for f in ("groupPrincipalId", "userId", "userPrincipalId") if body.get(f))
        labels: Mapping[str, str] = body["labels"]
        if exc.code == "AlreadyExists":
            found = await self._t.query(plural, "name", [body["name"]], {scope_field: body[scope_field]})
            for item in found:
                if item.get("removed"):
                    raise TransientUpstreamError(
                        SERVICE, f"a binding named {body['name']} is still being deleted; retrying later"
                    ) from exc
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
        same = await self._t.query(
            plural,
            subject_field,
            [body[subject_field]],
            {scope_field: body[scope_field], "roleTemplateId": body["roleTemplateId"]},
        )
        for item in same:
            mine = all((item.get("labels") or {}).get(key) == value for key, value in labels.items())
            if mine and labels and not item.get("removed"):
                return binding_of(plural, item)
        existing = ", ".join(sorted(i["id"] for i in same)) or "unknown"
        raise ConflictError(
            SERVICE, f"Rancher already has this binding ({existing}), not made by the bot", status=409, code="Conflict"
        ) from exc

    async def delete_binding(self, binding: RoleBinding) -> Deletion:
        """Delete a CRTB/PRTB: gone (204, or purged at once), already gone (404), or terminating (200 `removed`)."""
        plural = PLURALS[binding.scope]
        try:
            response = await self._t.request("DELETE", f"/v3/{plural}/{quote(binding.id, safe='')}")
        except PermanentUpstreamError as exc:
            if exc.status == 404:
                return Deletion.ALREADY_GONE
            raise
        if response.status_code == 204 or not response.content:
            return Deletion.GONE
        # norman api/handler/delete.go: 200 with the object (`removed` set) while its finalizers run; the
        # downstream RBAC stays until they do, so the caller treats it as still being revoked
        return Deletion.TERMINATING if json_of(response).get("removed") else Deletion.GONE

    # --- diagnostics -------------------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The Rancher server the client talks to."""
        return self._t.base

    @property
    def key_name(self) -> str:
        """The API key's token name (`token-abcde`, the part before the colon; not a secret)."""
        return self._t.key.name

    async def ping(self) -> None:
        """Read the API root; raise an UpstreamError when Rancher does not answer."""
        await self._t.get_json("/v3/")

    async def own_token(self) -> Item:
        """The API key's own token object, read by name (`GET /v3/tokens/<name>`; an API key is never `current`)."""
        return await self._t.get_json(f"/v3/tokens/{quote(self._t.key.name, safe='')}")

    async def global_bindings_of(self, user_id: str, groups: Sequence[str]) -> list[RoleBinding]:
        """The global role bindings held by one user id or any of `groups`."""
        by_user, by_group = await asyncio.gather(
            self._query_bindings(GRBS, "userId", [user_id]), self._query_bindings(GRBS, "groupPrincipalId", groups)
        )
        return by_user + by_group

    async def check(self, expected_provider: str | None = None, *, now: datetime | None = None) -> RancherCheck:
        """Connectivity, who the key is, its auth provider and expiry, admin, the server version and what it means."""
        return await check_key(self, expected_provider, now=now)
