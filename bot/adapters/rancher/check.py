"""`accessbot rancher check`: can the bot reach Rancher, whose key it holds, and what will and will not work.

The key is read by name (`GET /v3/tokens/<name before the colon>`): Rancher never marks an API key `current`
(rancher pkg/auth/tokens/manager.go: `Current = … && !currentAuthToken.IsDerived`) and its token list ignores
filters (tokens/api.go has its own list handler). Admin follows Rancher's own rule (pkg/rbac/common.go
IsAdminGlobalRole) over the global role bindings of the key's user and of its groups.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from bot.adapters.rancher.payloads import Item
from bot.core.errors import UpstreamError
from bot.core.model import GlobalRole, RancherUser, RoleBinding
from bot.core.rancher_rbac import is_admin_global_role
from bot.core.rancher_versions import OLDEST_SUPPORTED, RancherFeatures, features_of

EXPIRY_WARNING = timedelta(days=14)


@dataclass(frozen=True)
class RancherCheck:
    """What `accessbot rancher check` reports about the Rancher server and the bot's key."""

    url: str
    reachable: bool
    key_name: str = ""
    user_id: str = ""
    user_name: str = ""
    auth_provider: str = ""
    expires_at: str = ""
    server_version: str = ""
    is_admin: bool = False
    admin_via: str = ""
    implications: tuple[str, ...] = ()
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

    @property
    def key_name(self) -> str:
        """The key's token name."""
        ...

    async def ping(self) -> None:
        """Read the API root."""
        ...

    async def me(self) -> RancherUser:
        """The key's user."""
        ...

    async def own_token(self) -> Item:
        """The key's own token object, by name."""
        ...

    async def server_version(self) -> str:
        """Rancher's version string."""
        ...

    async def group_principals(self) -> list[str]:
        """The key's group principals."""
        ...

    async def global_bindings_of(self, user_id: str, groups: Sequence[str]) -> list[RoleBinding]:
        """Global role bindings of a user or its groups."""
        ...

    async def list_global_roles(self) -> Sequence[GlobalRole]:
        """Every global role."""
        ...


def _expiry(token: Item, now: datetime, problems: list[str], warnings: list[str]) -> str:
    """The key's expiry as text; a problem when it has expired or is disabled, a warning under 14 days."""
    if token.get("expired") is True:
        problems.append("the API key has expired; mint a new one and update rancher.token")
    if token.get("enabled") is False:
        problems.append("the API key is disabled")
    raw = str(token.get("expiresAt") or "")
    if not raw:
        return "never (Rancher's auth-token-max-ttl-minutes may still apply)"
    try:
        when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return raw
    left = when - now
    if timedelta(0) < left < EXPIRY_WARNING:
        warnings.append(f"the API key expires in {left.days} day(s), at {raw}; rotate it before then")
    return raw


def _version(version: str, expected_provider: str | None, problems: list[str], warnings: list[str]) -> RancherFeatures:
    features = features_of(version)
    if not features.known:
        warnings.append(f"cannot read the server version ({version or 'empty'}); assuming the newest behaviour")
    elif not features.supported:
        oldest = f"{OLDEST_SUPPORTED[0]}.{OLDEST_SUPPORTED[1]}"
        problems.append(f"Rancher {version} is older than {oldest}, the oldest version the bot supports")
    if expected_provider == "genericoidc" and features.known and not features.has("genericoidc"):
        problems.append(f"rancher.auth_provider is genericoidc, which Rancher has only from 2.9 (this is {version})")
    return features


def _provider(provider: str, expected: str | None, warnings: list[str]) -> None:
    if provider == "local" and expected not in (None, "", "local"):
        warnings.append(
            f"the key comes from the local provider: binding {expected} user principals fails with a 500, so "
            "the bot can grant only to users who have logged in to Rancher once (bound by user id); mint the key "
            f"as an admin logged in through {expected} to lift this"
        )
    elif provider and expected and provider not in ("local", expected):
        warnings.append(f"the key comes from {provider}, but rancher.auth_provider is {expected}")


async def _admin(client: CheckedClient, user: RancherUser) -> str:
    """The global role binding that makes the key's user an admin (by user or group), or ""."""
    groups = await client.group_principals()
    roles = {r.id: r for r in await client.list_global_roles()}
    for binding in await client.global_bindings_of(user.id, groups):
        if is_admin_global_role(roles.get(binding.role_id)):
            role = roles[binding.role_id].name
            held = f"group {binding.group_principal_id}" if binding.group_principal_id else "its user"
            return f"{role} ({binding.id}, held by {held})"
    return ""


async def check_key(
    client: CheckedClient, expected_provider: str | None = None, *, now: datetime | None = None
) -> RancherCheck:
    """Connectivity, the key (name, provider, owner, expiry), admin by Rancher's rule, the version and its meaning."""
    now = now or datetime.now(UTC)
    warnings: list[str] = []
    if not client.verify_tls:
        warnings.append("TLS verification is off; use only in development")
    try:
        await client.ping()
    except UpstreamError as exc:
        return RancherCheck(url=client.base_url, reachable=False, problems=(exc.message,), warnings=tuple(warnings))
    problems: list[str] = []
    user: RancherUser | None = None
    provider = version = expires = admin_via = ""
    features: RancherFeatures | None = None
    try:
        user = await client.me()
        if client.key_name.startswith("ext/"):
            warnings.append("the key is an ext token (2.12+): its provider and expiry are not readable through v3")
        else:
            token = await client.own_token()
            provider = str(token.get("authProvider") or "")
            if token.get("userId") not in (None, user.id):
                problems.append(f"the key's token names user {token.get('userId')}, but the key acts as {user.id}")
            expires = _expiry(token, now, problems, warnings)
        version = await client.server_version()
        features = _version(version, expected_provider, problems, warnings)
        admin_via = await _admin(client, user)
    except UpstreamError as exc:
        problems.append(exc.message)
    _provider(provider, expected_provider, warnings)
    if user is not None and not admin_via and not problems:
        warnings.append(
            "the key's user is not a global admin (by its own or a group's global role): Rancher refuses grants "
            "of roles it does not hold itself (422 escalation)"
        )
    return RancherCheck(
        url=client.base_url,
        reachable=True,
        key_name=client.key_name,
        user_id=user.id if user else "",
        user_name=user.name if user else "",
        auth_provider=provider,
        expires_at=expires,
        server_version=version,
        is_admin=bool(admin_via),
        admin_via=admin_via,
        implications=tuple(features.implications()) if features else (),
        problems=tuple(problems),
        warnings=tuple(warnings),
    )
