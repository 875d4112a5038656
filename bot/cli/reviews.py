"""`accessbot review start|list|show|close|report|plan|apply|undo`: access review campaigns from the terminal.

Every argument goes through the same checks as `/access review` (core.review_commands); a refusal is one line and
exit 2. Start, close, apply and undo are audited by the review services with the operator (`cli:<login>`) as actor.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from bot.cli.context import EXIT_FAIL, EXIT_OK, Add, Subparsers, run_with_bot
from bot.cli.tables import cell, print_json_lines, print_table
from bot.core import review_commands as rc
from bot.core.errors import UserError, shown
from bot.core.review_plan import Plan
from bot.core.review_report import report_csv, report_markdown
from bot.core.reviews import Campaign, ItemState, Outcome, ReviewItem, outcome, outcome_of

if TYPE_CHECKING:
    from bot.services.reviews import ApplyReport, StartReport
    from bot.wiring import Bot

"""Widest table cell; longer text (names from Rancher or the IdP) is cut with `…`."""


def counted(count: int, noun: str) -> str:
    """`1 binding`, `2 bindings`."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


def _time(ts: int | None) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M") if ts else "-"


def _tally(o: Outcome) -> str:
    return (
        f"{counted(o.total, 'binding')}: kept {o.kept}, converted {o.converted}, removed {o.removed}, "
        f"undecided {o.undecided}, "
        f"to apply {o.to_apply}, left alone {o.skipped}, restored {o.undone}"
    )


def _campaign_row(c: Campaign, o: Outcome) -> dict[str, object]:
    return {
        "name": c.name,
        "status": c.status.value,
        "started": _time(c.created_at),
        "due": _time(c.due_at),
        "by": c.created_by,
        "items": o.total,
        "kept": o.kept,
        "converted": o.converted,
        "removed": o.removed,
        "undecided": o.undecided,
        "to_apply": o.to_apply,
    }


def _item_row(i: ReviewItem) -> dict[str, object]:
    return {
        "item": i.id,
        "target": i.target_name,
        "role": i.binding.role_id,
        "subject": i.holder.kind,
        "holder": i.holder.name,
        "state": i.state.value,
        "verdict": i.verdict.value if i.verdict is not None else "-",
        "by": i.decision.by if i.decision is not None else "-",
        "reviewers": " ".join(i.reviewer_groups) or "(admins)",
    }


def _one_line(text: str) -> str:
    return cell(text, 200)


# --- commands ------------------------------------------------------------------------------------------------


def cmd_start(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Start a campaign over the standing bindings that match, from one read of Rancher."""
    out = out or sys.stdout
    start = rc.ReviewStart(
        name=rc.campaign_name(args.name),
        roles=rc.role_selectors(args.roles) if args.roles is not None else (),
        targets=rc.target_selectors(args.targets) if args.targets is not None else ("*",),
        subjects=rc.subjects(args.subjects),
        due=rc.due(args.due) if args.due is not None else None,
        on_timeout=rc.verdict(args.on_timeout) if args.on_timeout is not None else None,
    )

    async def go(bot: Bot) -> StartReport:
        return await bot.reviews.campaigns.start(start, actor=_actor())

    report = run_with_bot(go, args)
    c = report.campaign
    print(
        f"started review {c.name}: {counted(report.items, 'standing binding')}, "
        f"{counted(report.reviewers, 'reviewer')} asked, "
        f"due {_time(c.due_at)} UTC (undecided then: {c.on_timeout.value})",
        file=out,
    )
    if report.unassigned:
        print(
            f"{counted(report.unassigned, 'binding')} {'has' if report.unassigned == 1 else 'have'} no reviewer "
            "but the admins (no rule or reviewer group)",
            file=out,
        )
    if report.excluded:
        print(
            f"{counted(report.excluded, 'matching binding')} {'is' if report.excluded == 1 else 'are'} managed by "
            "Rancher (global roles) and left out",
            file=out,
        )
    return EXIT_OK


def cmd_list(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """List campaigns, newest first, with their outcomes."""
    out = out or sys.stdout
    if not 1 <= args.limit <= 10_000:
        raise UserError(f"--limit {args.limit} is out of range", "between 1 and 10000")

    async def go(bot: Bot) -> list[tuple[Campaign, Outcome]]:
        return bot.reviews.campaigns.listing(limit=args.limit)

    rows = [_campaign_row(c, o) for c, o in run_with_bot(go, args)]
    if args.json:
        print_json_lines(rows, out)
    elif rows:
        print_table(rows, out)
    else:
        print("no reviews", file=out)
    return EXIT_OK


def _campaign_and_items(args: argparse.Namespace) -> tuple[Campaign, list[ReviewItem]]:
    name = args.name

    async def go(bot: Bot) -> tuple[Campaign, list[ReviewItem]]:
        campaign = bot.reviews.directory.campaign(name)
        return campaign, bot.reviews.campaigns.items(campaign)

    return run_with_bot(go, args)


def cmd_show(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """A campaign's scope, outcome and every item (numbered for `review undo`)."""
    out = out or sys.stdout
    states = _states(args.state)
    campaign, items = _campaign_and_items(args)
    shown_items = [i for i in items if not states or i.state in states]
    if args.json:
        for i in shown_items:
            print(json.dumps(_item_row(i)), file=out)
        return EXIT_OK
    scope = campaign.scope
    print(f"review {cell(campaign.name)} ({campaign.status.value})", file=out)
    print(f"  roles: {_one_line(', '.join(scope.roles))}", file=out)
    print(f"  targets: {_one_line(', '.join(scope.targets))}; subjects: {scope.subjects.value}", file=out)
    print(
        f"  started {_time(campaign.created_at)} by {cell(campaign.created_by)}; due {_time(campaign.due_at)}; "
        f"undecided at the deadline: {campaign.on_timeout.value}"
        + (f"; closed {_time(campaign.closed_at)} by {cell(campaign.closed_by)}" if campaign.closed_at else ""),
        file=out,
    )
    print(f"  {_tally(outcome_of(items))}", file=out)
    if campaign.excluded:
        print(f"  {campaign.excluded} matching bindings managed by Rancher were left out", file=out)
    if shown_items:
        print_table([_item_row(i) for i in shown_items], out)
    else:
        print("no items" + (" in that state" if states else ""), file=out)
    return EXIT_OK


def _states(text: str | None) -> frozenset[ItemState]:
    if not text:
        return frozenset()
    out = set()
    for part in text.split(",")[:20]:
        try:
            out.add(ItemState(part.strip().lower()))
        except ValueError:
            names = ", ".join(s.value for s in ItemState)
            raise UserError(f"`{shown(part)}` is not an item state", f"one of {names}") from None
    return frozenset(out)


def cmd_close(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Close a campaign now: undecided items get its on-timeout verdict."""
    out = out or sys.stdout

    async def go(bot: Bot) -> tuple[Campaign, Outcome]:
        closed = await bot.reviews.campaigns.close(args.name, actor=_actor())
        return closed, outcome(bot.reviews.directory.store.counts(closed.id))

    closed, result = run_with_bot(go, args)
    print(f"closed review {closed.name}: {_tally(result)}", file=out)
    if result.to_apply:
        print(f"see what would change with `accessbot review plan {closed.name}`", file=out)
    return EXIT_OK


def cmd_report(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """The campaign's report: one row per binding, as CSV (formula-safe) or Markdown."""
    campaign, items = _campaign_and_items(args)
    text = report_csv(items) if args.format == "csv" else report_markdown(campaign, items)
    if args.output:
        path = Path(args.output)
        if not path.parent.is_dir():
            raise UserError(f"--output: there is no directory {shown(str(path.parent))}", "name an existing folder")
        partial = path.with_name(path.name + ".partial")
        with partial.open("w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        partial.replace(path)  # a reader never sees half a report
        print(f"wrote {len(items)} items to {cell(str(path), 200)}", file=out or sys.stdout)
    else:
        (out or sys.stdout).write(text)
    return EXIT_OK


def _plan_rows(plan: Plan) -> list[dict[str, object]]:
    return [
        {
            "item": e.item.id,
            "verdict": e.item.verdict.value if e.item.verdict is not None else "-",
            "target": e.item.target_name,
            "role": e.item.binding.role_id,
            "holder": e.item.holder.name,
            "binding": e.item.binding.id,
            "now": e.status.value,
            "why": e.why or "-",
        }
        for e in plan.entries
    ]


def cmd_plan(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """What `review apply` would delete now, and what it would leave alone, from a fresh read of Rancher."""
    out = out or sys.stdout

    async def go(bot: Bot) -> Plan:
        return await bot.reviews.changes.plan(args.name)

    plan = run_with_bot(go, args)
    rows = _plan_rows(plan)
    if args.json:
        print_json_lines(rows, out)
        return EXIT_OK
    print_table(rows, out)
    left = len(plan.entries) - len(plan.ready)
    print(
        f"plan: {counted(len(plan.ready), 'binding')} would be deleted, {left} left alone (changed or gone); "
        f"{plan.kept} kept, {plan.undecided} undecided",
        file=out,
    )
    return EXIT_OK


def cmd_apply(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Delete the bindings of the decided removals and conversions (each stored first, for undo)."""
    out = out or sys.stdout

    async def go(bot: Bot) -> ApplyReport:
        campaign = bot.reviews.directory.campaign(args.name)
        pending = outcome(bot.reviews.directory.store.counts(campaign.id))
        if not pending.to_apply:
            raise UserError(
                f"review {campaign.name} has nothing to apply ({pending.undecided} undecided, {pending.kept} kept, "
                f"{pending.converted + pending.removed} applied already)",
                "reviewers decide in Slack; `accessbot review close NAME` gives undecided items the on-timeout verdict",
            )
        return await bot.reviews.changes.apply_campaign(campaign, actor=_actor())

    report = run_with_bot(go, args)
    for item in report.skipped:
        print(f"item {item.id} left alone: {_one_line(item.note)}", file=out)
    for item in report.failed:
        print(f"item {item.id} not applied: {_one_line(item.note)} (apply again later)", file=out)
    print(
        f"applied review {report.campaign.name}: {counted(len(report.applied), 'binding')} deleted, "
        f"{len(report.skipped)} left alone, {len(report.failed)} failed",
        file=out,
    )
    return EXIT_FAIL if report.failed else EXIT_OK


def cmd_undo(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Recreate the binding an applied removal or conversion deleted."""
    out = out or sys.stdout
    item_id = rc.item_id(args.item)

    async def go(bot: Bot) -> ReviewItem:
        return await bot.reviews.changes.undo(item_id, actor=_actor())

    item = run_with_bot(go, args)
    print(
        f"item {item.id} restored: {cell(item.binding.role_id)} on {cell(item.target_name)} for "
        f"{cell(item.holder.name)} (binding {cell(item.restored_id, 120)})",
        file=out,
    )
    return EXIT_OK


def register(sub: Subparsers, add: Add) -> None:
    """Add `accessbot review …`."""
    p = add("review", lambda a: int(a.review_func(a)), "access reviews of standing Rancher bindings")
    commands = "start|list|show|close|report|plan|apply|undo"
    rsub = p.add_subparsers(dest="review_command", required=True, metavar=commands)
    st = rsub.add_parser("start", help="start a review of the standing bindings that match")
    st.add_argument("--name", required=True, help="the campaign's name (letters, digits, . _ -; at most 64)")
    st.add_argument("--roles", help="role template ids, comma-separated, globs allowed (default: every governed role)")
    st.add_argument("--targets", help="cluster or CLUSTER/PROJECT globs, comma-separated (default: *)")
    st.add_argument("--subjects", default="both", help="users, groups or both (default: both)")
    st.add_argument("--due", help="how long reviewers have, 1h to 365d (default: review.due)")
    st.add_argument("--on-timeout", help="keep, remove or convert undecided items (default: review.on_timeout)")
    st.set_defaults(review_func=cmd_start)
    ls = rsub.add_parser("list", help="list reviews, newest first")
    ls.add_argument("--limit", type=int, default=100)
    ls.add_argument("--json", action="store_true", help="one JSON object per line")
    ls.set_defaults(review_func=cmd_list)
    sh = rsub.add_parser("show", help="a review's scope, outcome and items")
    sh.add_argument("name")
    sh.add_argument("--state", help="only items in these states, comma-separated (pending, decided, applied, …)")
    sh.add_argument("--json", action="store_true", help="one JSON object per item")
    sh.set_defaults(review_func=cmd_show)
    cl = rsub.add_parser("close", help="close a review now (undecided items get its on-timeout verdict)")
    cl.add_argument("name")
    cl.set_defaults(review_func=cmd_close)
    rp = rsub.add_parser("report", help="a review's report, one row per binding")
    rp.add_argument("name")
    rp.add_argument("--format", choices=("csv", "md"), default="csv")
    rp.add_argument("--output", help="write to this file instead of standard output")
    rp.set_defaults(review_func=cmd_report)
    pl = rsub.add_parser("plan", help="what `review apply` would delete, from a fresh read of Rancher")
    pl.add_argument("name")
    pl.add_argument("--json", action="store_true", help="one JSON object per entry")
    pl.set_defaults(review_func=cmd_plan)
    ap = rsub.add_parser("apply", help="delete the bindings of decided removals and conversions")
    ap.add_argument("name")
    ap.set_defaults(review_func=cmd_apply)
    ud = rsub.add_parser("undo", help="recreate the binding an applied item deleted")
    ud.add_argument("item", help="the item number (see `review show NAME`)")
    ud.set_defaults(review_func=cmd_undo)
