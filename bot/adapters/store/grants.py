"""Grants, their approvals, history and extension requests in SQL (the GrantStore and ExtensionStore ports)."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from bot.adapters.store.rows import Row, change_columns, grant_from_row, grant_row
from bot.adapters.store.sql import SqlConnection
from bot.core.grant_lifecycle import ExtensionRequest, ExtensionState
from bot.core.model import Approval, Grant, GrantChange, GrantState, HistoryEntry, Target


def _marks(values: Collection[object]) -> str:
    return ", ".join("?" for _ in values)


class SqlGrants:
    """The GrantStore port."""

    def __init__(self, sql: SqlConnection) -> None:
        self._sql = sql

    def new_id(self) -> str:
        """Allocate the next grant id (`g-1`, `g-2`, …)."""
        row = self._sql.one(
            "insert into counters(name, value) values ('grant', 1) "
            "on conflict(name) do update set value = counters.value + 1 returning value"
        )
        assert row is not None
        return f"g-{int(row['value'])}"

    def insert(self, grant: Grant, now: int) -> None:
        """Store a new grant."""
        row = grant_row(grant)
        row["updated_at"] = now
        columns = ", ".join(row)
        self._sql.execute(f"insert into grants({columns}) values ({_marks(row)})", list(row.values()))  # noqa: S608

    def get(self, grant_id: str) -> Grant | None:
        """A grant by id, with its approvals."""
        row = self._sql.one("select * from grants where id = ?", [grant_id])
        return self._grant(row) if row else None

    def update(self, grant_id: str, expected: Collection[GrantState], change: GrantChange, now: int) -> bool:
        """Apply `change` only while the grant is in one of `expected` (compare-and-set); True when it won."""
        values = change_columns(change)
        values["updated_at"] = now
        assignments = ", ".join(f"{name} = ?" for name in values)
        states = [s.value for s in expected]
        return bool(
            self._sql.execute(
                f"update grants set {assignments} where id = ? and state in ({_marks(states)})",  # noqa: S608 - our columns
                [*values.values(), grant_id, *states],
            )
        )

    def find(
        self,
        *,
        slack_user: str | None = None,
        states: Collection[GrantState] = (),
        target: Target | None = None,
        limit: int = 1000,
    ) -> list[Grant]:
        """Grants filtered by holder, state and target, newest first."""
        clauses: list[str] = []
        params: list[object] = []
        if slack_user is not None:
            clauses.append("slack_user = ?")
            params.append(slack_user)
        if states:
            clauses.append(f"state in ({_marks(states)})")
            params.extend(s.value for s in states)
        if target is not None:
            clauses.append("coalesce(project_id, cluster_id) = ?")
            params.append(target.key)
        where = f"where {' and '.join(clauses)}" if clauses else ""
        return self._grants(f"select * from grants {where} order by seq desc limit {int(limit)}", params)  # noqa: S608

    def claim_due(self, now: int, limit: int = 10000) -> list[Grant]:
        """Atomically move every active grant whose expiry has passed to `revoking`; return them."""
        return self._grants(
            "update grants set state = 'revoking', updated_at = ? where seq in ("
            "select seq from grants where state = 'active' and expires_at <= ? order by expires_at limit ?"
            ") and state = 'active' returning *",  # rechecked on the locked row: two claimers never both win
            [now, now, limit],
        )

    def revocations_due(self, now: int, stale_before: int, limit: int = 10000) -> list[Grant]:
        """`revoking` grants whose retry time has come, or never retried and untouched since `stale_before`."""
        return self._grants(
            "select * from grants where state = 'revoking' and ("
            "(next_attempt_at > 0 and next_attempt_at <= ?) "
            "or (coalesce(next_attempt_at, 0) = 0 and coalesce(updated_at, 0) <= ?)"
            ") order by expires_at limit ?",
            [now, stale_before, limit],
        )

    def overdue(self, expired_before: int, limit: int = 1000) -> list[Grant]:
        """Active or revoking grants that expired before `expired_before` and were not alerted on yet."""
        return self._grants(
            "select * from grants where state in ('active', 'revoking') and expires_at < ? "
            "and coalesce(overdue_alerted, 0) = 0 order by expires_at limit ?",
            [expired_before, limit],
        )

    def overdue_resolved(self, limit: int = 1000) -> list[Grant]:
        """Grants alerted as overdue that have left active/revoking since (not yet reported resolved)."""
        return self._grants(
            "select * from grants where overdue_alerted = 1 and state not in ('active', 'revoking') "
            "order by seq limit ?",
            [limit],
        )

    def between(self, since: int, until: int, limit: int = 100000) -> list[Grant]:
        """Grants requested in [since, until) or active at some moment of it, oldest first."""
        return self._grants(
            "select * from grants where (requested_at >= ? and requested_at < ?) or (activated_at is not null "
            "and activated_at < ? and coalesce(ended_at, expires_at, activated_at) >= ?) order by seq limit ?",
            [since, until, until, since, limit],
        )

    def counts(self) -> dict[str, int]:
        """Number of grants per state."""
        return {r["state"]: r["n"] for r in self._sql.query("select state, count(*) as n from grants group by state")}

    def add_approval(self, grant_id: str, approval: Approval) -> bool:
        """Record one decision once per Slack account and per IdP identity; False when either already decided."""
        return bool(
            self._sql.execute(
                "insert into grant_approvals(grant_id, approver, decision, at, comment, approver_issuer, "
                "approver_subject) values (?, ?, ?, ?, ?, ?, ?) on conflict do nothing",
                [
                    grant_id,
                    approval.approver,
                    approval.decision,
                    approval.at,
                    approval.comment,
                    approval.issuer,
                    approval.subject,
                ],
            )
        )

    def add_history(self, entry: HistoryEntry) -> None:
        """Record one state change."""
        self._sql.execute(_ADD_HISTORY, _history_params(entry))

    def add_history_many(self, entries: Sequence[HistoryEntry]) -> None:
        """Record several state changes with one bulk insert (pipelined on PostgreSQL: one round trip, not N)."""
        if entries:
            self._sql.execute_many(_ADD_HISTORY, [_history_params(entry) for entry in entries])

    def history(self, grant_id: str) -> list[HistoryEntry]:
        """State changes of a grant, oldest first."""
        return [
            HistoryEntry(r["grant_id"], r["from_state"], r["to_state"], r["at"], r["actor"], r["reason"] or "")
            for r in self._sql.query("select * from grant_history where grant_id = ? order by id", [grant_id])
        ]

    def _approvals(self, grant_id: str) -> tuple[Approval, ...]:
        rows = self._sql.query("select * from grant_approvals where grant_id = ? order by at, approver", [grant_id])
        return tuple(_approval(r) for r in rows)

    def _grant(self, row: Row) -> Grant:
        return grant_from_row(row, self._approvals(row["id"]))

    def _grants(self, sql: str, params: list[object]) -> list[Grant]:
        """The grants of a query with their approvals, read in chunks (a claim of 10,000 makes 20 reads, not 10,000)."""
        rows = self._sql.query(sql, params)
        approvals: dict[str, list[Approval]] = {}
        ids = [str(r["id"]) for r in rows]
        for start in range(0, len(ids), _APPROVALS_CHUNK):
            chunk = ids[start : start + _APPROVALS_CHUNK]
            for r in self._sql.query(
                f"select * from grant_approvals where grant_id in ({_marks(chunk)}) order by at, approver",  # noqa: S608
                chunk,
            ):
                approvals.setdefault(str(r["grant_id"]), []).append(_approval(r))
        return [grant_from_row(r, tuple(approvals.get(str(r["id"]), ()))) for r in rows]


class SqlExtensions:
    """The ExtensionStore port."""

    def __init__(self, sql: SqlConnection) -> None:
        self._sql = sql

    def open(self, request: ExtensionRequest) -> bool:
        """Store a new request unless one exists for that grant and number; True when stored."""
        return bool(
            self._sql.execute(
                "insert into grant_extensions(grant_id, number, extra_s, requested_at, requested_by, state, "
                "decided_at, decided_by) values (?, ?, ?, ?, ?, ?, ?, ?) on conflict(grant_id, number) do nothing",
                [
                    request.grant_id,
                    request.number,
                    request.extra_s,
                    request.requested_at,
                    request.requested_by,
                    request.state.value,
                    request.decided_at,
                    request.decided_by,
                ],
            )
        )

    def get(self, grant_id: str, number: int) -> ExtensionRequest | None:
        """One request with its approvers."""
        row = self._sql.one("select * from grant_extensions where grant_id = ? and number = ?", [grant_id, number])
        if row is None:
            return None
        approvers = self._sql.query(
            "select approver from extension_approvals where grant_id = ? and number = ? order by at, approver",
            [grant_id, number],
        )
        return ExtensionRequest(
            grant_id=row["grant_id"],
            number=row["number"],
            extra_s=row["extra_s"],
            requested_at=row["requested_at"],
            requested_by=row["requested_by"],
            state=ExtensionState(row["state"]),
            approvers=tuple(str(r["approver"]) for r in approvers),
            decided_at=row["decided_at"],
            decided_by=row["decided_by"] or "",
        )

    def add_approver(self, grant_id: str, number: int, approver: str, at: int) -> bool:
        """Record one approval once; False when that approver already approved."""
        return bool(
            self._sql.execute(
                "insert into extension_approvals(grant_id, number, approver, at) values (?, ?, ?, ?) "
                "on conflict(grant_id, number, approver) do nothing",
                [grant_id, number, approver, at],
            )
        )

    def move(
        self, grant_id: str, number: int, expected: Collection[ExtensionState], to: ExtensionState, *, by: str, at: int
    ) -> bool:
        """Change a request's state only while it is in one of `expected` (compare-and-set); True when it won."""
        states = [s.value for s in expected]
        return bool(
            self._sql.execute(
                "update grant_extensions set state = ?, decided_at = coalesce(decided_at, ?), "  # noqa: S608 - marks
                "decided_by = case when decided_by = '' then ? else decided_by end "
                f"where grant_id = ? and number = ? and state in ({_marks(states)})",
                [to.value, at, by, grant_id, number, *states],
            )
        )


_APPROVALS_CHUNK = 500  # ids per `in (…)` read: well under SQLite's and PostgreSQL's parameter limits
_ADD_HISTORY = "insert into grant_history(grant_id, from_state, to_state, at, actor, reason) values (?, ?, ?, ?, ?, ?)"


def _approval(r: Row) -> Approval:
    return Approval(
        r["approver"], r["decision"], r["at"], r["comment"] or "", r["approver_issuer"], r["approver_subject"]
    )


def _history_params(entry: HistoryEntry) -> list[object]:
    return [entry.grant_id, entry.from_state, entry.to_state, entry.at, entry.actor, entry.reason]
