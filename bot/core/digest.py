"""The weekly audit digest as a value: counts per category, change against the previous period, top lists.

`build_digest` reads audit rows (mappings or sqlite3.Rows with ts, actor, action, target, details and optionally
reason) in one pass with plain dicts and Counters; `details` is a flat JSON object, as a mapping or as its
canonical JSON text, and is only looked at for the few DETAIL_ACTIONS (flags and numbers are read from the text
without parsing; anything unusual falls back to json.loads). No formatting happens here:
`digest_rows` gives (label, count, change) lines and `grants_csv` the period's grants for the attachment.
"""

from __future__ import annotations

import heapq
import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import UTC, datetime
from enum import Enum
from itertools import compress, islice, repeat
from operator import contains, eq, itemgetter
from typing import Any, Protocol

from bot.core import audit_actions as A
from bot.core.review_measures import ReviewMeasures
from bot.core.spreadsheet import csv_text


class AuditEventLike(Protocol):
    """An audit row: a dict, a Mapping or a sqlite3.Row with ts, actor, action, target, details (reason optional)."""

    def __getitem__(self, key: str, /) -> Any:
        """The value of one column."""
        ...


CATEGORIES: tuple[tuple[str, str], ...] = (
    ("links", "Links"),
    ("relinks", "Relinks"),
    ("unlinks", "Unlinks"),
    ("token_failures", "Token refresh failures"),
    ("token_reuse", "Refresh-token reuse detected"),
    ("deactivations", "Users deactivated"),
    ("relinks_required", "Re-sign-ins asked for"),
    ("relinks_expired", "Links ended: no re-sign-in"),
    ("logins_rejected", "Logins rejected"),
    ("slack_rejected", "Slack requests rejected"),
    ("grants_requested", "Grants requested"),
    ("grants_approved", "Grants approved"),
    ("approvals", "Approvals given"),
    ("grants_denied", "Denied by approvers"),
    ("grants_refused", "Refused by policy"),
    ("requests_withdrawn", "Requests withdrawn"),
    ("requests_expired", "Requests expired undecided"),
    ("self_service", "Self-service grants"),
    ("break_glass", "Break-glass grants"),
    ("grants_activated", "Grants activated"),
    ("grants_failed", "Grants failed"),
    ("grants_extended", "Grants extended"),
    ("revoked_early", "Grants revoked early"),
    ("grants_expired", "Grants expired"),
    ("drift_found", "Drift found"),
    ("drift_repaired", "Drift repaired"),
    ("untagged_bindings", "Untagged bindings reported"),
    ("overdue_revocations", "Overdue revocations"),
)
"""(key, label) of every count, in display order."""

# Categories that are a plain count of one or more actions.
_DIRECT: dict[str, tuple[str, ...]] = {
    "links": (A.LINK_CREATED,),
    "relinks": (A.LINK_REPLACED,),
    "unlinks": (A.LINK_REMOVED,),
    "token_failures": (A.TOKEN_REFRESH_FAILED,),
    "token_reuse": (A.TOKEN_REUSE_DETECTED,),
    "deactivations": (A.USER_DEACTIVATED,),
    "relinks_required": (A.LINK_RELINK_REQUIRED,),
    "relinks_expired": (A.LINK_RELINK_EXPIRED,),
    "logins_rejected": (A.ID_TOKEN_REJECTED, A.LOGIN_STATE_MISMATCH),
    "slack_rejected": (A.SLACK_REQUEST_REJECTED,),
    "grants_requested": (A.GRANT_REQUESTED,),
    "approvals": (A.GRANT_APPROVED,),
    "grants_denied": (A.GRANT_DENIED,),
    "grants_refused": (A.GRANT_REFUSED,),
    "requests_withdrawn": (A.GRANT_WITHDRAWN,),
    "requests_expired": (A.GRANT_REQUEST_EXPIRED,),
    "grants_activated": (A.GRANT_ACTIVE,),
    "grants_failed": (A.GRANT_FAILED,),
    "grants_extended": (A.GRANT_EXTENDED,),
    "revoked_early": (A.GRANT_REVOKED,),
    "grants_expired": (A.GRANT_EXPIRED,),
    "drift_found": (A.DRIFT_MISSING_BINDING, A.DRIFT_ORPHAN_DELETED),  # an orphan is found and repaired at once
    "drift_repaired": (A.DRIFT_REPAIRED, A.DRIFT_ORPHAN_DELETED),
    "untagged_bindings": (A.DRIFT_UNTAGGED,),
    "overdue_revocations": (A.GRANT_REVOCATION_OVERDUE,),
}


@dataclass(frozen=True)
class GrantSpan:
    """A grant of the period and the total time it was granted for (after extensions)."""

    grant_id: str
    slack_user: str
    role: str
    target: str
    duration_s: int


@dataclass(frozen=True)
class BreakGlassUse:
    """One break-glass request of the period."""

    ts: int
    grant_id: str
    slack_user: str
    role: str
    target: str
    reason: str


@dataclass(frozen=True)
class Digest:
    """Everything the weekly digest says, as numbers and lists."""

    period_start: int
    period_end: int
    counts: Mapping[str, int]
    previous: Mapping[str, int] | None
    top_requesters: tuple[tuple[str, int], ...]
    top_targets: tuple[tuple[str, int], ...]
    longest_grants: tuple[GrantSpan, ...]
    break_glass: tuple[BreakGlassUse, ...]
    chain_ok: bool
    chain_count: int
    events: int
    unmonitored_links: int | None = None  # active links without a refresh token when the digest was built
    reviews: ReviewMeasures | None = None  # standing-binding trend, campaign outcomes, replacement grants

    def change(self, key: str) -> int | None:
        """Count minus the previous period's, or None without a previous period."""
        if self.previous is None:
            return None
        return self.counts.get(key, 0) - self.previous.get(key, 0)


_CHUNK = 8192


@dataclass
class _Scan:
    """Mutable accumulator for one pass."""

    actions: Counter[str] = field(default_factory=Counter)
    requesters: Counter[str] = field(default_factory=Counter)
    targets: Counter[str] = field(default_factory=Counter)
    spans: dict[str, tuple[int, object, object, object]] = field(
        default_factory=dict
    )  # duration, details, actor, target
    glass: list[BreakGlassUse] = field(default_factory=list)
    events: int = 0
    approved: int = 0
    self_service: int = 0
    break_glass: int = 0
    tallied: Counter[str] = field(default_factory=Counter)
    """Refusals beyond one per row, from tally rows' counts."""


def _details(row: AuditEventLike) -> Mapping[str, object]:
    raw = row["details"]
    if isinstance(raw, Mapping):
        return raw
    if isinstance(raw, str | bytes) and raw:
        try:
            value = json.loads(raw)
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}
    return {}


_FLAG_TEXT = {key: (f'"{key}"', f'"{key}":true', f'"{key}":false') for key in ("self_service", "break_glass", "final")}
_GRANT_ID = re.compile(r'"grant_id":"([^"\\]*)"')
_DURATION = re.compile(r'"duration_s":(\d+)[,}]')


def _flag(row: AuditEventLike, key: str) -> bool:
    """A boolean detail, read from canonical JSON text without parsing when possible."""
    raw = row["details"]
    if isinstance(raw, str):
        quoted, true, false = _FLAG_TEXT[key]
        if quoted not in raw:
            return False
        if true in raw:
            return True
        if false in raw:
            return False
    return _details(row).get(key) is True


def _grant_and_duration(row: AuditEventLike) -> tuple[str, int]:
    """(grant_id, duration_s) of a grant event, read from canonical JSON text, parsed only when that fails."""
    raw = row["details"]
    if isinstance(raw, str):
        grant_id = _GRANT_ID.search(raw)
        duration = _DURATION.search(raw)
        if grant_id is not None and duration is not None:
            return grant_id.group(1), int(duration.group(1))
    d = _details(row)
    return _str(d.get("grant_id")), _int(d.get("duration_s"))


def _optional(row: AuditEventLike, key: str) -> object:
    """A column that some row sources lack (KeyError for mappings, IndexError for sqlite3.Row)."""
    try:
        return row[key]
    except (KeyError, IndexError):
        return None


def _int(value: object) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float | str):
        try:
            return int(value)
        except (ValueError, OverflowError):
            return 0
    return 0


def _str(value: object) -> str:
    return "" if value is None else str(value)


_get_ts = itemgetter("ts")
_get_action = itemgetter("action")
_get_actor = itemgetter("actor")
_get_target = itemgetter("target")
_get_details = itemgetter("details")
TALLIED_ACTIONS: frozenset[str] = frozenset(
    {A.SLACK_REQUEST_REJECTED, A.LOGIN_STATE_MISMATCH, A.ID_TOKEN_REJECTED, A.LOGIN_REFUSED}
)
"""Refusal actions whose rows may stand for many refusals (a tally row's `details.count`, see services.refusals)."""
DETAIL_ACTIONS: frozenset[str] = (
    frozenset({A.GRANT_REQUESTED, A.GRANT_APPROVED, A.GRANT_ACTIVE, A.GRANT_EXTENDED}) | TALLIED_ACTIONS
)
"""The actions whose rows the digest reads one by one; every other action is only counted."""


def _scan(events: Iterable[AuditEventLike], start: int, end: int, *, detail: bool) -> _Scan:
    """One pass over the rows in [start, end), a chunk at a time, counting with C-level map/compress/Counter.

    Only the DETAIL_ACTIONS rows of each chunk are looked into, a batch per action.
    """
    acc = _Scan()
    rows = iter(events)
    while chunk := list(islice(rows, _CHUNK)):
        stamps = list(map(_get_ts, chunk))
        if min(stamps) < start or max(stamps) >= end:
            chunk = [r for r, ts in zip(chunk, stamps, strict=True) if start <= ts < end]
        acc.events += len(chunk)
        actions = list(map(_get_action, chunk))
        acc.actions.update(actions)
        requested = _pick(chunk, actions, A.GRANT_REQUESTED)
        if requested:
            _requested(acc, requested, detail=detail)
        approved = _pick(chunk, actions, A.GRANT_APPROVED)
        if approved:
            acc.approved += len(_flagged(approved, "final"))
        for action in TALLIED_ACTIONS:
            tallies = _pick(chunk, actions, action)
            if tallies:
                acc.tallied[action] += sum(_tally_count(row) - 1 for row in tallies)
        if detail:
            for action in (A.GRANT_ACTIVE, A.GRANT_EXTENDED):
                picked = _pick(chunk, actions, action)
                if picked:
                    _spans(acc, picked)
    return acc


def _pick(chunk: list[AuditEventLike], actions: list[object], action: str) -> list[AuditEventLike]:
    """The rows of a chunk with this action."""
    return list(compress(chunk, map(eq, actions, repeat(action))))


def _flagged(rows: list[AuditEventLike], key: str) -> list[AuditEventLike]:
    """The rows whose details set `key` to true: substring counts on canonical JSON, per-row checks otherwise."""
    details = list(map(_get_details, rows))
    if set(map(type, details)) == {str}:
        quoted, true, false = _FLAG_TEXT[key]
        mentioned = sum(map(contains, details, repeat(quoted)))
        if mentioned == sum(map(contains, details, repeat(true))) + sum(map(contains, details, repeat(false))):
            return list(compress(rows, map(contains, details, repeat(true))))
    return [row for row in rows if _flag(row, key)]


def _requested(acc: _Scan, rows: list[AuditEventLike], *, detail: bool) -> None:
    """Account grant.requested rows: requesters, targets, self-service and break-glass."""
    if detail:
        acc.requesters.update(map(_get_actor, rows))
        acc.targets.update(map(_get_target, rows))
    acc.self_service += len(_flagged(rows, "self_service"))
    glass = _flagged(rows, "break_glass")
    acc.break_glass += len(glass)
    if not detail:
        return
    for row in glass:
        d = _details(row)
        acc.glass.append(
            BreakGlassUse(
                ts=_int(row["ts"]),
                grant_id=_str(d.get("grant_id")),
                slack_user=_str(d.get("slack_user") or row["actor"]),
                role=_str(d.get("role")),
                target=_str(row["target"] or d.get("target")),  # the row names it for people; details hold the id
                reason=_str(_optional(row, "reason") or d.get("reason")),
            )
        )


_Kept = tuple[int, object, object, object]  # duration_s, details, actor, target — column values, never the row


def _spans(acc: _Scan, rows: list[AuditEventLike]) -> None:
    """Keep, per grant, the largest total duration seen on grant.active / grant.extended rows (first one on ties)."""
    details = list(map(_get_details, rows))
    best: dict[str, _Kept] = {}
    if set(map(type, details)) == {str}:
        ids = list(map(_GRANT_ID.search, details))
        found = list(map(_DURATION.search, details))
        if None not in ids and None not in found:
            seconds = list(map(int, map(_first_group, found)))
            kept = list(zip(seconds, details, map(_get_actor, rows), map(_get_target, rows), strict=True))
            grant_ids = list(map(_first_group, ids))
            # ascending duration, later rows first among equals: the dict keeps the last = largest, earliest
            order = sorted(range(len(kept) - 1, -1, -1), key=seconds.__getitem__)
            best = dict(zip(map(grant_ids.__getitem__, order), map(kept.__getitem__, order), strict=True))
    if not best:
        for row in rows:
            grant_id, duration = _grant_and_duration(row)
            known = best.get(grant_id)
            if known is None or duration > known[0]:
                best[grant_id] = (duration, row["details"], row["actor"], row["target"])
    spans = acc.spans
    for grant_id in spans.keys() & best.keys():
        if spans[grant_id][0] >= best[grant_id][0]:
            del best[grant_id]
    spans.update(best)


def _first_group(match: re.Match[str] | None) -> str:
    return match.group(1) if match is not None else ""


def _span(grant_id: str, kept: tuple[int, object, object, object]) -> GrantSpan:
    duration, details, actor, target = kept
    d = _details({"details": details})
    return GrantSpan(
        grant_id=grant_id,
        slack_user=_str(d.get("slack_user") or actor),
        role=_str(d.get("role")),
        target=_str(target or d.get("target")),
        duration_s=duration,
    )


def _tally_count(row: AuditEventLike) -> int:
    count = _details(row).get("count")
    return count if isinstance(count, int) and not isinstance(count, bool) and count > 0 else 1


def _counts(acc: _Scan) -> dict[str, int]:
    actions = acc.actions + acc.tallied
    counts = {key: sum(actions.get(a, 0) for a in acts) for key, acts in _DIRECT.items()}
    counts["grants_approved"] = acc.approved
    counts["self_service"] = acc.self_service
    counts["break_glass"] = acc.break_glass
    return {key: counts.get(key, 0) for key, _ in CATEGORIES}


def _top(counter: Mapping[str, int], n: int) -> tuple[tuple[str, int], ...]:
    return tuple(heapq.nsmallest(n, counter.items(), key=lambda kv: (-kv[1], _str(kv[0]))))


def build_digest(  # noqa: PLR0917 - the positional signature the services were promised
    events: Iterable[AuditEventLike],
    previous: Iterable[AuditEventLike] | None,
    period_start: int,
    period_end: int,
    chain_ok: bool,
    chain_count: int,
    *,
    top: int = 5,
    counts: Mapping[str, int] | None = None,
    previous_counts: Mapping[str, int] | None = None,
) -> Digest:
    """Build the digest of [period_start, period_end) in one pass; `previous` is the period just before it.

    Rows outside the period are skipped, so callers may pass a wider stream. The previous period is taken to be
    as long as this one and ends at period_start.

    Fast path for big tables: pass `counts` (rows per action in the period, e.g. from SQL `GROUP BY action`) and
    only the rows whose action is in DETAIL_ACTIONS as `events`; likewise `previous_counts` with `previous`.
    The result is the same as streaming every row.
    """
    acc = _scan(events, period_start, period_end, detail=True)
    if counts is not None:
        acc.actions = Counter(counts)
        acc.events = sum(counts.values())
    prev_counts: dict[str, int] | None = None
    if previous is not None or previous_counts is not None:
        length = period_end - period_start
        prev = _scan(previous or (), period_start - length, period_start, detail=False)
        if previous_counts is not None:
            prev.actions = Counter(previous_counts)
        prev_counts = _counts(prev)
    longest = heapq.nsmallest(top, acc.spans.items(), key=lambda kv: (-kv[1][0], kv[0]))
    return Digest(
        period_start=period_start,
        period_end=period_end,
        counts=_counts(acc),
        previous=prev_counts,
        top_requesters=_top(acc.requesters, top),
        top_targets=_top(acc.targets, top),
        longest_grants=tuple(_span(grant_id, kept) for grant_id, kept in longest),
        break_glass=tuple(sorted(acc.glass, key=lambda g: g.ts)),
        chain_ok=chain_ok,
        chain_count=chain_count,
        events=acc.events,
    )


def digest_rows(digest: Digest) -> list[tuple[str, int, int]]:
    """(label, count, change against the previous period — 0 without one) for every category, in order."""
    return [(label, digest.counts.get(key, 0), digest.change(key) or 0) for key, label in CATEGORIES]


GRANT_CSV_COLUMNS: tuple[str, ...] = (
    "id",
    "slack_user",
    "role_id",
    "target",
    "rule",
    "state",
    "requested_at",
    "activated_at",
    "expires_at",
    "ended_at",
    "duration_s",
    "extensions",
    "break_glass",
    "self_service",
    "approvers",
    "reason",
    "ticket",
)
_TIME_COLUMNS = frozenset({"requested_at", "activated_at", "expires_at", "ended_at"})


def _cell(column: str, value: object) -> str:
    """One CSV cell: times as ISO UTC, booleans as yes/no (spreadsheet formulas are defused by the writer)."""
    if value is None:
        return ""
    if isinstance(value, Enum):
        value = value.value
    if column in _TIME_COLUMNS and isinstance(value, int) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _grant_mapping(grant: object) -> Mapping[str, object]:
    if isinstance(grant, Mapping):
        return grant
    if is_dataclass(grant) and not isinstance(grant, type):
        row: dict[str, object] = {f.name: getattr(grant, f.name) for f in fields(grant)}
        target = row.get("target")
        if is_dataclass(target) and hasattr(target, "key"):
            row["target"] = target.key
        approvals = row.get("approvals")
        if isinstance(approvals, tuple):
            row["approvers"] = " ".join(
                str(getattr(a, "approver", "")) for a in approvals if getattr(a, "decision", "") == "approve"
            )
        return row
    raise TypeError(f"cannot write {type(grant).__name__} as a grant row")


def grants_csv(grants: Iterable[object]) -> str:
    """The period's grants (core Grant values or mappings with the GRANT_CSV_COLUMNS keys) as CSV text."""
    rows = (_grant_mapping(grant) for grant in grants)
    return csv_text(
        GRANT_CSV_COLUMNS, ([_cell(column, row.get(column)) for column in GRANT_CSV_COLUMNS] for row in rows)
    )
