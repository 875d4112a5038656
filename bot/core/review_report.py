"""A campaign's report: one row per reviewed binding (what it was, who decided what and why, what became of it), as
formula-safe CSV (core.spreadsheet) or a Markdown table."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from bot.core.digest_period import utc_iso
from bot.core.reviews import Campaign, ReviewItem, outcome_of
from bot.core.spreadsheet import csv_text

COLUMNS: tuple[str, ...] = (
    "item",
    "target",
    "role",
    "binding",
    "subject",
    "holder",
    "reviewers",
    "rules",
    "state",
    "verdict",
    "reason",
    "decided_by",
    "person",
    "decided_at",
    "self_attested",
    "timed_out",
    "applied_at",
    "applied_by",
    "note",
    "restored_as",
)


def _time(epoch: int | None) -> str:
    return utc_iso(epoch) if epoch else ""


def row(item: ReviewItem) -> list[object]:
    """One item as a report row (times in UTC, ISO 8601)."""
    d = item.decision
    return [
        item.id,
        item.target_name,
        item.binding.role_id,
        item.binding.id,
        item.holder.kind,
        item.holder.name,
        " ".join(item.reviewer_groups) or "(admins)",
        " ".join(item.rules),
        item.state.value,
        d.verdict.value if d is not None else "",
        d.reason if d is not None else "",
        d.by if d is not None else "",
        d.person if d is not None else "",
        _time(d.at) if d is not None else "",
        "yes" if d is not None and d.self_attested else "",
        "yes" if d is not None and d.timed_out else "",
        _time(item.applied_at),
        item.applied_by,
        item.note,
        item.restored_id,
    ]


def report_csv(items: Iterable[ReviewItem]) -> str:
    """Every item as CSV (a cell that a spreadsheet would read as a formula is defused)."""
    return csv_text(COLUMNS, (row(i) for i in items))


def _md(value: object) -> str:
    text = " ".join(str(value).split())  # one line per row
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def report_markdown(campaign: Campaign, items: Sequence[ReviewItem]) -> str:
    """A heading with the outcome, then every item as a Markdown table (pipes, markup and newlines neutralised)."""
    o = outcome_of(items)
    scope = campaign.scope
    lines = [
        f"# Access review {_md(campaign.name)}",
        "",
        f"- Roles: {_md(', '.join(scope.roles))}; targets: {_md(', '.join(scope.targets))}; subjects: "
        f"{scope.subjects.value}",
        f"- Started {_time(campaign.created_at)} by {_md(campaign.created_by)}; due {_time(campaign.due_at)}; "
        f"{campaign.status.value}" + (f" {_time(campaign.closed_at)}" if campaign.closed_at else ""),
        f"- {o.total} bindings: kept {o.kept}, converted {o.converted}, removed {o.removed}, undecided {o.undecided}, "
        f"not applied yet {o.to_apply}, left alone (changed in Rancher) {o.skipped}, restored {o.undone}",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    lines += ["| " + " | ".join(_md(v) for v in row(i)) + " |" for i in items]
    return "\n".join(lines) + "\n"
