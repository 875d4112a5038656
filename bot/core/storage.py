"""Storage ports, one per concept, taking and returning core values; adapters.store implements every one (the access
review ports live in core.review_storage, bundled here in `Storage`).

Every method is short and synchronous. A use case that changes several things (a grant, its history, an audit
event, the notifications it owes) does it inside one `Transactions.atomic()` block, and never awaits a network
call inside it. Every change that can race is a compare-and-set that says whether it won.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

from bot.core.digest import AuditEventLike
from bot.core.grant_lifecycle import ExtensionRequest, ExtensionState
from bot.core.model import (
    Approval,
    AuditEvent,
    ChainHead,
    Grant,
    GrantChange,
    GrantState,
    HistoryEntry,
    LinkRecord,
    LoginAttempt,
    OutboxMessage,
    OutboxStatus,
    Priority,
    Target,
)
from bot.core.review_storage import ReviewStore, StandingSamples


class Transactions(Protocol):
    """Groups changes into one transaction."""

    def atomic(self) -> AbstractContextManager[None]:
        """One transaction (nestable as savepoints); an exception rolls back everything inside it.

        While a job runs under a fence (core.fencing), every transaction that writes first checks that the lease
        still has the job's owner and token, and raises FencedOut (changing nothing) when it does not.
        """
        ...


class Database(Protocol):
    """The database itself: health, schema version and the connection's life."""

    def ping(self) -> bool:
        """True when the database answers a query."""
        ...

    def pending_migrations(self) -> list[str]:
        """Names of migrations not applied yet (empty when the schema is current)."""
        ...

    def applied_migrations(self) -> list[str]:
        """Names of the migrations already applied."""
        ...

    def migrate(self) -> list[str]:
        """Apply pending migrations; return the names applied now."""
        ...

    def close(self) -> None:
        """Close the connection."""
        ...


class GrantStore(Protocol):
    """Grants, their approvals and their state history."""

    def new_id(self) -> str:
        """Allocate the next grant id (`g-1`, `g-2`, …)."""
        ...

    def insert(self, grant: Grant, now: int) -> None:
        """Store a new grant."""
        ...

    def get(self, grant_id: str) -> Grant | None:
        """A grant by id, with its approvals."""
        ...

    def update(self, grant_id: str, expected: Collection[GrantState], change: GrantChange, now: int) -> bool:
        """Apply `change` only while the grant is in one of `expected` (compare-and-set); True when it won."""
        ...

    def find(
        self,
        *,
        slack_user: str | None = None,
        states: Collection[GrantState] = (),
        target: Target | None = None,
        limit: int = 1000,
    ) -> list[Grant]:
        """Grants filtered by holder, state and target, newest first."""
        ...

    def claim_due(self, now: int, limit: int = 10000) -> list[Grant]:
        """Atomically move every active grant whose expiry has passed to `revoking`; return them."""
        ...

    def revocations_due(self, now: int, stale_before: int, limit: int = 10000) -> list[Grant]:
        """`revoking` grants whose retry time has come, or never retried and untouched since `stale_before`."""
        ...

    def overdue(self, expired_before: int, limit: int = 1000) -> list[Grant]:
        """Active or revoking grants that expired before `expired_before` and were not alerted on yet."""
        ...

    def overdue_resolved(self, limit: int = 1000) -> list[Grant]:
        """Grants alerted as overdue that have left active/revoking since (not yet reported resolved)."""
        ...

    def between(self, since: int, until: int, limit: int = 100000) -> list[Grant]:
        """Grants requested in [since, until) or active at some moment of it, oldest first."""
        ...

    def counts(self) -> dict[str, int]:
        """Number of grants per state."""
        ...

    def add_approval(self, grant_id: str, approval: Approval) -> bool:
        """Record one decision once per Slack account and per IdP identity; False when either already decided."""
        ...

    def add_history(self, entry: HistoryEntry) -> None:
        """Record one state change."""
        ...

    def add_history_many(self, entries: Sequence[HistoryEntry]) -> None:
        """Record several state changes at once (one bulk insert)."""
        ...

    def history(self, grant_id: str) -> list[HistoryEntry]:
        """State changes of a grant, oldest first."""
        ...


class ExtensionStore(Protocol):
    """Requests to extend grants, one per (grant, extension number)."""

    def open(self, request: ExtensionRequest) -> bool:
        """Store a new request unless one exists for that grant and number; True when stored."""
        ...

    def get(self, grant_id: str, number: int) -> ExtensionRequest | None:
        """One request with its approvers."""
        ...

    def add_approver(self, grant_id: str, number: int, approver: str, at: int) -> bool:
        """Record one approval once; False when that approver already approved."""
        ...

    def move(
        self, grant_id: str, number: int, expected: Collection[ExtensionState], to: ExtensionState, *, by: str, at: int
    ) -> bool:
        """Change a request's state only while it is in one of `expected` (compare-and-set); True when it won."""
        ...


class LinkStore(Protocol):
    """Identity links between Slack users and IdP subjects."""

    def get(self, slack_user: str) -> LinkRecord | None:
        """The link of a Slack user (active or revoked)."""
        ...

    def active_by_subject(self, issuer: str, subject: str) -> LinkRecord | None:
        """The live link of an IdP subject (active, or waiting for the user to sign in again)."""
        ...

    def active(self) -> list[LinkRecord]:
        """Every active link, oldest first."""
        ...

    def save(self, record: LinkRecord) -> None:
        """Insert or wholly replace a link."""
        ...

    def revoke(self, slack_user: str, at: int, reason: str) -> None:
        """Mark a link revoked and forget its refresh token."""
        ...

    def swap_refresh_token(
        self, slack_user: str, old: str | None, new: str | None, token_expires_at: int | None
    ) -> bool:
        """Replace the sealed refresh token only while it is still `old` (compare-and-swap); True when it won."""
        ...

    def record_refresh(
        self,
        slack_user: str,
        *,
        email: str,
        name: str,
        groups: tuple[str, ...],
        at: int,
        token_expires_at: int | None,
        next_refresh_at: int,
        group_names: tuple[tuple[str, str], ...] = (),
    ) -> None:
        """Store what a successful refresh reported (groups with their display names) and when the next is due."""
        ...

    def record_refresh_failure(self, slack_user: str, failures: int, next_refresh_at: int) -> None:
        """Count a failed refresh and when to try again."""
        ...

    def mark_relink(self, slack_user: str, by: int, reason: str) -> bool:
        """Move an active link to `relink_needed` until `by` (compare-and-set on active); True when it moved."""
        ...

    def relink_overdue(self, now: int) -> list[LinkRecord]:
        """Links still waiting for a new sign-in whose deadline passed at `now`."""
        ...

    def count_unmonitored(self) -> int:
        """Active links the bot holds no refresh token for (never re-checked at the IdP)."""
        ...


class LoginAttemptStore(Protocol):
    """Link attempts between `/access link` and the IdP's callback."""

    def insert(self, attempt: LoginAttempt) -> None:
        """Store a new attempt."""
        ...

    def get(self, attempt_id: str) -> LoginAttempt | None:
        """An attempt by id."""
        ...

    def by_state(self, state: str) -> LoginAttempt | None:
        """An attempt by its OAuth state."""
        ...

    def start(self, attempt_id: str, cookie_hash: str, now: int) -> bool:
        """Bind an unused, unexpired attempt to a browser cookie, once; True when this call bound it."""
        ...

    def use(self, attempt_id: str, now: int) -> bool:
        """Mark an attempt used, once (compare-and-set); False when it already was."""
        ...

    def hold(self, attempt_id: str, sealed_login: str, confirm_hash: str, until: int) -> None:
        """Keep a verified login on its (used) attempt until the person confirms or declines it."""
        ...

    def by_confirm(self, confirm_hash: str) -> LoginAttempt | None:
        """The attempt whose held login the confirmation token (by hash) belongs to."""
        ...

    def take(self, attempt_id: str, sealed_login: str) -> bool:
        """Release a held login, once (compare-and-set); False when another request took it first."""
        ...

    def unconfirmed(self, now: int) -> list[LoginAttempt]:
        """Attempts whose held login nobody confirmed in time."""
        ...

    def purge(self, before: int) -> int:
        """Delete attempts that expired before `before` (none still holding a login); return how many."""
        ...


class AuditStore(Protocol):
    """The append-only audit log; chaining is the audit service's job, the store only appends in order."""

    def head(self) -> ChainHead:
        """The newest event's id and hash as kept apart from the rows."""
        ...

    def append(self, event: AuditEvent, expected: ChainHead) -> bool:
        """Add `event` and move the head to it, only while the head is still `expected`; True when it won."""
        ...

    def append_many(self, events: Sequence[AuditEvent], expected: ChainHead) -> bool:
        """Add `events` (chained in order onto `expected`) and move the head to the last, only while the head is
        still `expected`; True when it won (nothing is written when it lost)."""
        ...

    def newest(self) -> AuditEvent | None:
        """The event with the highest id, if any."""
        ...

    def events(self, since: int | None = None, until: int | None = None, batch: int = 5000) -> Iterator[AuditEvent]:
        """Events in id order, optionally with ts in [since, until), streamed in batches."""
        ...

    def action_counts(self, since: int, until: int) -> dict[str, int]:
        """Events per action with ts in [since, until)."""
        ...

    def digest_rows(self, since: int, until: int, actions: Collection[str]) -> Iterator[AuditEventLike]:
        """Only events of the given actions in [since, until), only the columns a digest reads."""
        ...

    def count(self) -> int:
        """Number of events."""
        ...


class OutboxStore(Protocol):
    """Slack messages the bot owes, and where the ones it posted went (statuses: core.outbox_lifecycle)."""

    def enqueue(
        self,
        *,
        key: str,
        kind: str,
        channel: str,
        payload: Mapping[str, object],
        now: int,
        priority: Priority = Priority.NORMAL,
        order_key: str = "",
    ) -> bool:
        """Add a pending message unless one with the same idempotency key exists; True when added."""
        ...

    def due(self, now: int, limit: int = 50) -> list[OutboxMessage]:
        """Pending messages whose next attempt is due, most urgent first, then oldest first."""
        ...

    def heads(self, order_keys: Collection[str]) -> dict[str, int]:
        """The id of the oldest pending message of each given order key (keys with none pending are left out)."""
        ...

    def get(self, key: str) -> OutboxMessage | None:
        """One message by idempotency key."""
        ...

    def by_id(self, message_id: int) -> OutboxMessage | None:
        """One message by id."""
        ...

    def listing(self, statuses: Collection[OutboxStatus], limit: int = 100) -> list[OutboxMessage]:
        """Messages in the given statuses, oldest first."""
        ...

    def mark_sent(self, message_id: int, now: int, result_ts: str = "") -> bool:
        """Record a delivered message (pending → sent); False when it was not pending any more."""
        ...

    def retry_later(self, message_id: int, error: str, next_attempt_at: int, now: int) -> None:
        """Record a transient failure: one more attempt, the error, when to try again, since when it fails."""
        ...

    def move(
        self, message_id: int, expected: Collection[OutboxStatus], to: OutboxStatus, *, now: int, reason: str = ""
    ) -> bool:
        """Compare-and-set the status (park, drop, retry); a retry makes it due at `now` with a fresh count."""
        ...

    def pending_count(self) -> int:
        """Messages not delivered yet (pending)."""
        ...

    def counts(self) -> dict[str, int]:
        """Messages per status."""
        ...

    def message_ref(self, ref: str) -> tuple[str, str] | None:
        """(channel, ts) of the message the bot posted under `ref`."""
        ...

    def set_message_ref(self, ref: str, channel: str, ts: str) -> None:
        """Remember where the message for `ref` was posted."""
        ...


class LeaseStore(Protocol):
    """Named leases that one process holds at a time."""

    def take(self, name: str, owner: str, now: int, ttl: int) -> int | None:
        """Take or renew `name` for `owner` when free, expired or already `owner`'s.

        Returns the lease's fencing token when `owner` holds it (it grows each time the lease changes hands,
        never on renewal), else None.
        """
        ...

    def holder(self, name: str, now: int) -> str | None:
        """Who holds an unexpired lease, if anyone."""
        ...

    def release(self, name: str, owner: str) -> None:
        """Give up a lease held by `owner` (its token is kept, so the next holder's is larger)."""
        ...


class JobMarks(Protocol):
    """Small named facts the jobs remember (a digest period posted, a binding reported), set once."""

    def get(self, key: str) -> str | None:
        """The value under `key`, if set."""
        ...

    def claim(self, key: str, value: str, now: int) -> bool:
        """Set `key` only if it is not set yet; True when this call set it."""
        ...


class ReplayCache(Protocol):
    """Signatures of requests already accepted, shared by every process on the database and kept across restarts."""

    def remember(self, key: str, expires_at: int, now: int) -> bool:
        """Store `key` until `expires_at`; False when it is already stored and not yet expired (a replay)."""
        ...


@dataclass(frozen=True)
class Storage:
    """Every storage port of one database; services receive only the ports they use."""

    database: Database
    tx: Transactions
    grants: GrantStore
    extensions: ExtensionStore
    links: LinkStore
    attempts: LoginAttemptStore
    audit: AuditStore
    outbox: OutboxStore
    leases: LeaseStore
    marks: JobMarks
    replays: ReplayCache
    reviews: ReviewStore
    standing: StandingSamples
