"""The Google Admin SDK Directory API as a group source and account directory (Google Workspace).

- Token: a service account with domain-wide delegation signs a JWT (RS256, `iss` its email, `sub` the admin it
  acts as, `aud` its key's `token_uri`) and trades it at `token_uri` with grant type
  `urn:ietf:params:oauth:grant-type:jwt-bearer`
  (https://developers.google.com/identity/protocols/oauth2/service-account#delegatingauthority).
- Groups: `GET /admin/directory/v1/groups?userKey=<id>` paged by `nextPageToken`
  (https://developers.google.com/admin-sdk/directory/reference/rest/v1/groups/list), scope
  admin.directory.group.readonly. The user key is the ID token's `sub`: Google's subject is the account's
  Directory id, which is also what Rancher's googleoauth provider passes (rancher v2.15.0
  `pkg/auth/providers/googleoauth/goauth_helper.go`, `Groups.List().UserKey`). Groups are kept by id (Rancher's
  `googleoauth_group://<id>`) and shown and matched by their email address.
- Account state: `GET /admin/directory/v1/users/<id>` (`suspended`, `archived`; 404 when deleted), scope
  admin.directory.user.readonly (https://developers.google.com/admin-sdk/directory/reference/rest/v1/users/get).
  Google answers every dead refresh token with the same "Token has been expired or revoked." (suspension,
  deletion, a user revoking access, the per-client token limit), so the bot asks here which it was.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey

from bot.adapters.group_sources.transport import DirectoryHttp
from bot.core.errors import PermanentUpstreamError
from bot.core.groups import MAX_GROUPS, GroupsAnswer, from_directory
from bot.core.model import Identity, VerifiedLogin
from bot.core.ports import AccountStatus

SERVICE = "Google Directory"
SCOPES = (
    "https://www.googleapis.com/auth/admin.directory.group.readonly "
    "https://www.googleapis.com/auth/admin.directory.user.readonly"
)
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
MAX_PAGES = 25


class ServiceAccountKey:
    """A service account's JSON key; the private key never shows in reprs."""

    def __init__(self, path: Path) -> None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            self.email = str(data["client_email"])
            self.key_id = str(data.get("private_key_id") or "")
            self.token_uri = str(data.get("token_uri") or "https://oauth2.googleapis.com/token")
            self._key = RSAKey.import_key(str(data["private_key"]))
        except (OSError, ValueError, KeyError, TypeError, JoseError) as err:
            raise PermanentUpstreamError(
                SERVICE, f"the service account key cannot be read ({type(err).__name__})"
            ) from None

    def __repr__(self) -> str:
        return f"ServiceAccountKey({self.email!r}, <private key hidden>)"

    def assertion(self, subject: str, now: int) -> str:
        """The signed JWT that asks for a token acting as `subject`."""
        header = {"alg": "RS256", "typ": "JWT", **({"kid": self.key_id} if self.key_id else {})}
        claims = {
            "iss": self.email,
            "sub": subject,
            "scope": SCOPES,
            "aud": self.token_uri,
            "iat": now,
            "exp": now + 3600,
        }
        return jwt.encode(header, claims, self._key, algorithms=["RS256"])


class GoogleDirectory:
    """Implements core.ports.GroupSource and core.ports.AccountDirectory with the Admin SDK Directory API."""

    def __init__(
        self,
        *,
        credentials_file: Path,
        admin_email: str,
        url: str = "https://admin.googleapis.com",
        timeout: float = 10.0,
        http: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._key = ServiceAccountKey(credentials_file)
        self._admin = admin_email
        self._clock = clock
        self._api = DirectoryHttp(SERVICE, url, self._fetch_token, timeout=timeout, http=http, clock=clock)

    def __repr__(self) -> str:
        return f"GoogleDirectory(url={self._api.base_url!r}, as={self._admin!r}, key={self._key!r})"

    async def aclose(self) -> None:
        """Close the HTTP client if this instance created it."""
        await self._api.aclose()

    async def _fetch_token(self, api: DirectoryHttp) -> tuple[str, float]:
        assertion = self._key.assertion(self._admin, int(self._clock()))
        return await api.oauth_token(self._key.token_uri, {"grant_type": JWT_BEARER, "assertion": assertion})

    def _url(self, path: str) -> str:
        return f"{self._api.base_url}/admin/directory/v1/{path}"

    async def groups(self, login: VerifiedLogin) -> GroupsAnswer | None:
        """The user's groups (ids, shown by email); None when the directory does not know the account."""
        entries: list[tuple[str, str]] = []
        params = {"userKey": login.subject, "maxResults": "200"}
        for _ in range(MAX_PAGES):
            status, data = await self._api.get(self._url("groups"), params)
            if status == 404:
                return None  # not a Workspace account of this domain: the directory cannot say
            if status != 200 or not isinstance(data, dict):
                raise self._api.refused(status, data, "groups.list")
            for item in data.get("groups") or []:
                if isinstance(item, dict):
                    entries.append((str(item.get("id") or ""), str(item.get("email") or item.get("name") or "")))
            page = data.get("nextPageToken")
            if not isinstance(page, str) or not page or len(entries) >= MAX_GROUPS:
                break
            params = {**params, "pageToken": page}
        return from_directory(entries)

    async def account_status(self, identity: Identity) -> AccountStatus:
        """Active, suspended (or archived), or deleted (404), by the account's Directory id."""
        status, data = await self._api.get(self._url(f"users/{quote(identity.subject, safe='')}"))
        if status == 404:
            return AccountStatus.DELETED
        if status != 200 or not isinstance(data, dict):
            raise self._api.refused(status, data, "users.get")
        if data.get("suspended") is True or data.get("archived") is True:
            return AccountStatus.SUSPENDED
        return AccountStatus.ACTIVE

    async def check(self) -> str:
        """Prove the key, the delegation and the scopes: a token, then one group read. Raise UpstreamError if not."""
        status, data = await self._api.get(self._url("groups"), {"customer": "my_customer", "maxResults": "1"})
        if status != 200:
            raise self._api.refused(status, data, "groups.list")
        return f"service account {self._key.email} acting as {self._admin} can read groups"
