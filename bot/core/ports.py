"""Protocols the services need from the edges; adapters implement them, wiring.py connects them."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from bot.core.model import (
    Approval,
    Cluster,
    GlobalRole,
    Grant,
    GrantState,
    Identity,
    OutboxMessage,
    Project,
    RancherUser,
    RoleBinding,
    RoleTemplate,
    VerifiedLogin,
)

Row = dict[str, Any]


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

    async def upload(self, channel: str, filename: str, content: bytes, comment: str) -> None:
        """Upload a file into a channel."""
        ...

    async def user_email(self, user: str) -> str | None:
        """The Slack profile email of a user, or None when Slack has none."""
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


# --- Rancher -----------------------------------------------------------------------------------------


class RancherApi(Protocol):
    """What the services need from Rancher's v3 API (implemented by adapters.rancher.RancherClient)."""

    async def me(self) -> RancherUser:
        """The user the API key belongs to."""
        ...

    async def server_version(self) -> str:
        """Rancher's version string, e.g. `v2.12.3`."""
        ...

    async def get_user(self, user_id: str) -> RancherUser | None:
        """A user by id, or None."""
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
    ) -> Sequence[RoleBinding]:
        """Global, cluster and project bindings held by any of the given subjects (fresh, re-checked)."""
        ...

    async def list_target_bindings(self, cluster_id: str, project_id: str | None) -> Sequence[RoleBinding]:
        """Every binding on one cluster (CRTBs) or one project (PRTBs)."""
        ...

    async def list_labelled_bindings(self, label_key: str) -> Sequence[RoleBinding]:
        """Every CRTB/PRTB carrying the given label key (the bot's own tagged bindings)."""
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
    ) -> RoleBinding:
        """Create a CRTB (no project) or PRTB with a deterministic name; an existing same-named one is returned."""
        ...

    async def delete_binding(self, binding: RoleBinding) -> bool:
        """Delete a CRTB/PRTB; False when it was already gone."""
        ...


# --- storage -----------------------------------------------------------------------------------------


class Store(Protocol):
    """The SQLite store as the services see it (implemented by adapters.store.Store)."""

    def pending_migrations(self) -> list[str]:
        """Names of migrations not applied yet (empty when the schema is current)."""
        ...

    def ping(self) -> bool:
        """True when the database answers a query."""
        ...

    def atomic(self) -> AbstractContextManager[None]:
        """One transaction (nestable as savepoints); rolls back everything on an exception."""
        ...

    def next_value(self, name: str) -> int:
        """Increment and return a named counter (e.g. grant numbers)."""
        ...

    def append_audit(
        self,
        *,
        ts: int,
        actor: str,
        action: str,
        target: str,
        outcome: str,
        reason: str,
        request_id: str,
        details: Mapping[str, object],
    ) -> Row:
        """Append one hash-chained audit row (inside the caller's transaction if there is one)."""
        ...

    def audit_head(self) -> tuple[int, str]:
        """(id, hash) of the newest audit row, as recorded apart from the rows."""
        ...

    def audit_rows(self, since: int | None = None, until: int | None = None, batch: int = 5000) -> Iterator[Row]:
        """Audit rows in id order, optionally within [since, until) by ts, streamed in batches."""
        ...

    def audit_action_counts(self, since: int, until: int) -> dict[str, int]:
        """Rows per action with ts in [since, until)."""
        ...

    def audit_detail_rows(self, since: int, until: int, actions: Iterable[str]) -> Iterator[Any]:
        """Only rows of the given actions in [since, until), the columns a digest reads."""
        ...

    def open_reader(self) -> Store:
        """A second connection to the same database, for long reads in another thread."""
        ...

    def close(self) -> None:
        """Close the connection."""
        ...

    def audit_count(self) -> int:
        """Number of audit rows."""
        ...

    def enqueue(self, *, key: str, kind: str, channel: str, payload: Mapping[str, object], now: int) -> bool:
        """Add a message to the outbox unless one with the same idempotency key exists; True when added."""
        ...

    def due_outbox(self, now: int, limit: int = 50) -> list[OutboxMessage]:
        """Unsent messages whose next attempt is due, oldest first."""
        ...

    def outbox_message(self, key: str) -> OutboxMessage | None:
        """One outbox message by idempotency key."""
        ...

    def mark_outbox_sent(self, message_id: int, now: int, result_ts: str = "") -> None:
        """Record a delivered message."""
        ...

    def mark_outbox_failed(self, message_id: int, error: str, next_attempt_at: int) -> None:
        """Record a failed delivery and when to try again."""
        ...

    def outbox_pending_count(self) -> int:
        """Messages not delivered yet."""
        ...

    def message_ref(self, key: str) -> tuple[str, str] | None:
        """(channel, ts) of a message the bot posted under `key`."""
        ...

    def set_message_ref(self, key: str, channel: str, ts: str) -> None:
        """Remember where the message for `key` was posted."""
        ...

    def try_lease(self, name: str, owner: str, now: int, ttl: int) -> bool:
        """Take or renew the lease `name` for `owner` (compare-and-set); True when `owner` holds it now."""
        ...

    def lease_holder(self, name: str, now: int) -> str | None:
        """Who holds an unexpired lease, if anyone."""
        ...

    def release_lease(self, name: str, owner: str) -> None:
        """Give up a lease held by `owner`."""
        ...

    def get_state(self, key: str) -> str | None:
        """A small named value kept by jobs (e.g. the last digest period)."""
        ...

    def set_state(self, key: str, value: str, now: int) -> None:
        """Set a named job value."""
        ...

    def claim_state(self, key: str, value: str, now: int) -> bool:
        """Set a named value only if it is not set yet; True when this call set it."""
        ...

    def insert_attempt(self, row: Row) -> None:
        """Store a new login attempt (state, nonce, sealed PKCE verifier, expiry)."""
        ...

    def attempt(self, attempt_id: str) -> Row | None:
        """A login attempt by id."""
        ...

    def attempt_by_state(self, state: str) -> Row | None:
        """A login attempt by its OAuth state."""
        ...

    def start_attempt(self, attempt_id: str, cookie_hash: str, now: int) -> bool:
        """Bind an attempt to a browser cookie the first time its start link is opened."""
        ...

    def use_attempt(self, attempt_id: str, now: int) -> bool:
        """Mark an attempt used exactly once (compare-and-set); False when it already was."""
        ...

    def purge_attempts(self, before: int) -> int:
        """Delete attempts that expired before `before`."""
        ...

    def link_row(self, slack_user: str) -> Row | None:
        """The raw link row of a Slack user (including the sealed refresh token)."""
        ...

    def link(self, slack_user: str) -> Identity | None:
        """The identity linked to a Slack user (active or revoked), or None."""
        ...

    def link_by_subject(self, issuer: str, subject: str) -> Identity | None:
        """The active link of an IdP subject, or None."""
        ...

    def save_link(self, row: Row) -> None:
        """Insert or fully replace a link row."""
        ...

    def update_link(self, slack_user: str, fields: Mapping[str, object]) -> None:
        """Change some columns of a link."""
        ...

    def swap_refresh_token(
        self, slack_user: str, old: str | None, new: str | None, fields: Mapping[str, object]
    ) -> bool:
        """Replace the sealed refresh token only if it is still `old` (compare-and-swap); True on success."""
        ...

    def active_links(self) -> list[Identity]:
        """Every active link."""
        ...

    def active_link_rows(self) -> list[Row]:
        """Every active link row (with sealed tokens), for the refresh job."""
        ...

    @staticmethod
    def identity(row: Row) -> Identity:
        """Convert a link row to the core value."""
        ...

    def new_grant_id(self) -> str:
        """Allocate the next grant id (`g-1`, `g-2`, …)."""
        ...

    def insert_grant(self, grant: Grant, now: int) -> None:
        """Store a new grant."""
        ...

    def grant(self, grant_id: str) -> Grant | None:
        """A grant by id (with its approvals)."""
        ...

    def transition_grant(
        self, grant_id: str, expected: Sequence[GrantState], fields: Mapping[str, object], now: int
    ) -> bool:
        """Update a grant only if it is in one of `expected` states (compare-and-set); True on success."""
        ...

    def grants(
        self,
        *,
        slack_user: str | None = None,
        states: Sequence[GrantState] = (),
        target_key: str | None = None,
        limit: int = 1000,
    ) -> list[Grant]:
        """Grants filtered by holder, state and target, newest first."""
        ...

    def due_grants(self, now: int, limit: int = 1000) -> list[Grant]:
        """Active grants whose expiry has passed."""
        ...

    def claim_due_grants(self, now: int, limit: int = 10000) -> list[Grant]:
        """Atomically move due active grants to `revoking` and return them."""
        ...

    def add_approval(self, grant_id: str, approval: Approval) -> bool:
        """Record one approver's decision once; False when that approver already decided."""
        ...

    def approvals(self, grant_id: str) -> tuple[Approval, ...]:
        """Decisions recorded on a grant, in order."""
        ...

    def add_history(  # noqa: PLR0917 - mirrors the history columns
        self, grant_id: str, from_state: str | None, to_state: str, at: int, actor: str, reason: str = ""
    ) -> None:
        """Record one state change of a grant."""
        ...

    def grant_history(self, grant_id: str) -> list[Row]:
        """State changes of a grant, oldest first."""
        ...

    def grant_counts(self) -> dict[str, int]:
        """Number of grants per state (for /metrics)."""
        ...

    def revocations_due(self, now: int, stale_before: int, limit: int = 10000) -> list[Grant]:
        """Grants left in `revoking` whose retry time has come, or never retried and untouched since `stale_before`."""
        ...

    def grant_retry(self, grant_id: str) -> tuple[int, int, int]:
        """(attempts, next_attempt_at, overdue_alerted) of a grant; zeros when unknown."""
        ...

    def overdue_grants(self, expired_before: int, limit: int = 1000) -> list[Grant]:
        """Active or revoking grants that expired before `expired_before` and were not alerted on yet."""
        ...

    def overdue_resolved(self, limit: int = 1000) -> list[Grant]:
        """Grants alerted as overdue (overdue_alerted = 1) that have left active/revoking since."""
        ...

    def grants_between(self, since: int, until: int, limit: int = 100000) -> list[Grant]:
        """Grants requested in [since, until) or active at some moment of it, oldest first."""
        ...
