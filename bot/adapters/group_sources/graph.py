"""Microsoft Graph as a group source (Entra ID): the user's transitive group memberships, with display names.

- Token: client credentials at the tenant's token endpoint, scope `<graph>/.default`
  (https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow). The app needs the
  application permission GroupMember.Read.All (or Directory.Read.All), admin-consented.
- Groups: `GET /v1.0/users/{oid}/transitiveMemberOf?$select=id,displayName`, paged by `@odata.nextLink`
  (https://learn.microsoft.com/graph/api/user-list-transitivememberof); the answer mixes groups, directory roles
  and administrative units, so only `#microsoft.graph.group` items count. This is what Rancher's azuread provider
  reads (rancher v2.15.0 `pkg/auth/providers/azure/clients/ms_graph_client.go`, TransitiveMemberOf).
- The user is found by the ID token's `oid` claim (the object id; `sub` is per application).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from urllib.parse import quote

import httpx

from bot.adapters.group_sources.transport import DirectoryHttp
from bot.core.groups import MAX_GROUPS, GroupsAnswer, from_directory
from bot.core.model import VerifiedLogin

SERVICE = "Microsoft Graph"
MAX_PAGES = 20
GROUP_TYPE = "#microsoft.graph.group"


class GraphGroups:
    """Implements core.ports.GroupSource with Microsoft Graph."""

    def __init__(
        self,
        *,
        url: str,
        token_endpoint: Callable[[], Awaitable[str]],
        client_id: str,
        client_secret: str,
        timeout: float = 10.0,
        http: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._token_endpoint = token_endpoint
        self._client_id = client_id
        self.__secret = client_secret
        self._api = DirectoryHttp(SERVICE, url, self._fetch_token, timeout=timeout, http=http, clock=clock)

    def __repr__(self) -> str:
        return f"GraphGroups(url={self._api.base_url!r}, client_id={self._client_id!r}, client_secret=<redacted>)"

    async def aclose(self) -> None:
        """Close the HTTP client if this instance created it."""
        await self._api.aclose()

    async def _fetch_token(self, api: DirectoryHttp) -> tuple[str, float]:
        return await api.oauth_token(
            await self._token_endpoint(),
            {
                "grant_type": "client_credentials",
                "client_id": self._client_id,
                "client_secret": self.__secret,
                "scope": f"{api.base_url}/.default",
            },
        )

    async def groups(self, login: VerifiedLogin) -> GroupsAnswer | None:
        """The user's groups (ids, with display names); None when the login carries no `oid`."""
        oid = login.claims.get("oid")
        if not isinstance(oid, str) or not oid:
            return None
        url: str | None = (
            f"{self._api.base_url}/v1.0/users/{quote(oid, safe='')}/transitiveMemberOf?$select=id,displayName&$top=999"
        )
        entries: list[tuple[str, str]] = []
        pages = 0
        while url and pages < MAX_PAGES and len(entries) < MAX_GROUPS:
            status, data = await self._api.get(url)
            if status != 200 or not isinstance(data, dict):
                raise self._api.refused(status, data, "transitiveMemberOf")
            for item in data.get("value") or []:
                if isinstance(item, dict) and item.get("@odata.type") == GROUP_TYPE:
                    entries.append((str(item.get("id") or ""), str(item.get("displayName") or "")))
            link = data.get("@odata.nextLink")
            url = link if isinstance(link, str) else None
            pages += 1
        return from_directory(entries)

    async def check(self) -> str:
        """Prove the credentials and the permission: a token, then one group read. Raise UpstreamError if not."""
        status, data = await self._api.get(f"{self._api.base_url}/v1.0/groups?$top=1&$select=id")
        if status != 200:
            raise self._api.refused(status, data, "GET /v1.0/groups")
        return "token and GroupMember.Read.All work"
