"""The weekly digest: its numbers equal direct counts over the events, with changes against the previous week."""

from __future__ import annotations

import csv
import io
import json
import random
from collections import Counter
from collections.abc import Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core import audit_actions as A
from bot.core.audit_chain import canonical_json
from bot.core.digest import (
    CATEGORIES,
    DETAIL_ACTIONS,
    build_digest,
    digest_rows,
    grants_csv,
)
from bot.core.model import Approval, Grant, GrantState, Target

START = 1_800_000_000
WEEK = 7 * 86400
END = START + WEEK

Row = dict[str, object]


def _row(ts: int, action: str, actor: str = "system", where: str = "prod", /, **details: object) -> Row:
    return {
        "ts": ts,
        "actor": actor,
        "action": action,
        "target": where,
        "outcome": "ok",
        "reason": str(details.pop("reason", "")),
        "details": canonical_json(details),
    }


def _events(seed: int, start: int, n: int = 3000) -> list[Row]:
    """A random mix of every action, grant details as JSON text or mappings, some rows outside the period."""
    rnd = random.Random(seed)
    rows: list[Row] = []
    for i in range(n):
        ts = start + rnd.randrange(-3600, WEEK + 3600)
        action = rnd.choice(A.ALL)
        user = f"U{rnd.randrange(12)}"
        details: dict[str, object] = {
            "grant_id": f"g-{rnd.randrange(400)}",
            "slack_user": user,
            "role": rnd.choice(("project-member", "cluster-member")),
            "target": f"c{rnd.randrange(6)}/p",
            "duration_s": rnd.choice((600, 3600, 7200, 14400)) + i,
            "self_service": rnd.random() < 0.4,
            "break_glass": rnd.random() < 0.05,
            "final": rnd.random() < 0.6,
        }
        row = _row(ts, action, user, str(details["target"]), **details)
        if rnd.random() < 0.2:
            row["details"] = details  # a mapping, as in-memory callers may pass
        rows.append(row)
    return rows


def _details(row: Mapping[str, object]) -> Mapping[str, object]:
    raw = row["details"]
    if isinstance(raw, Mapping):
        return raw
    parsed: dict[str, object] = json.loads(str(raw))
    return parsed


def _direct_counts(rows: list[Row], start: int, end: int) -> dict[str, int]:
    """The documented meaning of each category, counted the slow and obvious way."""
    inside = [r for r in rows if start <= int(str(r["ts"])) < end]
    by_action = Counter(str(r["action"]) for r in inside)

    def flagged(action: str, key: str) -> int:
        return sum(1 for r in inside if r["action"] == action and _details(r).get(key) is True)

    return {
        "links": by_action[A.LINK_CREATED],
        "relinks": by_action[A.LINK_REPLACED],
        "unlinks": by_action[A.LINK_REMOVED],
        "token_failures": by_action[A.TOKEN_REFRESH_FAILED],
        "token_reuse": by_action[A.TOKEN_REUSE_DETECTED],
        "deactivations": by_action[A.USER_DEACTIVATED],
        "relinks_required": by_action[A.LINK_RELINK_REQUIRED],
        "relinks_expired": by_action[A.LINK_RELINK_EXPIRED],
        "logins_rejected": by_action[A.ID_TOKEN_REJECTED] + by_action[A.LOGIN_STATE_MISMATCH],
        "slack_rejected": by_action[A.SLACK_REQUEST_REJECTED],
        "grants_requested": by_action[A.GRANT_REQUESTED],
        "grants_approved": flagged(A.GRANT_APPROVED, "final"),
        "approvals": by_action[A.GRANT_APPROVED],
        "grants_denied": by_action[A.GRANT_DENIED],
        "grants_refused": by_action[A.GRANT_REFUSED],
        "requests_withdrawn": by_action[A.GRANT_WITHDRAWN],
        "requests_expired": by_action[A.GRANT_REQUEST_EXPIRED],
        "self_service": flagged(A.GRANT_REQUESTED, "self_service"),
        "break_glass": flagged(A.GRANT_REQUESTED, "break_glass"),
        "grants_activated": by_action[A.GRANT_ACTIVE],
        "grants_failed": by_action[A.GRANT_FAILED],
        "grants_extended": by_action[A.GRANT_EXTENDED],
        "revoked_early": by_action[A.GRANT_REVOKED],
        "grants_expired": by_action[A.GRANT_EXPIRED],
        "drift_found": by_action[A.DRIFT_MISSING_BINDING] + by_action[A.DRIFT_ORPHAN_DELETED],
        "drift_repaired": by_action[A.DRIFT_REPAIRED] + by_action[A.DRIFT_ORPHAN_DELETED],
        "untagged_bindings": by_action[A.DRIFT_UNTAGGED],
        "overdue_revocations": by_action[A.GRANT_REVOCATION_OVERDUE],
    }


CURRENT = _events(1, START)
PREVIOUS = _events(2, START - WEEK)


def test_counts_equal_direct_counts_over_the_events() -> None:
    """Every category equals its direct count over the rows inside the period."""
    digest = build_digest(CURRENT, None, START, END, True, len(CURRENT))
    assert dict(digest.counts) == _direct_counts(CURRENT, START, END)
    assert digest.events == sum(1 for r in CURRENT if START <= int(str(r["ts"])) < END)


def test_every_category_is_exercised_by_the_generated_events() -> None:
    """The generated events give each category a non-zero count, so the equality above means something."""
    digest = build_digest(CURRENT, None, START, END, True, 0)
    assert all(digest.counts[key] > 0 for key, _ in CATEGORIES)


def test_changes_against_the_previous_period() -> None:
    """Each change is this period's count minus the previous period's direct count."""
    digest = build_digest(CURRENT, PREVIOUS, START, END, True, 0)
    before = _direct_counts(PREVIOUS, START - WEEK, START)
    now = _direct_counts(CURRENT, START, END)
    assert digest.previous == before
    for key, _ in CATEGORIES:
        assert digest.change(key) == now[key] - before[key]


def test_without_previous_period_there_is_no_change() -> None:
    """No previous events means no change figures (None), and digest_rows shows 0."""
    digest = build_digest(CURRENT, None, START, END, True, 0)
    assert digest.previous is None
    assert digest.change("links") is None
    assert all(change == 0 for _, _, change in digest_rows(digest))


def test_digest_rows_follow_the_category_order() -> None:
    """digest_rows gives (label, count, change) per category in display order."""
    digest = build_digest(CURRENT, PREVIOUS, START, END, True, 0)
    rows = digest_rows(digest)
    assert [label for label, _, _ in rows] == [label for _, label in CATEGORIES]
    key_of = {label: key for key, label in CATEGORIES}
    assert all(count == digest.counts[key_of[label]] for label, count, _ in rows)
    assert all(change == digest.change(key_of[label]) for label, _, change in rows)


def test_top_requesters_and_targets_come_from_grant_requests() -> None:
    """Top lists count grant.requested actors and targets, most first, ties by name."""
    digest = build_digest(CURRENT, None, START, END, True, 0)
    requested = [r for r in CURRENT if r["action"] == A.GRANT_REQUESTED and START <= int(str(r["ts"])) < END]
    actors = Counter(str(r["actor"]) for r in requested)
    expected = sorted(actors.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
    assert list(digest.top_requesters) == expected
    assert sum(n for _, n in digest.top_targets) <= len(requested)
    assert digest.top_targets[0][1] == max(Counter(str(r["target"]) for r in requested).values())


def test_longest_grants_use_the_total_after_extensions() -> None:
    """A grant extended to 10h outranks one granted 8h; each grant appears once."""
    rows = [
        _row(START + 1, A.GRANT_ACTIVE, "U1", "prod", grant_id="g-1", slack_user="U1", role="r", duration_s=3600),
        _row(START + 2, A.GRANT_EXTENDED, "U1", "prod", grant_id="g-1", slack_user="U1", role="r", duration_s=36000),
        _row(START + 3, A.GRANT_ACTIVE, "U2", "dev", grant_id="g-2", slack_user="U2", role="r", duration_s=28800),
        _row(START + 4, A.GRANT_ACTIVE, "U3", "dev", grant_id="g-3", slack_user="U3", role="r", duration_s=60),
    ]
    digest = build_digest(rows, None, START, END, True, 0, top=2)
    assert [(g.grant_id, g.duration_s, g.slack_user) for g in digest.longest_grants] == [
        ("g-1", 36000, "U1"),
        ("g-2", 28800, "U2"),
    ]


@pytest.mark.parametrize("as_mapping", [False, True])
def test_longest_grants_keep_the_first_row_on_equal_durations(as_mapping: bool) -> None:
    """Two rows of one grant with the same duration: the earlier row's holder is reported (text or mapping details)."""
    filler = [_row(START + 2, A.TOKEN_REFRESHED)] * 10_000  # puts the second row in a later chunk
    rows = [
        _row(START + 1, A.GRANT_ACTIVE, "U1", "prod", grant_id="g-1", duration_s=3600),
        _row(START + 2, A.GRANT_ACTIVE, "U2", "prod", grant_id="g-1", duration_s=3600),
        *filler,
        _row(START + 3, A.GRANT_ACTIVE, "U3", "prod", grant_id="g-1", duration_s=3600),
    ]
    if as_mapping:
        rows = [{**row, "details": json.loads(str(row["details"]))} for row in rows]
    digest = build_digest(rows, None, START, END, True, 0)
    assert [(g.grant_id, g.slack_user) for g in digest.longest_grants] == [("g-1", "U1")]


def test_break_glass_requests_are_listed_with_their_reason() -> None:
    """Each break-glass request of the period is listed in time order with requester, target and reason."""
    rows = [
        _row(START + 9, A.GRANT_REQUESTED, "U2", "prod", grant_id="g-2", break_glass=True, reason="db down"),
        _row(START + 5, A.GRANT_REQUESTED, "U1", "prod", grant_id="g-1", break_glass=True, reason="outage"),
        _row(START + 7, A.GRANT_REQUESTED, "U3", "prod", grant_id="g-3", break_glass=False),
    ]
    digest = build_digest(rows, None, START, END, True, 0)
    assert [(b.grant_id, b.slack_user, b.reason) for b in digest.break_glass] == [
        ("g-1", "U1", "outage"),
        ("g-2", "U2", "db down"),
    ]
    assert digest.counts["break_glass"] == 2


def test_flags_in_non_canonical_json_are_still_read() -> None:
    """Details written with spaces (not canonical) are parsed rather than missed."""
    row = _row(START, A.GRANT_REQUESTED)
    row["details"] = '{"self_service": true, "break_glass": false}'
    digest = build_digest([row], None, START, END, True, 0)
    assert digest.counts["self_service"] == 1
    assert digest.counts["break_glass"] == 0


def test_a_flag_word_inside_a_text_value_does_not_count() -> None:
    """A reason quoting `"self_service":true` is not mistaken for the flag."""
    row = _row(START, A.GRANT_REQUESTED, note='"self_service":true', self_service=False)
    digest = build_digest([row], None, START, END, True, 0)
    assert digest.counts["self_service"] == 0


def test_chain_result_is_carried_through() -> None:
    """The chain verification result given is the one reported."""
    digest = build_digest([], None, START, END, False, 1234)
    assert (digest.chain_ok, digest.chain_count) == (False, 1234)
    assert digest.events == 0


def test_counts_with_detail_rows_equal_the_full_stream() -> None:
    """Per-action counts plus only the DETAIL_ACTIONS rows give the same digest as every row."""
    full = build_digest(CURRENT, PREVIOUS, START, END, True, 7)

    def split(rows: list[Row], start: int, end: int) -> tuple[dict[str, int], list[Row]]:
        inside = [r for r in rows if start <= int(str(r["ts"])) < end]
        return Counter(str(r["action"]) for r in inside), [r for r in inside if r["action"] in DETAIL_ACTIONS]

    counts, rows = split(CURRENT, START, END)
    prev_counts, prev_rows = split(PREVIOUS, START - WEEK, START)
    fast = build_digest(rows, prev_rows, START, END, True, 7, counts=counts, previous_counts=prev_counts)
    assert fast == full


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(START - 10, END + 10),
            st.sampled_from(sorted(A.ALL)),
            st.booleans(),
            st.booleans(),
            st.booleans(),
        ),
        max_size=40,
    )
)
def test_any_event_list_matches_direct_counts(events: list[tuple[int, str, bool, bool, bool]]) -> None:
    """For arbitrary small event lists the digest equals the direct counts."""
    rows = [
        _row(ts, action, "U1", "t", grant_id=f"g-{i}", self_service=ss, break_glass=bg, final=fin, duration_s=i)
        for i, (ts, action, ss, bg, fin) in enumerate(events)
    ]
    assert dict(build_digest(rows, None, START, END, True, 0).counts) == _direct_counts(rows, START, END)


def _grant(**changes: object) -> Grant:
    base = Grant(
        id="g-7",
        slack_user="U1",
        subject="sub",
        target=Target("c-prod", "c-prod:p-pay"),
        role_id="project-member",
        duration_s=3600,
        rule="prod",
        state=GrantState.EXPIRED,
        requested_at=START,
        reason='=HYPERLINK("https://evil")',
        approvals=(Approval("U2", "approve", START + 60), Approval("U3", "deny", START + 61)),
        activated_at=START + 120,
        expires_at=START + 3720,
        ended_at=START + 3721,
        break_glass=True,
    )
    return Grant(**{**base.__dict__, **changes})


def test_grants_csv_writes_one_row_per_grant_with_iso_times() -> None:
    """Grant values become CSV rows with a header, ISO UTC times, yes/no flags and approvers."""
    text = grants_csv([_grant(), {"id": "g-8", "state": "active", "requested_at": START, "break_glass": False}])
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["id"] for r in rows] == ["g-7", "g-8"]
    assert rows[0]["target"] == "c-prod:p-pay"
    assert rows[0]["state"] == "expired"
    assert rows[0]["requested_at"] == "2027-01-15T08:00:00Z"
    assert rows[0]["break_glass"] == "yes"
    assert rows[0]["approvers"] == "U2"
    assert rows[1]["break_glass"] == "no"
    assert rows[1]["activated_at"] == ""


@pytest.mark.parametrize("text", ["=1+1", "+cmd", "-2", "@SUM(A1)", "\tx"])
def test_grants_csv_defuses_spreadsheet_formulas(text: str) -> None:
    """User text that a spreadsheet would run as a formula is written with a leading quote."""
    rows = list(csv.DictReader(io.StringIO(grants_csv([{"id": "g-1", "reason": text}]))))
    assert rows[0]["reason"] == "'" + text


def test_a_tally_row_counts_as_the_refusals_it_stands_for() -> None:
    """Refusals audited as one tally row per reason and minute (details.count) are counted one by one."""
    rows = [
        _row(START + 10, A.SLACK_REQUEST_REJECTED, "unknown", "/slack/events", count=9998),
        _row(START + 70, A.SLACK_REQUEST_REJECTED, "unknown", "/slack/events", count=2),
        _row(START + 80, A.LOGIN_STATE_MISMATCH, "unknown", "", count=5),
        _row(START + 90, A.LOGIN_STATE_MISMATCH, "U1", "U1"),  # a named refusal: one row, one refusal
    ]
    digest = build_digest(rows, None, START, END, True, len(rows))
    assert digest.counts["slack_rejected"] == 10000
    assert digest.counts["logins_rejected"] == 6
    counted = build_digest(
        [r for r in rows if r["action"] in DETAIL_ACTIONS],
        None,
        START,
        END,
        True,
        len(rows),
        counts=Counter(str(r["action"]) for r in rows),
    )
    assert counted.counts == digest.counts


def test_policy_refusals_and_approvers_denials_are_counted_apart() -> None:
    """grant.refused (the policy) and grant.denied (an approver) and grant.withdrawn land in three different rows."""
    rows = [_row(START + 1, A.GRANT_REFUSED), _row(START + 2, A.GRANT_REFUSED), _row(START + 3, A.GRANT_DENIED),
            _row(START + 4, A.GRANT_WITHDRAWN)]  # fmt: skip
    digest = build_digest(rows, None, START, END, True, len(rows))
    assert (digest.counts["grants_refused"], digest.counts["grants_denied"], digest.counts["requests_withdrawn"]) == (
        2,
        1,
        1,
    )
