"""`accessbot rancher check`: can the bot reach Rancher, who is its key, and what will not work."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from bot.adapters.rancher.payloads import Item, version_of
from bot.core.errors import UpstreamError
from bot.core.model import RancherUser


@dataclass(frozen=True)
class RancherCheck:
    """What `accessbot rancher check` reports about the Rancher server and the bot's key."""

    url: str
    reachable: bool
    user_id: str = ""
    user_name: str = ""
    auth_provider: str = ""
    server_version: str = ""
    is_admin: bool = False
    problems: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when Rancher answered and nothing blocks the bot."""
        return self.reachable and not self.problems


class CheckedClient(Protocol):
    """What the check reads from the Rancher client."""

    verify_tls: bool

    @property
    def base_url(self) -> str:
        """The Rancher server."""
        ...

    async def ping(self) -> None:
        """Read the API root."""
        ...

    async def me(self) -> RancherUser:
        """The key's user."""
        ...

    async def current_token(self) -> Item:
        """The key's own token object."""
        ...

    async def server_version(self) -> str:
        """Rancher's version string."""
        ...

    async def global_bindings_of(self, user_id: str) -> list[Item]:
        """Global role bindings of one user."""
        ...


async def check_key(client: CheckedClient, expected_provider: str | None = None) -> RancherCheck:
    """Connectivity, who the key is, its auth provider, the server version, and what will not work."""
    warnings: list[str] = []
    if not client.verify_tls:
        warnings.append("TLS verification is off; use only in development")
    try:
        await client.ping()
    except UpstreamError as exc:
        return RancherCheck(url=client.base_url, reachable=False, problems=(exc.message,), warnings=tuple(warnings))
    problems: list[str] = []
    user_id = user_name = provider = version = ""
    is_admin = False
    try:
        user = await client.me()
        user_id, user_name = user.id, user.name
        token = await client.current_token()
        provider = str(token.get("authProvider") or "")
        version = await client.server_version()
        grbs = await client.global_bindings_of(user.id)
        is_admin = any(g.get("globalRoleId") == "admin" for g in grbs)
        if token.get("expiresAt"):
            warnings.append(f"the API key expires at {token['expiresAt']}; plan its rotation")
    except UpstreamError as exc:
        problems.append(exc.message)
    if provider == "local" and expected_provider not in (None, "", "local"):
        warnings.append(
            f"the key comes from the local provider: binding {expected_provider} user principals fails with "
            "a 500, so the bot can grant only to users who have logged in to Rancher once (bound by user id); "
            f"mint the key as an admin logged in through {expected_provider} to lift this"
        )
    elif provider and expected_provider and provider not in ("local", expected_provider):
        warnings.append(f"the key comes from {provider}, but rancher.auth_provider is {expected_provider}")
    if version and version_of(version) < (2, 14):
        warnings.append(f"Rancher {version} accepts duplicate bindings; the bot lists before it creates")
    if user_id and not is_admin:
        warnings.append("the key's user is not a global admin: Rancher may refuse grants (403 escalation)")
    return RancherCheck(
        url=client.base_url,
        reachable=True,
        user_id=user_id,
        user_name=user_name,
        auth_provider=provider,
        server_version=version,
        is_admin=is_admin,
        problems=tuple(problems),
        warnings=tuple(warnings),
    )
