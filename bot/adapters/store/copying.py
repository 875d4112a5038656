"""Copying a whole database into another (SQLite ↔ PostgreSQL): every table, in one transaction on the target.

Used by `accessbot db copy`. The source must be at the current schema and the target empty (it is migrated first);
rows are copied table by table in one transaction on the target, identity sequences are moved past the copied ids,
and `verify` (the audit chain check) runs inside that transaction, so a copy that does not verify leaves the target
as empty as it was. Leases are not copied: the target starts with no leader.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bot.adapters.store.sql import Engine
from bot.core.errors import UserError

TABLES = (
    "links",
    "login_attempts",
    "grants",
    "grant_approvals",
    "grant_history",
    "grant_extensions",
    "extension_approvals",
    "audit_events",
    "audit_head",
    "outbox",
    "slack_messages",
    "job_state",
    "counters",
    "review_campaigns",
    "review_items",
    "standing_samples",
)
"""Every table holding the bot's data (not `schema_migrations`, not `job_leases`)."""

AUTO_IDS = {"grants": "seq", "grant_history": "id", "outbox": "id", "review_campaigns": "id", "review_items": "id"}
"""Columns whose values the database assigns (identity sequences to move past the copied ids)."""

BATCH = 2000


@dataclass(frozen=True)
class CopyReport:
    """How many rows of each table were copied."""

    rows: dict[str, int]

    @property
    def total(self) -> int:
        """Rows copied in all."""
        return sum(self.rows.values())


def copy_database(source: Engine, target: Engine, verify: Callable[[], None] = lambda: None) -> CopyReport:
    """Copy every table of `source` into the empty, migrated `target`; `verify` runs before the commit."""
    pending = source.pending_migrations()
    if pending:
        raise UserError(
            f"the source database is not at the current schema ({len(pending)} migration(s) pending)",
            "run `accessbot migrate` against it first",
        )
    target.migrate()
    for table in TABLES:
        if target.one(f"select 1 as found from {table} limit 1") is not None:  # noqa: S608 - our table names
            raise UserError(f"the target database already holds data (table {table})", "copy into an empty database")
    copied: dict[str, int] = {}
    with target.atomic():
        for table in TABLES:
            copied[table] = _copy_table(source, target, table)
        for table, column in AUTO_IDS.items():
            if target.dialect.reset_identity:
                target.one(target.dialect.reset_identity.format(table=table, column=column))
        verify()
    return CopyReport(copied)


def _copy_table(source: Engine, target: Engine, table: str) -> int:
    rows = source.cursor(f"select * from {table}", by_name=True)  # noqa: S608 - our table names
    count = 0
    batch: list[list[object]] = []
    statement = ""
    for row in rows:
        values = dict(row)
        if not statement:
            columns = list(values)
            marks = ", ".join("?" for _ in columns)
            statement = f"insert into {table}({', '.join(columns)}) values ({marks})"  # noqa: S608 - our columns
        batch.append(list(values.values()))
        if len(batch) >= BATCH:
            target.execute_many(statement, batch)
            count += len(batch)
            batch = []
    if batch:
        target.execute_many(statement, batch)
        count += len(batch)
    return count
