"""Frozen values the whole bot speaks: identities, Rancher RBAC objects, grants and audit events."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import NewType

from bot.core.groups import policy_names

SlackUserId = NewType("SlackUserId", str)


class LinkStatus(StrEnum):
    """Whether an identity link may still be used.

    RELINK: the IdP wants the user to sign in again (MFA, sign-in frequency); the user cannot request or approve,
    their grants stay until `LinkRecord.relink_by`, then the link is revoked unless they linked again.
    """

    ACTIVE = "active"
    RELINK = "relink_needed"
    REVOKED = "revoked"


@dataclass(frozen=True)
class Identity:
    """A Slack user linked to an IdP subject, with the groups the IdP last reported."""

    slack_user: str
    team_id: str
    issuer: str
    subject: str
    email: str
    name: str
    groups: tuple[str, ...]
    linked_at: int
    refreshed_at: int
    status: LinkStatus = LinkStatus.ACTIVE
    token_expires_at: int | None = None
    principal_subject: str = ""
    group_names: tuple[tuple[str, str], ...] = ()

    @property
    def rancher_subject(self) -> str:
        """The value Rancher names this user by (`rancher.user_principal_claim`; `sub` for older links)."""
        return self.principal_subject or self.subject

    @property
    def names(self) -> dict[str, str]:
        """Display names of groups, by group id (where the group source gave them)."""
        return dict(self.group_names)

    @property
    def policy_groups(self) -> tuple[str, ...]:
        """What the policy matches: the group ids and their display names."""
        return policy_names(self.groups, self.names)


@dataclass(frozen=True)
class LinkRecord:
    """A stored link: the identity plus the sealed refresh token and the refresh job's bookkeeping."""

    identity: Identity
    sealed_refresh_token: str | None = None
    refresh_failures: int = 0
    next_refresh_at: int | None = None
    revoked_at: int | None = None
    revoked_reason: str = ""
    relink_by: int | None = None

    @property
    def monitored(self) -> bool:
        """True when the bot holds a refresh token, so the IdP is asked about this user again."""
        return bool(self.sealed_refresh_token)

    def __repr__(self) -> str:
        return f"LinkRecord({self.identity.slack_user}, {self.identity.status.value}, token=<redacted>)"


@dataclass(frozen=True)
class LoginAttempt:
    """One `/access link` in progress: the OAuth state, nonce and sealed PKCE verifier, bound to a browser later."""

    id: str
    team_id: str
    slack_user: str
    state: str
    nonce: str
    sealed_verifier: str
    created_at: int
    expires_at: int
    cookie_hash: str | None = None
    started_at: int | None = None
    used_at: int | None = None
    sealed_pending: str | None = None
    """A verified login held for the person's confirmation (only with `require_email_match: false`)."""
    confirm_hash: str | None = None
    pending_until: int | None = None

    def __repr__(self) -> str:
        return f"LoginAttempt({self.id[:6]}…, {self.slack_user}, <redacted>)"


@dataclass(frozen=True)
class VerifiedLogin:
    """What a validated OIDC login (or refresh) told us about the user.

    `groups` is None when the groups claim was absent (never "no groups"); `groups_overage` is True when the IdP
    said the groups live elsewhere (Entra's `_claim_names` / `hasgroups`). `principal_subject` is the value of
    `rancher.user_principal_claim` ("" when absent). `claims` are the merged ID-token and userinfo claims.
    """

    issuer: str
    subject: str
    email: str
    email_verified: bool | None
    name: str
    groups: tuple[str, ...] | None
    refresh_token: str | None
    access_token_expires_at: int | None
    principal_subject: str = ""
    groups_overage: bool = False
    claims: Mapping[str, object] = field(default_factory=dict, compare=False, repr=False)


class Scope(StrEnum):
    """Where a Rancher right applies."""

    GLOBAL = "global"
    CLUSTER = "cluster"
    PROJECT = "project"


@dataclass(frozen=True)
class Target:
    """A cluster or a project inside one (`project_id` is Rancher's `c-xxxxx:p-yyyyy`)."""

    cluster_id: str
    project_id: str | None = None

    @property
    def scope(self) -> Scope:
        """CLUSTER or PROJECT."""
        return Scope.PROJECT if self.project_id else Scope.CLUSTER

    @property
    def key(self) -> str:
        """Stable text form used in the database: the project id, else the cluster id."""
        return self.project_id or self.cluster_id


@dataclass(frozen=True)
class Cluster:
    """A Rancher cluster (`id` is `local`, `c-xxxxx` or `c-m-xxxxxxxx`; `name` is the display name)."""

    id: str
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Project:
    """A Rancher project (`id` is `<clusterId>:<projectName>`)."""

    id: str
    name: str
    cluster_id: str


@dataclass(frozen=True)
class PolicyRule:
    """One Kubernetes RBAC rule of a role template or global role (`*` matches anything)."""

    api_groups: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()


@dataclass(frozen=True)
class RoleTemplate:
    """A Rancher role template; `context` is `cluster`, `project` or empty; `inherits` its `roleTemplateIds`."""

    id: str
    name: str
    context: str
    hidden: bool = False
    locked: bool = False
    builtin: bool = False
    inherits: tuple[str, ...] = ()
    rules: tuple[PolicyRule, ...] = ()


@dataclass(frozen=True)
class GlobalRole:
    """A Rancher global role: its rules and the cluster roles it implies in every non-local cluster."""

    id: str
    name: str
    inherited_cluster_roles: tuple[str, ...] = ()
    rules: tuple[PolicyRule, ...] = ()
    builtin: bool = False


@dataclass(frozen=True)
class RancherUser:
    """A Rancher user and the principal ids it answers to."""

    id: str
    name: str
    principal_ids: tuple[str, ...]
    enabled: bool = True


@dataclass(frozen=True)
class RoleBinding:
    """One Rancher binding of any scope (GRB, CRTB or PRTB), normalised."""

    id: str
    scope: Scope
    role_id: str
    cluster_id: str | None = None
    project_id: str | None = None
    user_id: str | None = None
    user_principal_id: str | None = None
    group_principal_id: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    name: str = ""
    terminating: bool = False  # `removed` is set: deleted, waiting for finalizers (downstream RBAC still in place)
    uid: str = ""  # Kubernetes' metadata.uid (v3 `uuid`, norman types/mapper/metadata.go): new for every object

    @property
    def target(self) -> Target | None:
        """The cluster or project this binding applies to (None for global bindings)."""
        if self.scope is Scope.GLOBAL or self.cluster_id is None:
            return None
        return Target(self.cluster_id, self.project_id)


class Deletion(StrEnum):
    """What a DELETE of a binding found: it is gone now, it was already gone, or it is terminating."""

    GONE = "gone"  # 204, or 200 and already purged
    ALREADY_GONE = "already_gone"  # 404: nothing was deleted by this call
    TERMINATING = "terminating"  # 200 with `removed`: finalizers still run


@dataclass(frozen=True)
class PrincipalSet:
    """Who a linked user is in Rancher: the user principal, the group principals and the user id if known."""

    user_principal_id: str
    group_principal_ids: tuple[str, ...]
    user_id: str | None = None
    principal_ids: tuple[str, ...] = ()
    group_names: Mapping[str, str] = field(default_factory=dict)  # principal id -> IdP group name


class GrantState(StrEnum):
    """Lifecycle of an access request and the grant it becomes."""

    REQUESTED = "requested"
    APPROVED = "approved"
    DENIED = "denied"
    WITHDRAWN = "withdrawn"
    EXPIRED_REQUEST = "expired_request"
    ACTIVATING = "activating"
    ACTIVE = "active"
    REVOKING = "revoking"
    EXPIRED = "expired"
    REVOKED = "revoked"
    FAILED = "failed"


@dataclass(frozen=True)
class Approval:
    """One approver's decision on a request: the Slack account that clicked and the IdP identity behind it."""

    approver: str
    decision: str  # "approve" | "deny"
    at: int
    comment: str = ""
    issuer: str = ""
    subject: str = ""

    @property
    def person(self) -> str:
        """Who decided, as a person: the IdP identity (issuer and subject), else the Slack account (old rows)."""
        return person_key(self.issuer, self.subject) if self.subject else f"slack:{self.approver}"


def person_key(issuer: str, subject: str) -> str:
    """One person as the IdP knows them: two Slack accounts linked to one identity are one person."""
    return f"{issuer}|{subject}"


@dataclass(frozen=True)
class Grant:
    """A request for a role on a target, and the time-boxed binding it becomes."""

    id: str
    slack_user: str
    subject: str
    target: Target
    role_id: str
    duration_s: int
    rule: str
    state: GrantState
    requested_at: int
    reason: str = ""
    ticket: str = ""
    break_glass: bool = False
    self_service: bool = False
    approvals_required: int = 0
    approvals: tuple[Approval, ...] = ()
    activated_at: int | None = None
    expires_at: int | None = None
    ended_at: int | None = None
    binding_id: str | None = None
    binding_name: str | None = None
    user_principal_id: str | None = None
    extensions: int = 0
    failure: str = ""
    via_groups: tuple[str, ...] = ()
    request_expires_at: int | None = None
    drifted: bool = False
    updated_at: int | None = None  # when the state last changed (stores set it; used to spot stuck grants)
    attempts: int = 0  # failed revocation attempts so far (the sweep's backoff)
    next_attempt_at: int = 0  # when the sweep retries a failed revocation (0: not scheduled)
    overdue_alerted: int = 0  # 0 never, 1 alerted as overdue, 2 alerted and resolved


@dataclass(frozen=True)
class GrantChange:
    """Columns of a grant to set in a compare-and-set update; None leaves a column as it is."""

    state: GrantState | None = None
    activated_at: int | None = None
    expires_at: int | None = None
    ended_at: int | None = None
    duration_s: int | None = None
    binding_id: str | None = None
    binding_name: str | None = None
    extensions: int | None = None
    failure: str | None = None
    drifted: bool | None = None
    attempts: int | None = None
    next_attempt_at: int | None = None
    overdue_alerted: int | None = None


@dataclass(frozen=True)
class HistoryEntry:
    """One state change of a grant (`from_state` None for its creation)."""

    grant_id: str
    from_state: str | None
    to_state: str
    at: int
    actor: str
    reason: str = ""


@dataclass(frozen=True)
class AuditEvent:
    """One row of the append-only, hash-chained audit log; `details_json` is exactly the text the hash covers."""

    id: int
    ts: int
    actor: str
    action: str
    target: str
    outcome: str
    reason: str
    request_id: str
    details_json: str
    prev_hash: str
    hash: str
    key_id: str = ""  # the key the hash was made with (HMAC); empty for events from before the chain was keyed

    @property
    def details(self) -> dict[str, object]:
        """The details as a mapping."""
        value = json.loads(self.details_json)
        return value if isinstance(value, dict) else {}


@dataclass(frozen=True)
class ChainHead:
    """The newest audit event's id and hash, kept apart from the rows (0 and the genesis hash when empty)."""

    last_id: int
    last_hash: str


class OutboxStatus(StrEnum):
    """Where a queued Slack message stands (legal moves: core.outbox_lifecycle)."""

    PENDING = "pending"
    SENT = "sent"
    PARKED = "parked"
    DROPPED = "dropped"


class Priority(IntEnum):
    """Which queued messages go first (lower first): security and approval posts before DMs, DMs before edits."""

    URGENT = 0
    NORMAL = 1
    BULK = 2


@dataclass(frozen=True)
class OutboxMessage:
    """A Slack message the bot owes; delivered by the outbox job, at most once per idempotency key.

    `order_key` names the Slack message it posts or edits (`grant:g-1`): messages sharing one are sent in queue
    order; every other message may overtake. `first_failed_at` is when its first transient failure happened.
    """

    id: int
    key: str
    kind: str  # "post" | "dm" | "update" | "file"
    channel: str
    payload: Mapping[str, object]
    attempts: int = 0
    next_attempt_at: int = 0
    created_at: int = 0
    sent_at: int | None = None
    last_error: str = ""
    status: OutboxStatus = OutboxStatus.PENDING
    priority: Priority = Priority.NORMAL
    order_key: str = ""
    first_failed_at: int | None = None
