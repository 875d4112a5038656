"""The storage contract: what every store adapter must do, tested only through the ports of core.storage.

Each test takes `storage`, parametrised over every adapter: a SQLite file and a fresh database on a real
PostgreSQL server (the `postgres_url` fixture; skipped only where the server is not installed, required in CI).
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from bot.adapters.store import open_storage
from bot.core import audit_chain, fencing
from bot.core.digest import DETAIL_ACTIONS, build_digest
from bot.core.errors import FencedOut
from bot.core.grant_lifecycle import OPEN, ExtensionRequest, ExtensionState
from bot.core.model import (
    Approval,
    ChainHead,
    Grant,
    GrantChange,
    GrantState,
    HistoryEntry,
    LinkRecord,
    LinkStatus,
    LoginAttempt,
    OutboxStatus,
    Priority,
    Target,
)
from bot.core.storage import Storage
from bot.services.audit import AuditLog
from tests import factories
from tests.core.test_digest import CURRENT, END, START
from tests.together import run_together

S = GrantState
PAYMENTS = Target("c-1", "c-1:p-1")
CLUSTER = Target("c-1")


def _grant(storage: Storage, state: GrantState = S.REQUESTED, **fields: object) -> Grant:
    values: dict[str, object] = {
        "id": storage.grants.new_id(),
        "slack_user": "U1",
        "subject": "s1",
        "target": PAYMENTS,
        "role_id": "project-member",
        "duration_s": 3600,
        "rule": "r",
        "state": state,
        "requested_at": 100,
    }
    values.update(fields)
    return factories.grant(storage, Grant(**values), now=100)  # type: ignore[arg-type]


# --- transactions and the database ----------------------------------------------------------------------


def test_database_answers_and_is_current(storage: Storage) -> None:
    """A fresh store pings and has no pending migration."""
    assert storage.database.ping()
    assert storage.database.pending_migrations() == []
    assert storage.database.applied_migrations()


def test_failed_transaction_leaves_nothing_half_written(storage: Storage) -> None:
    """An exception inside atomic() rolls back an audit event, an outbox message and a grant together."""
    head = storage.audit.head()
    event = audit_chain.next_event(
        head, ts=1, actor="a", action="x", target="t", outcome="ok", reason="", request_id="", details={}
    )
    with pytest.raises(RuntimeError), storage.tx.atomic():
        assert storage.audit.append(event, head)
        storage.outbox.enqueue(key="k1", kind="post", channel="C1", payload={"text": "hi"}, now=1)
        _grant(storage)
        raise RuntimeError("boom")
    assert storage.audit.count() == 0
    assert storage.outbox.pending_count() == 0
    assert storage.audit.head() == ChainHead(0, audit_chain.GENESIS)
    assert storage.grants.find() == []


def test_nested_transaction_rolls_back_only_its_part(storage: Storage) -> None:
    """An exception in a nested atomic() undoes the inner changes and keeps the outer ones."""
    with storage.tx.atomic():
        storage.outbox.enqueue(key="outer", kind="dm", channel="U1", payload={}, now=1)
        with pytest.raises(RuntimeError), storage.tx.atomic():
            storage.outbox.enqueue(key="inner", kind="dm", channel="U1", payload={}, now=1)
            raise RuntimeError("inner")
    assert storage.outbox.get("outer") is not None
    assert storage.outbox.get("inner") is None


# --- grants -----------------------------------------------------------------------------------------------


def test_grant_ids_are_distinct_and_sequential(storage: Storage) -> None:
    """Grant ids are `g-1`, `g-2`, … and never repeat."""
    ids = [storage.grants.new_id() for _ in range(3)]
    assert ids == ["g-1", "g-2", "g-3"]


def test_grant_round_trips_every_field(storage: Storage) -> None:
    """A stored grant reads back equal, booleans and tuples included."""
    grant = _grant(
        storage,
        S.ACTIVE,
        reason="r",
        ticket="T-1",
        break_glass=True,
        self_service=False,
        approvals_required=2,
        activated_at=110,
        expires_at=3710,
        binding_id="p-1:prtb-x",
        binding_name="accessbot-g-1",
        user_principal_id="genericoidc_user://s1",
        via_groups=("eng", "sre"),
        drifted=True,
    )
    stored = storage.grants.get(grant.id)
    assert stored is not None
    assert (stored.break_glass, stored.drifted, stored.via_groups) == (True, True, ("eng", "sre"))
    assert (stored.target, stored.expires_at, stored.updated_at) == (PAYMENTS, 3710, 100)


def test_grant_update_is_a_compare_and_set(storage: Storage) -> None:
    """An update applies only from an expected state; the loser of a race changes nothing."""
    grant = _grant(storage)
    assert storage.grants.update(grant.id, [S.REQUESTED], GrantChange(state=S.APPROVED), 200)
    assert not storage.grants.update(grant.id, [S.REQUESTED], GrantChange(state=S.DENIED, ended_at=200), 201)
    stored = storage.grants.get(grant.id)
    assert stored is not None
    assert (stored.state, stored.ended_at, stored.updated_at) == (S.APPROVED, None, 200)


def test_grant_change_leaves_unset_columns_alone(storage: Storage) -> None:
    """Only the fields a GrantChange sets are written."""
    grant = _grant(storage, S.ACTIVE, expires_at=500, binding_id="b")
    assert storage.grants.update(grant.id, [S.ACTIVE], GrantChange(attempts=3, next_attempt_at=900), 300)
    stored = storage.grants.get(grant.id)
    assert stored is not None
    assert (stored.attempts, stored.next_attempt_at, stored.expires_at, stored.binding_id) == (3, 900, 500, "b")


def test_find_filters_by_holder_state_and_target_newest_first(storage: Storage) -> None:
    """find() filters on each criterion and returns the newest grant first."""
    a = _grant(storage)
    b = _grant(storage, S.ACTIVE, slack_user="U2")
    c = _grant(storage, S.EXPIRED, target=CLUSTER)
    assert [g.id for g in storage.grants.find()] == [c.id, b.id, a.id]
    assert [g.id for g in storage.grants.find(slack_user="U2")] == [b.id]
    assert [g.id for g in storage.grants.find(states=OPEN)] == [b.id, a.id]
    assert [g.id for g in storage.grants.find(target=CLUSTER)] == [c.id]
    assert [g.id for g in storage.grants.find(limit=1)] == [c.id]


def test_claim_due_moves_only_expired_active_grants_once(storage: Storage) -> None:
    """claim_due returns due active grants as `revoking`; a second claim finds none."""
    due = _grant(storage, S.ACTIVE, expires_at=150)
    _grant(storage, S.ACTIVE, expires_at=10_000)
    _grant(storage, S.REQUESTED, expires_at=150)
    claimed = storage.grants.claim_due(200)
    assert [(g.id, g.state) for g in claimed] == [(due.id, S.REVOKING)]
    assert storage.grants.claim_due(200) == []


def test_revocations_due_honours_retry_time_and_staleness(storage: Storage) -> None:
    """A revoking grant is due when its retry time came, or when never retried and untouched long enough."""
    retry = _grant(storage, S.REVOKING, expires_at=100, next_attempt_at=250)
    fresh = _grant(storage, S.REVOKING, expires_at=100)
    assert [g.id for g in storage.grants.revocations_due(200, stale_before=50)] == []
    assert [g.id for g in storage.grants.revocations_due(260, stale_before=100)] == [retry.id, fresh.id]


def test_overdue_and_resolved_follow_the_alert_flag(storage: Storage) -> None:
    """overdue() lists unalerted late grants; overdue_resolved() lists alerted ones that have ended."""
    late = _grant(storage, S.ACTIVE, expires_at=100)
    assert [g.id for g in storage.grants.overdue(150)] == [late.id]
    storage.grants.update(late.id, [S.ACTIVE], GrantChange(overdue_alerted=1), 160)
    assert storage.grants.overdue(150) == []
    assert storage.grants.overdue_resolved() == []
    storage.grants.update(late.id, [S.ACTIVE], GrantChange(state=S.EXPIRED, ended_at=170), 170)
    assert [g.id for g in storage.grants.overdue_resolved()] == [late.id]


def test_between_finds_grants_requested_or_active_in_a_window(storage: Storage) -> None:
    """between() includes grants requested in the window and grants active at some moment of it."""
    inside = _grant(storage, requested_at=150)
    spanning = _grant(storage, S.ACTIVE, requested_at=10, activated_at=20, expires_at=500)
    _grant(storage, S.EXPIRED, requested_at=10, activated_at=20, expires_at=50, ended_at=50)
    assert [g.id for g in storage.grants.between(100, 200)] == [inside.id, spanning.id]


def test_approvals_are_recorded_once_per_approver(storage: Storage) -> None:
    """A second decision by the same approver is refused; approvals read back in order."""
    grant = _grant(storage)
    assert storage.grants.add_approval(grant.id, Approval("U2", "approve", 200))
    assert not storage.grants.add_approval(grant.id, Approval("U2", "deny", 201))
    assert storage.grants.add_approval(grant.id, Approval("U3", "approve", 202, "ok"))
    stored = storage.grants.get(grant.id)
    assert stored is not None
    assert [(a.approver, a.decision, a.comment) for a in stored.approvals] == [
        ("U2", "approve", ""),
        ("U3", "approve", "ok"),
    ]


def test_grants_listed_many_at_once_carry_their_own_approvals(storage: Storage) -> None:
    """find() reads the approvals of a long list in chunks, and each grant gets its own, in order."""
    with storage.tx.atomic():
        grants = [_grant(storage) for _ in range(1203)]  # more than two chunks of approvals reads
        for i, grant in enumerate(grants):
            for n in range(i % 3):
                storage.grants.add_approval(grant.id, Approval(f"U{n}", "approve", 200 + n, f"{grant.id}/{n}"))
    listed = {g.id: g for g in storage.grants.find(limit=5000)}
    assert len(listed) == 1203
    for i, grant in enumerate(grants):
        assert [(a.approver, a.comment) for a in listed[grant.id].approvals] == [
            (f"U{n}", f"{grant.id}/{n}") for n in range(i % 3)
        ]
    assert listed[grants[4].id].approvals == storage.grants.get(grants[4].id).approvals  # type: ignore[union-attr]


def test_history_reads_back_in_order(storage: Storage) -> None:
    """History entries, added one by one or in bulk, come back oldest first with every field."""
    grant = _grant(storage)
    storage.grants.add_history(HistoryEntry(grant.id, None, "requested", 100, "U1", "asked"))
    storage.grants.add_history(HistoryEntry(grant.id, "requested", "approved", 110, "U2"))
    storage.grants.add_history_many(
        [
            HistoryEntry(grant.id, "approved", "active", 120, "system"),
            HistoryEntry(grant.id, "active", "revoking", 130, "system", "expired"),
        ]
    )
    storage.grants.add_history_many([])
    assert storage.grants.history(grant.id) == [
        HistoryEntry(grant.id, None, "requested", 100, "U1", "asked"),
        HistoryEntry(grant.id, "requested", "approved", 110, "U2", ""),
        HistoryEntry(grant.id, "approved", "active", 120, "system", ""),
        HistoryEntry(grant.id, "active", "revoking", 130, "system", "expired"),
    ]


def test_counts_per_state(storage: Storage) -> None:
    """counts() gives the number of grants in each state present."""
    _grant(storage)
    _grant(storage)
    _grant(storage, S.ACTIVE)
    assert storage.grants.counts() == {"requested": 2, "active": 1}


# --- extension requests ---------------------------------------------------------------------------------


def test_extension_request_opens_once_per_number(storage: Storage) -> None:
    """One request per (grant, number); a second open is refused."""
    request = ExtensionRequest("g-1", 0, 600, 100, "U1")
    assert storage.extensions.open(request)
    assert not storage.extensions.open(ExtensionRequest("g-1", 0, 60, 101, "U1"))
    assert storage.extensions.open(ExtensionRequest("g-1", 1, 60, 101, "U1"))
    stored = storage.extensions.get("g-1", 0)
    assert stored == request


def test_extension_moves_are_compare_and_set_and_keep_the_first_decider(storage: Storage) -> None:
    """A move applies only from an expected state; approvers are recorded once each."""
    X = ExtensionState
    storage.extensions.open(ExtensionRequest("g-1", 0, 600, 100, "U1"))
    assert storage.extensions.add_approver("g-1", 0, "U2", 110)
    assert not storage.extensions.add_approver("g-1", 0, "U2", 111)
    assert storage.extensions.move("g-1", 0, [X.PENDING], X.APPROVED, by="U2", at=120)
    assert not storage.extensions.move("g-1", 0, [X.PENDING], X.DENIED, by="U3", at=121)
    assert storage.extensions.move("g-1", 0, [X.APPROVED], X.APPLIED, by="U2", at=122)
    stored = storage.extensions.get("g-1", 0)
    assert stored is not None
    assert (stored.state, stored.approvers, stored.decided_by, stored.decided_at) == (X.APPLIED, ("U2",), "U2", 120)


# --- links and login attempts ---------------------------------------------------------------------------


def test_link_saves_replaces_and_is_found_by_subject_while_active(storage: Storage) -> None:
    """save() inserts or replaces; active_by_subject() sees only active links; revoke() forgets the token."""
    factories.link(storage.links, "U1", "s1", ["eng"], now=10, sealed_refresh_token="sealed-1")
    found = storage.links.active_by_subject(factories.ISSUER, "s1")
    assert found is not None
    assert found.identity.groups == ("eng",)
    factories.link(storage.links, "U1", "s1", ["sre"], now=20, sealed_refresh_token="sealed-2")
    record = storage.links.get("U1")
    assert record is not None
    assert (record.identity.groups, record.sealed_refresh_token) == (("sre",), "sealed-2")
    storage.links.revoke("U1", 30, "unlinked")
    record = storage.links.get("U1")
    assert record is not None
    assert (record.identity.status, record.sealed_refresh_token, record.revoked_reason) == (
        LinkStatus.REVOKED,
        None,
        "unlinked",
    )
    assert storage.links.active_by_subject(factories.ISSUER, "s1") is None
    assert storage.links.active() == []


def test_refresh_token_swap_is_a_compare_and_swap(storage: Storage) -> None:
    """The token is replaced only while it is still the old one."""
    factories.link(storage.links, "U1", "s1", [], now=10, sealed_refresh_token="old")
    assert storage.links.swap_refresh_token("U1", "old", "new", 99)
    assert not storage.links.swap_refresh_token("U1", "old", "other", 100)
    record = storage.links.get("U1")
    assert record is not None
    assert (record.sealed_refresh_token, record.identity.token_expires_at) == ("new", 99)


def test_refresh_results_and_failures_are_recorded(storage: Storage) -> None:
    """record_refresh stores what the IdP said and resets failures; record_refresh_failure counts them."""
    factories.link(storage.links, "U1", "s1", ["a"], now=10)
    storage.links.record_refresh_failure("U1", 2, 500)
    record = storage.links.get("U1")
    assert record is not None
    assert (record.refresh_failures, record.next_refresh_at) == (2, 500)
    storage.links.record_refresh(
        "U1", email="e@x", name="E", groups=("b",), at=600, token_expires_at=700, next_refresh_at=900
    )
    record = storage.links.get("U1")
    assert record is not None
    assert (record.identity.email, record.identity.groups, record.identity.refreshed_at) == ("e@x", ("b",), 600)
    assert (record.refresh_failures, record.next_refresh_at) == (0, 900)


def test_link_keeps_its_rancher_subject_and_group_names(storage: Storage) -> None:
    """The principal claim's value and the groups' display names survive a save and a refresh."""
    identity = factories.link(storage.links, "U1", "pairwise-sub", ["g-1"], now=10)
    storage.links.save(LinkRecord(replace(identity, principal_subject="oid-1", group_names=(("g-1", "Platform"),))))
    record = storage.links.get("U1")
    assert record is not None
    assert (record.identity.rancher_subject, record.identity.names) == ("oid-1", {"g-1": "Platform"})
    assert record.identity.policy_groups == ("g-1", "Platform")
    storage.links.record_refresh(
        "U1", email="", name="", groups=("g-2",), at=20, token_expires_at=None, next_refresh_at=30,
        group_names=(("g-2", "SRE"),),
    )  # fmt: skip
    record = storage.links.get("U1")
    assert record is not None
    assert (record.identity.groups, record.identity.names) == (("g-2",), {"g-2": "SRE"})


def test_relink_is_a_compare_and_set_and_overdue_links_are_listed(storage: Storage) -> None:
    """mark_relink moves only an active link; relink_overdue lists it once its deadline passed; it still holds the
    subject."""
    factories.link(storage.links, "U1", "s1", ["eng"], now=10, sealed_refresh_token="tok")
    assert storage.links.mark_relink("U1", 100, "MFA required")
    assert not storage.links.mark_relink("U1", 200, "again")
    record = storage.links.get("U1")
    assert record is not None
    assert (record.identity.status, record.relink_by, record.revoked_reason) == (LinkStatus.RELINK, 100, "MFA required")
    assert storage.links.active() == []
    assert storage.links.relink_overdue(99) == []
    assert [r.identity.slack_user for r in storage.links.relink_overdue(100)] == ["U1"]
    found = storage.links.active_by_subject(factories.ISSUER, "s1")
    assert found is not None
    assert found.identity.slack_user == "U1"
    storage.links.revoke("U1", 120, "not relinked")
    assert storage.links.relink_overdue(200) == []


def test_unmonitored_links_are_counted(storage: Storage) -> None:
    """Active links without a refresh token are counted; revoked ones and ones with a token are not."""
    factories.link(storage.links, "U1", "s1", [], now=10)
    factories.link(storage.links, "U2", "s2", [], now=10, sealed_refresh_token="tok")
    factories.link(storage.links, "U3", "s3", [], now=10)
    storage.links.revoke("U3", 20, "unlinked")
    assert storage.links.count_unmonitored() == 1


def test_login_attempt_starts_once_and_is_used_once(storage: Storage) -> None:
    """An attempt binds to one browser, before expiry, and is used exactly once; purge removes expired ones."""
    attempt = LoginAttempt("a1", "T1", "U1", "state-1", "nonce", "sealed", created_at=100, expires_at=700)
    storage.attempts.insert(attempt)
    assert storage.attempts.by_state("state-1") == attempt
    assert not storage.attempts.start("a1", "cookie", now=800)  # expired
    assert storage.attempts.start("a1", "cookie", now=200)
    assert not storage.attempts.start("a1", "other", now=201)
    assert storage.attempts.use("a1", 300)
    assert not storage.attempts.use("a1", 301)
    stored = storage.attempts.get("a1")
    assert stored is not None
    assert (stored.cookie_hash, stored.used_at) == ("cookie", 300)
    assert storage.attempts.purge(before=701) == 1
    assert storage.attempts.get("a1") is None


# --- audit ------------------------------------------------------------------------------------------------


def _append(storage: Storage, action: str = "x", ts: int = 1) -> bool:
    head = storage.audit.head()
    event = audit_chain.next_event(
        head, ts=ts, actor="a", action=action, target="t", outcome="ok", reason="", request_id="", details={"n": ts}
    )
    return storage.audit.append(event, head)


def test_audit_append_moves_the_head_only_from_the_expected_head(storage: Storage) -> None:
    """An append whose expected head is stale is refused and stores nothing (no fork of the chain)."""
    stale = storage.audit.head()
    assert _append(storage)
    event = audit_chain.next_event(
        stale, ts=2, actor="b", action="y", target="t", outcome="ok", reason="", request_id="", details={}
    )
    assert not storage.audit.append(event, stale)
    assert storage.audit.count() == 1
    assert audit_chain.verify(storage.audit.events(), storage.audit.head()).ok


def test_audit_append_many_moves_the_head_once_and_only_from_the_expected_head(storage: Storage) -> None:
    """A chained batch is stored whole with the head on its last event; a batch on a stale head stores nothing."""
    stale = storage.audit.head()
    events, head = [], stale
    for ts in range(1, 4):
        event = audit_chain.next_event(
            head, ts=ts, actor="a", action="x", target="t", outcome="ok", reason="", request_id="", details={"n": ts}
        )
        events.append(event)
        head = ChainHead(event.id, event.hash)
    assert storage.audit.append_many(events, stale)
    assert storage.audit.head() == head
    assert [e.id for e in storage.audit.events()] == [1, 2, 3]
    assert not storage.audit.append_many(events, stale)  # the head moved on: refused, nothing doubled
    assert storage.audit.count() == 3
    assert audit_chain.verify(storage.audit.events(), storage.audit.head()).ok


def test_audit_events_stream_in_order_within_a_window(storage: Storage) -> None:
    """events() yields in id order across batches and filters by ts."""
    for ts in range(1, 8):
        assert _append(storage, "grant.requested" if ts % 2 else "grant.denied", ts)
    assert [e.ts for e in storage.audit.events(batch=3)] == [1, 2, 3, 4, 5, 6, 7]
    assert [e.ts for e in storage.audit.events(since=3, until=6, batch=2)] == [3, 4, 5]
    assert storage.audit.action_counts(1, 8) == {"grant.requested": 4, "grant.denied": 3}
    rows = list(storage.audit.digest_rows(1, 5, ["grant.denied"]))
    assert [(r["ts"], r["action"]) for r in rows] == [(2, "grant.denied"), (4, "grant.denied")]
    assert storage.audit.count() == 7


# --- outbox, leases, marks ------------------------------------------------------------------------------


def test_outbox_key_is_idempotent_and_delivery_is_recorded(storage: Storage) -> None:
    """One message per key; due() skips messages not yet due; sent and failed marks stick."""
    assert storage.outbox.enqueue(key="same", kind="dm", channel="U1", payload={"text": "a"}, now=1)
    assert not storage.outbox.enqueue(key="same", kind="dm", channel="U1", payload={"text": "b"}, now=2)
    storage.outbox.enqueue(key="later", kind="post", channel="C1", payload={"text": "c"}, now=1)
    first, second = storage.outbox.due(1)
    assert (first.key, first.payload, first.status) == ("same", {"text": "a"}, OutboxStatus.PENDING)
    storage.outbox.retry_later(second.id, "boom", 100, 1)
    assert [m.key for m in storage.outbox.due(50)] == ["same"]
    assert storage.outbox.mark_sent(first.id, 60, "1.23")
    assert not storage.outbox.mark_sent(first.id, 61, "1.24")
    assert storage.outbox.due(60) == []
    assert storage.outbox.pending_count() == 1
    retried = storage.outbox.get("later")
    assert retried is not None
    assert (retried.attempts, retried.last_error, retried.first_failed_at) == (1, "boom", 1)
    storage.outbox.retry_later(second.id, "boom again", 200, 100)
    again = storage.outbox.by_id(second.id)
    assert again is not None
    assert (again.attempts, again.first_failed_at) == (2, 1)


def test_outbox_due_puts_urgent_first_then_queue_order(storage: Storage) -> None:
    """due() orders by priority, then by id; heads() names the oldest pending message of each order key."""
    storage.outbox.enqueue(
        key="edit", kind="update", channel="C1", payload={}, now=1, priority=Priority.BULK, order_key="r"
    )
    storage.outbox.enqueue(key="dm", kind="dm", channel="U1", payload={}, now=1)
    storage.outbox.enqueue(key="alarm", kind="post", channel="C2", payload={}, now=1, priority=Priority.URGENT)
    storage.outbox.enqueue(
        key="edit2", kind="update", channel="C1", payload={}, now=1, priority=Priority.BULK, order_key="r"
    )
    assert [m.key for m in storage.outbox.due(1)] == ["alarm", "dm", "edit", "edit2"]
    edit = storage.outbox.get("edit")
    assert edit is not None
    assert storage.outbox.heads(["r", "unknown", ""]) == {"r": edit.id}
    storage.outbox.mark_sent(edit.id, 2)
    edit2 = storage.outbox.get("edit2")
    assert edit2 is not None
    assert storage.outbox.heads(["r"]) == {"r": edit2.id}


def test_outbox_moves_are_compare_and_set(storage: Storage) -> None:
    """park, retry and drop change the status only from an expected one; a retry is due at once with a fresh count."""
    storage.outbox.enqueue(key="k", kind="dm", channel="U1", payload={}, now=1)
    message = storage.outbox.get("k")
    assert message is not None
    storage.outbox.retry_later(message.id, "timeout", 50, 1)
    P, X, D = OutboxStatus.PENDING, OutboxStatus.PARKED, OutboxStatus.DROPPED
    assert storage.outbox.move(message.id, (P,), X, now=5, reason="user_disabled")
    assert not storage.outbox.move(message.id, (P,), X, now=6, reason="again")
    parked = storage.outbox.by_id(message.id)
    assert parked is not None
    assert (parked.status, parked.last_error) == (X, "user_disabled")
    assert storage.outbox.due(10**9) == []
    assert [m.key for m in storage.outbox.listing((X,))] == ["k"]
    assert storage.outbox.counts() == {"parked": 1}
    assert storage.outbox.move(message.id, (X,), P, now=7)
    retried = storage.outbox.by_id(message.id)
    assert retried is not None
    assert (retried.status, retried.attempts, retried.first_failed_at, retried.next_attempt_at) == (P, 0, None, 7)
    assert storage.outbox.move(message.id, (X, P), D, now=8, reason="dropped by ops")
    assert storage.outbox.due(10**9) == []
    assert storage.outbox.counts() == {"dropped": 1}


def test_message_references_are_remembered_and_replaced(storage: Storage) -> None:
    """set_message_ref stores (channel, ts) under a ref and overwrites it."""
    assert storage.outbox.message_ref("grant:g-1") is None
    storage.outbox.set_message_ref("grant:g-1", "C1", "1.0")
    storage.outbox.set_message_ref("grant:g-1", "C1", "2.0")
    assert storage.outbox.message_ref("grant:g-1") == ("C1", "2.0")


def test_lease_is_exclusive_until_it_expires(storage: Storage) -> None:
    """Only one owner holds a lease; another takes it over once it has expired; release frees it."""
    leases = storage.leases
    assert leases.take("jobs", "A", now=100, ttl=60) is not None
    assert leases.take("jobs", "B", now=120, ttl=60) is None
    assert leases.take("jobs", "A", now=130, ttl=60) is not None  # renewal
    assert leases.take("jobs", "B", now=189, ttl=60) is None
    assert leases.take("jobs", "B", now=191, ttl=60) is not None
    assert leases.holder("jobs", now=191) == "B"
    leases.release("jobs", "A")  # not A's any more: nothing happens
    assert leases.holder("jobs", now=192) == "B"
    leases.release("jobs", "B")
    assert leases.holder("jobs", now=192) is None


def test_lease_token_grows_only_when_the_lease_changes_hands(storage: Storage) -> None:
    """Renewing keeps the fencing token; every new holder, also after a release, gets a larger one."""
    leases = storage.leases
    first = leases.take("jobs", "A", now=100, ttl=60)
    assert first is not None
    assert leases.take("jobs", "A", now=120, ttl=60) == first
    second = leases.take("jobs", "B", now=200, ttl=60)
    assert second is not None
    assert second > first
    leases.release("jobs", "B")
    third = leases.take("jobs", "A", now=201, ttl=60)
    assert third is not None
    assert third > second


def test_writes_under_a_stale_fence_are_refused_and_change_nothing(storage: Storage) -> None:
    """After a takeover the former holder's fenced writes raise FencedOut, in or out of a transaction; reads work."""
    old = storage.leases.take("jobs", "A", now=100, ttl=60)
    assert old is not None
    grant = _grant(storage, S.ACTIVE, expires_at=150)
    new = storage.leases.take("jobs", "B", now=200, ttl=60)
    assert new is not None
    with fencing.fenced(fencing.Fence("jobs", "A", old)):
        with pytest.raises(FencedOut):
            storage.grants.claim_due(200)
        with pytest.raises(FencedOut), storage.tx.atomic():
            storage.outbox.enqueue(key="k", kind="dm", channel="U1", payload={}, now=200)
        with pytest.raises(FencedOut):
            storage.marks.claim("digest:x", "1", 200)
        assert storage.grants.get(grant.id) is not None  # reading is not fenced
    assert storage.outbox.get("k") is None
    assert storage.marks.get("digest:x") is None
    with fencing.fenced(fencing.Fence("jobs", "B", new)):
        assert [g.id for g in storage.grants.claim_due(200)] == [grant.id]


def test_audit_appends_from_concurrent_connections_never_fork_the_chain(target: str, storage: Storage) -> None:
    """Four connections appending at once all succeed, each event once, and the chain verifies."""
    writers, per_writer = 4, 25

    def write(n: int) -> None:
        store = open_storage(target, migrate=False)
        try:
            audit = AuditLog(tx=store.tx, store=store.audit, clock=_At(n))
            for i in range(per_writer):
                audit.record("test.concurrent", actor=f"w{n}", target=str(i))
        finally:
            store.database.close()

    run_together(write, writers)
    assert storage.audit.count() == writers * per_writer
    check = audit_chain.verify(storage.audit.events(), storage.audit.head())
    assert (check.ok, check.count) == (True, writers * per_writer)


def test_audit_batches_and_single_appends_from_concurrent_connections_never_fork_the_chain(
    target: str, storage: Storage
) -> None:
    """Two connections appending batches of 5 and two appending one by one, at once: every event once, one chain."""
    writers, batches, per_batch = 4, 5, 5

    def write(n: int) -> None:
        store = open_storage(target, migrate=False)
        try:
            audit = AuditLog(tx=store.tx, store=store.audit, clock=_At(n))
            for b in range(batches):
                if n % 2:
                    with store.tx.atomic(), audit.batch():
                        for i in range(per_batch):
                            audit.record("test.batched", actor=f"w{n}", target=f"{b}.{i}")
                else:
                    for i in range(per_batch):
                        audit.record("test.single", actor=f"w{n}", target=f"{b}.{i}")
        finally:
            store.database.close()

    run_together(write, writers)
    total = writers * batches * per_batch
    check = audit_chain.verify(storage.audit.events(), storage.audit.head())
    assert (check.ok, check.count, storage.audit.count()) == (True, total, total)


def test_an_audit_batch_chains_what_one_by_one_would_and_an_error_appends_nothing(storage: Storage) -> None:
    """Events recorded in a batch get the ids, order and links of single records; a failed batch leaves no trace."""
    audit = AuditLog(tx=storage.tx, store=storage.audit, clock=_At(5))
    audit.record("test.before", actor="a")
    with storage.tx.atomic(), audit.batch():
        recorded = [audit.record("test.batched", actor="a", target=str(i)) for i in range(3)]
    audit.record("test.after", actor="a")
    stored = list(storage.audit.events())
    assert [e.action for e in stored] == ["test.before", *["test.batched"] * 3, "test.after"]
    assert stored[1:4] == recorded
    assert audit_chain.verify(stored, storage.audit.head()).ok
    head = storage.audit.head()
    with pytest.raises(RuntimeError), storage.tx.atomic(), audit.batch():
        audit.record("test.lost", actor="a")
        raise RuntimeError("the batch's caller failed")
    assert storage.audit.head() == head
    assert storage.audit.count() == len(stored)


def test_due_grants_claimed_by_concurrent_connections_are_claimed_once(target: str, storage: Storage) -> None:
    """Two connections claiming due grants at once never both claim the same grant."""
    with storage.tx.atomic():
        due = {_grant(storage, S.ACTIVE, expires_at=150).id for _ in range(1000)}

    def claim(_: int) -> list[str]:
        store = open_storage(target, migrate=False)
        try:
            return [g.id for g in store.grants.claim_due(200)]
        finally:
            store.database.close()

    claimed = run_together(claim, 2)
    everything = [grant_id for batch in claimed for grant_id in batch]
    assert sorted(everything) == sorted(due)


def test_marks_are_set_once(storage: Storage) -> None:
    """claim() sets a mark only the first time."""
    assert storage.marks.get("digest:2026-W01") is None
    assert storage.marks.claim("digest:2026-W01", "1", 5)
    assert not storage.marks.claim("digest:2026-W01", "2", 6)
    assert storage.marks.get("digest:2026-W01") == "1"


# --- the digest's reads ---------------------------------------------------------------------------------


def test_digest_rows_give_the_same_digest_as_the_events(storage: Storage) -> None:
    """The rows digest_rows() yields (whatever their type) build the same digest as the events as plain dicts."""
    clock = _At(0)
    audit = AuditLog(tx=storage.tx, store=storage.audit, clock=clock)
    rows = sorted(CURRENT, key=lambda r: int(str(r["ts"])))
    for row in rows:
        clock.value = int(str(row["ts"]))
        details = row["details"]
        audit.record(
            str(row["action"]),
            actor=str(row["actor"]),
            target=str(row["target"]),
            reason=str(row.get("reason", "")),
            details=json.loads(details) if isinstance(details, str) else dict(details),  # type: ignore[call-overload]
        )
    stored = storage.audit.digest_rows(START, END, DETAIL_ACTIONS)
    counts = storage.audit.action_counts(START, END)
    from_store = build_digest(stored, None, START, END, True, 0, counts=counts)
    assert from_store == build_digest(rows, None, START, END, True, 0)


class _At:
    """A settable clock."""

    def __init__(self, value: int) -> None:
        self.value = value

    def now(self) -> int:
        """The set time."""
        return self.value


def test_a_held_login_is_taken_once_and_outlives_the_purge(storage: Storage) -> None:
    """A login held for confirmation is found by its token hash, released once, and not purged while held."""
    attempt = LoginAttempt("a2", "T1", "U1", "state-2", "nonce", "sealed", created_at=100, expires_at=700)
    storage.attempts.insert(attempt)
    storage.attempts.hold("a2", "sealed-login", "confirm-hash", until=1000)
    held = storage.attempts.by_confirm("confirm-hash")
    assert held is not None
    assert (held.sealed_pending, held.pending_until) == ("sealed-login", 1000)
    assert storage.attempts.unconfirmed(now=999) == []
    assert [a.id for a in storage.attempts.unconfirmed(now=1000)] == ["a2"]
    assert storage.attempts.purge(before=5000) == 0  # a held login is never dropped with its token unrevoked
    assert storage.attempts.take("a2", "sealed-login")
    assert not storage.attempts.take("a2", "sealed-login")
    assert storage.attempts.unconfirmed(now=1000) == []
    assert storage.attempts.purge(before=5000) == 1


def test_replay_cache_refuses_a_key_until_it_expires(target: str, storage: Storage) -> None:
    """A remembered key is refused until its own expiry, through a second connection too, then accepted again."""
    assert storage.replays.remember("v0=abc", expires_at=1300, now=1000)
    assert not storage.replays.remember("v0=abc", expires_at=1400, now=1200)
    other = open_storage(target, migrate=False)
    try:
        assert not other.replays.remember("v0=abc", expires_at=1400, now=1299)
        assert other.replays.remember("v0=abc", expires_at=1700, now=1300)
    finally:
        other.database.close()
    assert not storage.replays.remember("v0=abc", expires_at=1800, now=1500)
