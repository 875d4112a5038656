"""The weekly audit digest as a value: counts per category, change against the previous period, top lists.

`build_digest` reads audit rows (mappings with ts, actor, action, target, outcome, details and optionally reason)
in one pass with plain dicts; `details` may be a mapping or its JSON text, and is only looked at for the few
actions that need it (flags are read from canonical JSON text without parsing). No formatting happens here:
`digest_rows` gives (label, count, change) lines and `grants_csv` the period's grants for the attachment.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import UTC, datetime
from enum import Enum
from itertools import compress, islice
from operator import itemgetter

from bot.core import audit_actions as A

AuditEventLike = Mapping[str, object]

CATEGORIES: tuple[tuple[str, str], ...] = (
    ("links", "Links"),
    ("relinks", "Relinks"),
    ("unlinks", "Unlinks"),
    ("token_failures", "Token refresh failures"),
    ("token_reuse", "Refresh-token reuse detected"),
    ("deactivations", "Users deactivated"),
    ("logins_rejected", "Logins rejected"),
    ("slack_rejected", "Slack requests rejected"),
    ("grants_requested", "Grants requested"),
    ("grants_approved", "Grants approved"),
    ("approvals", "Approvals given"),
    ("grants_denied", "Grants denied"),
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
    "logins_rejected": (A.ID_TOKEN_REJECTED, A.LOGIN_STATE_MISMATCH),
    "slack_rejected": (A.SLACK_REQUEST_REJECTED,),
    "grants_requested": (A.GRANT_REQUESTED,),
    "approvals": (A.GRANT_APPROVED,),
    "grants_denied": (A.GRANT_DENIED,),
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
    spans: dict[str, tuple[int, AuditEventLike]] = field(default_factory=dict)
    glass: list[BreakGlassUse] = field(default_factory=list)
    events: int = 0
    approved: int = 0
    self_service: int = 0
    break_glass: int = 0


def _details(row: AuditEventLike) -> Mapping[str, object]:
    raw = row.get("details")
    if isinstance(raw, Mapping):
        return raw
    if isinstance(raw, str | bytes) and raw:
        try:
            value = json.loads(raw)
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}
    return {}


def _flag(row: AuditEventLike, key: str) -> bool:
    """A boolean detail, read from canonical JSON text without parsing when possible."""
    raw = row.get("details")
    if isinstance(raw, str):
        quoted = f'"{key}"'
        if quoted not in raw:
            return False
        if f"{quoted}:true" in raw:
            return True
        if f"{quoted}:false" in raw:
            return False
    return _details(row).get(key) is True


def _grant_and_duration(row: AuditEventLike) -> tuple[str, int]:
    """(grant_id, duration_s) of a grant event, sliced from canonical JSON text, parsed only when that fails."""
    raw = row.get("details")
    if isinstance(raw, str):
        i = raw.find('"grant_id":"')
        j = raw.find('"duration_s":')
        if i >= 0 and j >= 0:
            i += 12
            end_id = raw.find('"', i)
            j += 13
            end_n = j
            while end_n < len(raw) and raw[end_n].isdigit():
                end_n += 1
            grant_id = raw[i:end_id]
            if end_id > i and "\\" not in grant_id and end_n > j:
                return grant_id, int(raw[j:end_n])
    d = _details(row)
    return _str(d.get("grant_id")), _int(d.get("duration_s"))


def _int(value: object) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float | str):
        try:
            return int(value)
        except ValueError:
            return 0
    return 0


def _str(value: object) -> str:
    return "" if value is None else str(value)


_get_ts = itemgetter("ts")
_get_action = itemgetter("action")
_get_actor = itemgetter("actor")
_get_target = itemgetter("target")
_SPECIAL = frozenset({A.GRANT_REQUESTED, A.GRANT_APPROVED, A.GRANT_ACTIVE, A.GRANT_EXTENDED})


def _scan(events: Iterable[AuditEventLike], start: int, end: int, *, detail: bool) -> _Scan:
    """One pass over the rows in [start, end), a chunk at a time; only the few grant actions are looked into."""
    acc = _Scan()
    rows = iter(events)
    special = _SPECIAL.__contains__
    while chunk := list(islice(rows, _CHUNK)):
        stamps = list(map(_get_ts, chunk))
        if min(stamps) < start or max(stamps) >= end:
            chunk = [r for r, ts in zip(chunk, stamps, strict=True) if start <= ts < end]
        acc.events += len(chunk)
        actions = list(map(_get_action, chunk))
        acc.actions.update(actions)
        for row in compress(chunk, map(special, actions)):
            _special(acc, row, detail=detail)
    return acc


def _special(acc: _Scan, row: AuditEventLike, *, detail: bool) -> None:
    """Account one grant event whose details matter."""
    action = row["action"]
    if action == A.GRANT_REQUESTED:
        if detail:
            acc.requesters[_str(row.get("actor"))] += 1
            acc.targets[_str(row.get("target"))] += 1
        if _flag(row, "self_service"):
            acc.self_service += 1
        if _flag(row, "break_glass"):
            acc.break_glass += 1
            if detail:
                d = _details(row)
                acc.glass.append(
                    BreakGlassUse(
                        ts=_int(row["ts"]),
                        grant_id=_str(d.get("grant_id")),
                        slack_user=_str(d.get("slack_user") or row.get("actor")),
                        role=_str(d.get("role")),
                        target=_str(d.get("target") or row.get("target")),
                        reason=_str(row.get("reason") or d.get("reason")),
                    )
                )
    elif action == A.GRANT_APPROVED:
        if _flag(row, "final"):
            acc.approved += 1
    elif detail:  # GRANT_ACTIVE / GRANT_EXTENDED: the total granted time, kept per grant
        grant_id, duration = _grant_and_duration(row)
        known = acc.spans.get(grant_id)
        if known is None or duration > known[0]:
            acc.spans[grant_id] = (duration, row)


def _span(grant_id: str, duration: int, row: AuditEventLike) -> GrantSpan:
    d = _details(row)
    return GrantSpan(
        grant_id=grant_id,
        slack_user=_str(d.get("slack_user") or row.get("actor")),
        role=_str(d.get("role")),
        target=_str(d.get("target") or row.get("target")),
        duration_s=duration,
    )


def _counts(acc: _Scan) -> dict[str, int]:
    counts = {key: sum(acc.actions.get(a, 0) for a in acts) for key, acts in _DIRECT.items()}
    counts["grants_approved"] = acc.approved
    counts["self_service"] = acc.self_service
    counts["break_glass"] = acc.break_glass
    return {key: counts.get(key, 0) for key, _ in CATEGORIES}


def _top(counter: Mapping[str, int], n: int) -> tuple[tuple[str, int], ...]:
    return tuple(sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:n])


def build_digest(  # noqa: PLR0917 - the positional signature the services were promised
    events: Iterable[AuditEventLike],
    previous: Iterable[AuditEventLike] | None,
    period_start: int,
    period_end: int,
    chain_ok: bool,
    chain_count: int,
    *,
    top: int = 5,
) -> Digest:
    """Build the digest of [period_start, period_end) in one pass; `previous` is the period just before it.

    Rows outside the period are skipped, so callers may pass a wider stream. The previous period is taken to be
    as long as this one and ends at period_start.
    """
    acc = _scan(events, period_start, period_end, detail=True)
    prev_counts: dict[str, int] | None = None
    if previous is not None:
        length = period_end - period_start
        prev_counts = _counts(_scan(previous, period_start - length, period_start, detail=False))
    longest = sorted(acc.spans.items(), key=lambda kv: (-kv[1][0], kv[0]))[:top]
    return Digest(
        period_start=period_start,
        period_end=period_end,
        counts=_counts(acc),
        previous=prev_counts,
        top_requesters=_top(acc.requesters, top),
        top_targets=_top(acc.targets, top),
        longest_grants=tuple(_span(grant_id, duration, row) for grant_id, (duration, row) in longest),
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
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(column: str, value: object) -> str:
    """One CSV cell: times as ISO UTC, booleans as yes/no, spreadsheet formulas in text defused."""
    if value is None:
        return ""
    if isinstance(value, Enum):
        value = value.value
    if column in _TIME_COLUMNS and isinstance(value, int) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = str(value)
    if text.startswith(_FORMULA_START):
        return "'" + text
    return text


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
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(GRANT_CSV_COLUMNS)
    for grant in grants:
        row = _grant_mapping(grant)
        writer.writerow([_cell(column, row.get(column)) for column in GRANT_CSV_COLUMNS])
    return buffer.getvalue()
