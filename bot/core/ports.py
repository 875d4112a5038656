"""Protocols the services need from the edges (storage ports are in core.storage); wiring.py connects them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from bot.core.groups import GroupsAnswer
from bot.core.model import (
    Cluster,
    Deletion,
    GlobalRole,
    Identity,
    Project,
    RancherUser,
    RoleBinding,
    RoleTemplate,
    Scope,
    VerifiedLogin,
)
from bot.core.notices import Notice
from bot.core.rancher_versions import RancherFeatures


class Clock(Protocol):
    """Where services read the time (epoch seconds); tests travel with time-machine."""

    def now(self) -> int:
        """Current UTC time in whole epoch seconds."""
        ...


class Sealer(Protocol):
    """Encrypts secrets (refresh tokens) at rest."""

    def seal(self, plaintext: str) -> str:
        """Encrypt with the newest key."""
        ...

    def unseal(self, token: str) -> str:
        """Decrypt with any configured key; raise TokenRejected if none fits."""
        ...


class Notifier(Protocol):
    """Delivers Slack messages now (used by the outbox job and by direct replies)."""

    async def post(self, channel: str, text: str, blocks: Sequence[Mapping[str, object]] | None = None) -> str:
        """Post a message to a channel; return its ts."""
        ...

    async def update(
        self, channel: str, ts: str, text: str, blocks: Sequence[Mapping[str, object]] | None = None
    ) -> None:
        """Edit a posted message in place."""
        ...

    async def dm(self, user: str, text: str, blocks: Sequence[Mapping[str, object]] | None = None) -> str:
        """Send a direct message to a user; return its ts."""
        ...

    async def open_dm(self, user: str) -> str:
        """The id of the bot's DM channel with a user (to post there and later edit what was posted)."""
        ...

    def knows_dm(self, user: str) -> bool:
        """True when the DM channel with a user is already known, so a DM costs no conversations.open call."""
        ...

    async def upload(self, channel: str, filename: str, content: bytes, comment: str) -> None:
        """Upload a file into a channel."""
        ...

    async def user_email(self, user: str) -> str | None:
        """The Slack profile email of a user, or None when Slack has none."""
        ...

    async def user_name(self, user: str) -> str | None:
        """The name a Slack user is shown by (display name, else real name), or None when Slack has none."""
        ...


# --- identity provider -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RefreshedTokens:
    """A token-endpoint answer to a refresh, before its ID token is checked (so rotation is stored first)."""

    refresh_token: str | None
    id_token: str | None
    access_token: str | None
    access_token_expires_at: int | None

    def __repr__(self) -> str:
        return "RefreshedTokens(<redacted>)"


class IdentityProvider(Protocol):
    """The OpenID Connect provider (implemented by adapters.oidc.OidcClient); every refusal is TokenRejected."""

    @property
    def issuer(self) -> str:
        """The configured issuer identifier."""
        ...

    async def authorization_url(self, state: str, nonce: str, code_verifier: str) -> str:
        """The authorization endpoint URL for a code flow with PKCE (S256), state and nonce."""
        ...

    async def exchange_code(self, code: str, code_verifier: str, expected_nonce: str) -> VerifiedLogin:
        """Redeem an authorization code and return the strictly validated login."""
        ...

    async def refresh_tokens(self, refresh_token: str) -> RefreshedTokens:
        """Use a refresh token; return the raw answer (new refresh token first, nothing verified yet)."""
        ...

    async def verify_refresh(self, tokens: RefreshedTokens, expected_subject: str) -> VerifiedLogin:
        """Validate a refresh answer (ID token without nonce, else userinfo) for the linked subject."""
        ...

    async def refresh(self, refresh_token: str) -> VerifiedLogin:
        """Refresh and validate in one step (callers that must persist rotation first use the two steps)."""
        ...

    async def revoke(self, refresh_token: str) -> bool:
        """Revoke a refresh token (RFC 7009); False when the IdP has no revocation endpoint."""
        ...


class GroupSource(Protocol):
    """Where a linked user's groups come from (the ID token's claim, or a directory API the IdP offers)."""

    async def groups(self, login: VerifiedLogin) -> GroupsAnswer | None:
        """The user's groups now, or None when this source cannot tell (never read None as "no groups").

        Raise TransientUpstreamError when asking again later may work; core.groups states the rules.
        """
        ...


class AccountStatus(StrEnum):
    """What a directory says about an account."""

    ACTIVE = "active"
    SUSPENDED = "suspended"
    DELETED = "deleted"
    UNKNOWN = "unknown"


class AccountDirectory(Protocol):
    """A directory that can say whether an account still exists and is enabled (Google Admin SDK)."""

    async def account_status(self, identity: Identity) -> AccountStatus:
        """The account's state; UNKNOWN when the directory cannot say (never raises for a missing user)."""
        ...


# --- Rancher -----------------------------------------------------------------------------------------


class RancherApi(Protocol):
    """What the services need from Rancher's v3 API (implemented by adapters.rancher.RancherClient)."""

    async def me(self) -> RancherUser:
        """The user the API key belongs to."""
        ...

    async def server_version(self) -> str:
        """Rancher's version string, e.g. `v2.12.3`."""
        ...

    async def features(self) -> RancherFeatures:
        """What the server's version implies (cached)."""
        ...

    async def get_user(self, user_id: str) -> RancherUser | None:
        """A user by id, or None."""
        ...

    async def find_user(self, principal_id: str, *, fresh: bool = False) -> RancherUser | None:
        """The user holding a user principal (the derived id first, then by principal), or None."""
        ...

    async def list_users(self) -> Sequence[RancherUser]:
        """Every Rancher user (fresh), with the principal ids each answers to."""
        ...

    async def list_clusters(self) -> Sequence[Cluster]:
        """Every cluster the key may see."""
        ...

    async def list_projects(self, cluster_id: str | None = None) -> Sequence[Project]:
        """Every project, optionally of one cluster."""
        ...

    async def list_role_templates(self) -> Sequence[RoleTemplate]:
        """Every role template."""
        ...

    async def list_global_roles(self) -> Sequence[GlobalRole]:
        """Every global role."""
        ...

    async def list_bindings(
        self,
        *,
        user_ids: Sequence[str] = (),
        user_principal_ids: Sequence[str] = (),
        group_principal_ids: Sequence[str] = (),
        scopes: Sequence[Scope] = (Scope.GLOBAL, Scope.CLUSTER, Scope.PROJECT),
    ) -> Sequence[RoleBinding]:
        """Bindings of the given scopes (all by default) held by any of the given subjects (fresh, re-checked)."""
        ...

    async def list_target_bindings(self, cluster_id: str, project_id: str | None) -> Sequence[RoleBinding]:
        """Every binding on one cluster (CRTBs) or one project (PRTBs); terminating ones flagged."""
        ...

    async def list_all_bindings(self) -> Sequence[RoleBinding]:
        """Every CRTB and PRTB (each collection listed once); terminating ones flagged."""
        ...

    async def list_labelled_bindings(self, label_key: str) -> Sequence[RoleBinding]:
        """Every CRTB/PRTB carrying the given label key (the bot's own tagged bindings); terminating ones flagged."""
        ...

    async def get_binding(self, binding: RoleBinding) -> RoleBinding | None:
        """The binding as Rancher holds it now, or None when it is gone."""
        ...

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
        """Create a CRTB (no project) or PRTB for one subject (a user id, a user principal or a group principal)
        with a deterministic name; an existing same-named one for that role and subject is returned."""
        ...

    async def delete_binding(self, binding: RoleBinding) -> Deletion:
        """Delete a CRTB/PRTB: gone, already gone (nothing deleted), or terminating (finalizers still run)."""
        ...


# --- notifications -----------------------------------------------------------------------------------


Blocks = list[dict[str, Any]]


class NoticeRenderer(Protocol):
    """Turns a text-free notice into Slack text and blocks (bot.slack.notices implements it)."""

    def render(self, notice: Notice) -> tuple[str, Blocks]:
        """Fallback text and Block Kit blocks for one notice."""
        ...
