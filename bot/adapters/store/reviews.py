"""Access review campaigns, their items and the standing-binding samples in SQL (ReviewStore, StandingSamples)."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from typing import Any

from bot.adapters.store.sql import SqlConnection
from bot.core.review_bindings import binding_from_json, binding_json
from bot.core.reviews import (
    ANY_ITEM,
    Campaign,
    CampaignScope,
    CampaignStatus,
    Decision,
    Holder,
    ItemChange,
    ItemFilter,
    ItemState,
    ReviewItem,
    Subjects,
    Verdict,
    reviewer_groups_of,
    reviewer_key,
)

Row = dict[str, Any]
ITEM_ORDER = "order by target_name, role_name, holder_name, id"
ITEM_COLUMNS = (
    "campaign_id",
    "binding_id",
    "scope",
    "cluster_id",
    "project_id",
    "role_id",
    "binding",
    "fingerprint",
    "target_name",
    "role_name",
    "holder_kind",
    "holder_name",
    "holder_principals",
    "holder_user_id",
    "holder_person",
    "holder_slack",
    "holder_groups",
    "reviewer_key",
    "rules",
    "state",
    "updated_at",
)


def _marks(values: Collection[object]) -> str:
    return ", ".join("?" for _ in values)


def _list(value: str | None) -> tuple[str, ...]:
    return tuple(str(v) for v in json.loads(value or "[]"))


def _campaign(row: Row) -> Campaign:
    return Campaign(
        id=int(row["id"]),
        name=str(row["name"]),
        scope=CampaignScope(
            roles=_list(row["roles"]), targets=_list(row["targets"]), subjects=Subjects(row["subjects"])
        ),
        created_by=str(row["created_by"]),
        created_at=int(row["created_at"]),
        due_at=int(row["due_at"]),
        on_timeout=Verdict(row["on_timeout"]),
        status=CampaignStatus(row["status"]),
        template=str(row["template"] or ""),
        closed_at=row["closed_at"],
        closed_by=str(row["closed_by"] or ""),
        excluded=int(row["excluded"] or 0),
    )


def _item_values(campaign_id: int, item: ReviewItem) -> list[object]:
    b, h = item.binding, item.holder
    return [
        campaign_id,
        b.id,
        b.scope.value,
        b.cluster_id,
        b.project_id,
        b.role_id,
        binding_json(b),
        item.fingerprint,
        item.target_name,
        item.role_name,
        h.kind,
        h.name,
        json.dumps(list(h.principals)),
        h.user_id,
        h.person,
        h.slack_user,
        json.dumps(list(h.groups)),
        reviewer_key(item.reviewer_groups),
        json.dumps(list(item.rules)),
        item.state.value,
        item.updated_at,
    ]


def _item(row: Row) -> ReviewItem:
    decision = None
    if row["verdict"]:
        decision = Decision(
            verdict=Verdict(row["verdict"]),
            reason=str(row["reason"] or ""),
            by=str(row["decided_by"] or ""),
            person=str(row["decided_person"] or ""),
            at=int(row["decided_at"] or 0),
            self_attested=bool(row["self_attested"]),
            timed_out=bool(row["timed_out"]),
        )
    return ReviewItem(
        id=int(row["id"]),
        campaign_id=int(row["campaign_id"]),
        binding=binding_from_json(str(row["binding"])),
        fingerprint=str(row["fingerprint"]),
        target_name=str(row["target_name"]),
        role_name=str(row["role_name"]),
        holder=Holder(
            kind=str(row["holder_kind"]),
            name=str(row["holder_name"]),
            principals=_list(row["holder_principals"]),
            user_id=str(row["holder_user_id"] or ""),
            person=str(row["holder_person"] or ""),
            slack_user=str(row["holder_slack"] or ""),
            groups=_list(row["holder_groups"]),
        ),
        reviewer_groups=reviewer_groups_of(str(row["reviewer_key"] or "[]")),
        rules=_list(row["rules"]),
        state=ItemState(row["state"]),
        decision=decision,
        note=str(row["note"] or ""),
        applied_at=row["applied_at"],
        applied_by=str(row["applied_by"] or ""),
        deleted=binding_from_json(str(row["deleted"])) if row["deleted"] else None,
        restored_id=str(row["restored_id"] or ""),
        updated_at=int(row["updated_at"] or 0),
    )


def _change_columns(change: ItemChange) -> dict[str, object]:
    values: dict[str, object] = {}
    if change.state is not None:
        values["state"] = change.state.value
    if change.decision is not None:
        d = change.decision
        values.update(
            verdict=d.verdict.value,
            reason=d.reason,
            decided_by=d.by,
            decided_person=d.person,
            decided_at=d.at,
            self_attested=int(d.self_attested),
            timed_out=int(d.timed_out),
        )
    if change.note is not None:
        values["note"] = change.note
    if change.applied_at is not None:
        values["applied_at"] = change.applied_at
    if change.applied_by is not None:
        values["applied_by"] = change.applied_by
    if change.deleted is not None:
        values["deleted"] = binding_json(change.deleted)
    if change.restored_id is not None:
        values["restored_id"] = change.restored_id
    return values


class SqlReviews:
    """The ReviewStore port."""

    def __init__(self, sql: SqlConnection) -> None:
        self._sql = sql

    def create(self, campaign: Campaign) -> Campaign | None:
        """Store a new campaign (its id assigned); None when one of that name exists already."""
        scope = campaign.scope
        row = self._sql.one(
            "insert into review_campaigns(name, roles, targets, subjects, created_by, created_at, due_at, "
            "on_timeout, status, template, excluded) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "on conflict(name) do nothing returning id",
            [
                campaign.name,
                json.dumps(list(scope.roles)),
                json.dumps(list(scope.targets)),
                scope.subjects.value,
                campaign.created_by,
                campaign.created_at,
                campaign.due_at,
                campaign.on_timeout.value,
                campaign.status.value,
                campaign.template,
                campaign.excluded,
            ],
        )
        return self.campaign(campaign_id=int(row["id"])) if row is not None else None

    def campaign(self, *, campaign_id: int | None = None, name: str | None = None) -> Campaign | None:
        """One campaign by id or by name."""
        if campaign_id is not None:
            row = self._sql.one("select * from review_campaigns where id = ?", [campaign_id])
        else:
            row = self._sql.one("select * from review_campaigns where name = ?", [name or ""])
        return _campaign(row) if row is not None else None

    def campaigns(self, statuses: Collection[CampaignStatus] = (), limit: int = 100) -> list[Campaign]:
        """Campaigns in the given statuses (any when empty), newest first."""
        where, params = "", [s.value for s in statuses]
        if statuses:
            where = f"where status in ({_marks(params)})"
        rows = self._sql.query(
            f"select * from review_campaigns {where} order by id desc limit {int(limit)}",  # noqa: S608 - marks
            params,
        )
        return [_campaign(r) for r in rows]

    def campaigns_between(self, since: int, until: int) -> list[Campaign]:
        """Campaigns open at some moment of [since, until), oldest first."""
        rows = self._sql.query(
            "select * from review_campaigns where created_at < ? and (closed_at is null or closed_at >= ?) order by id",
            [until, since],
        )
        return [_campaign(r) for r in rows]

    def close(self, campaign_id: int, at: int, by: str) -> bool:
        """Close an open campaign (compare-and-set); True when this call closed it."""
        return bool(
            self._sql.execute(
                "update review_campaigns set status = 'closed', closed_at = ?, closed_by = ? "
                "where id = ? and status = 'open'",
                [at, by, campaign_id],
            )
        )

    def add_items(self, campaign_id: int, items: Sequence[ReviewItem]) -> int:
        """Store a campaign's items in bulk (ids assigned); return how many."""
        statement = f"insert into review_items({', '.join(ITEM_COLUMNS)}) values ({_marks(ITEM_COLUMNS)})"  # noqa: S608
        self._sql.execute_many(statement, [_item_values(campaign_id, item) for item in items])
        return len(items)

    def item(self, item_id: int) -> ReviewItem | None:
        """One item by id."""
        row = self._sql.one("select * from review_items where id = ?", [item_id])
        return _item(row) if row is not None else None

    def items(
        self, campaign_id: int, where: ItemFilter = ANY_ITEM, *, limit: int = 100_000, offset: int = 0
    ) -> list[ReviewItem]:
        """A campaign's items, by target, role, holder and id."""
        clauses: list[str] = ["campaign_id = ?"]
        params: list[object] = [campaign_id]
        for column, values in (
            ("state", [s.value for s in where.states]),
            ("reviewer_key", list(where.reviewer_keys)),
            ("verdict", [v.value for v in where.verdicts]),
        ):
            if values:
                clauses.append(f"{column} in ({_marks(values)})")
                params.extend(values)
        rows = self._sql.query(
            f"select * from review_items where {' and '.join(clauses)} {ITEM_ORDER} "  # noqa: S608 - our columns
            f"limit {int(limit)} offset {int(offset)}",
            params,
        )
        return [_item(r) for r in rows]

    def reviewer_keys(self, campaign_id: int) -> list[str]:
        """The distinct reviewer keys of a campaign's items."""
        rows = self._sql.query(
            "select distinct reviewer_key from review_items where campaign_id = ? order by reviewer_key", [campaign_id]
        )
        return [str(r["reviewer_key"]) for r in rows]

    def counts(self, campaign_id: int) -> dict[tuple[ItemState, Verdict | None], int]:
        """A campaign's items per (state, verdict)."""
        rows = self._sql.query(
            "select state, verdict, count(*) as n from review_items where campaign_id = ? group by state, verdict",
            [campaign_id],
        )
        return {(ItemState(r["state"]), Verdict(r["verdict"]) if r["verdict"] else None): int(r["n"]) for r in rows}

    def move(self, item_id: int, expected: Collection[ItemState], change: ItemChange, now: int) -> bool:
        """Apply `change` only while the item is in one of `expected` (compare-and-set); True when it won."""
        values = _change_columns(change)
        values["updated_at"] = now
        assignments = ", ".join(f"{name} = ?" for name in values)
        states = [s.value for s in expected]
        return bool(
            self._sql.execute(
                f"update review_items set {assignments} where id = ? and state in ({_marks(states)})",  # noqa: S608
                [*values.values(), item_id, *states],
            )
        )

    def in_flight(self, limit: int = 1000) -> list[ReviewItem]:
        """Items of any campaign left applying or undoing."""
        rows = self._sql.query(
            "select * from review_items where state in ('applying', 'undoing') order by id limit ?", [limit]
        )
        return [_item(r) for r in rows]

    def conversions(self, since: int, until: int) -> list[ReviewItem]:
        """Items whose conversion was applied in [since, until)."""
        rows = self._sql.query(
            "select * from review_items where verdict = 'convert' and state = 'applied' "
            "and applied_at >= ? and applied_at < ? order by id",
            [since, until],
        )
        return [_item(r) for r in rows]


class SqlStandingSamples:
    """The StandingSamples port."""

    def __init__(self, sql: SqlConnection) -> None:
        self._sql = sql

    def record(self, day: str, at: int, count: int) -> None:
        """Keep the count measured at `at` as the sample of `day` (the last one of a day wins)."""
        self._sql.execute(
            "insert into standing_samples(day, at, bindings) values (?, ?, ?) "
            "on conflict(day) do update set at = excluded.at, bindings = excluded.bindings",
            [day, at, count],
        )

    def latest(self) -> tuple[int, int] | None:
        """(at, count) of the newest sample."""
        row = self._sql.one("select at, bindings from standing_samples order by at desc limit 1")
        return (int(row["at"]), int(row["bindings"])) if row is not None else None

    def at_or_before(self, ts: int) -> tuple[int, int] | None:
        """(at, count) of the newest sample taken at or before `ts`."""
        row = self._sql.one("select at, bindings from standing_samples where at <= ? order by at desc limit 1", [ts])
        return (int(row["at"]), int(row["bindings"])) if row is not None else None
