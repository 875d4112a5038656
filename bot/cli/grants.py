"""`accessbot grants list|revoke`: the time-boxed grants in the database, as a table or JSON, and revoking one."""

from __future__ import annotations

import argparse
import getpass
import sys
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, TextIO

from bot.cli.context import EXIT_FAIL, EXIT_OK, Add, Subparsers, run_with_bot, storage_from
from bot.cli.tables import print_json_lines, print_table
from bot.core.durations import format_duration
from bot.core.grant_lifecycle import OPEN
from bot.core.model import Grant, GrantState

if TYPE_CHECKING:
    from bot.wiring import Bot


def _time(ts: int | None) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M") if ts else "-"


def _row(g: Grant, who: str = "") -> dict[str, object]:
    return {
        "id": g.id,
        "user": f"{who} ({g.slack_user})" if who else g.slack_user,
        "state": g.state.value,
        "role": g.role_id,
        "target": g.target.key,
        "duration": format_duration_s(g.duration_s),
        "rule": g.rule,
        "expires": _time(g.expires_at),
        "binding": g.binding_id or "",
    }


def format_duration_s(seconds: int) -> str:
    """Seconds as `2h 30m`."""
    return format_duration(timedelta(seconds=seconds))


def cmd_grants_list(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """List grants from the database (open ones unless --all)."""
    out = out or sys.stdout
    with storage_from(args) as storage:
        grants = storage.grants.find(slack_user=args.user, states=() if args.all else OPEN, limit=args.limit)
        links = {u: storage.links.get(u) for u in {g.slack_user for g in grants}}
    who = {u: (r.identity.email or r.identity.name) for u, r in links.items() if r is not None}
    rows = [_row(g, who.get(g.slack_user, "")) for g in grants]
    if args.json:
        print_json_lines(rows, out)
        return EXIT_OK
    if not rows:
        print("no grants", file=out)
        return EXIT_OK
    print_table(rows, out)
    return EXIT_OK


def cmd_grants_revoke(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Revoke a grant (or withdraw a request) now, deleting its Rancher binding."""
    out = out or sys.stdout
    actor = f"cli:{getpass.getuser()}"

    async def go(bot: Bot) -> Grant:
        reason = args.reason or f"revoked from the command line by {actor}"
        return await bot.grants.lifecycle.end(args.grant_id, actor=actor, reason=reason)

    grant = run_with_bot(go, args)
    print(f"{grant.id}: {grant.state.value}", file=out)
    return EXIT_OK if grant.state in (GrantState.REVOKED, GrantState.WITHDRAWN) else EXIT_FAIL


def register(sub: Subparsers, add: Add) -> None:
    """Add `accessbot grants list|revoke`."""
    p = add("grants", lambda a: int(a.grants_func(a)), "list or revoke time-boxed grants")
    grants_sub = p.add_subparsers(dest="grants_command", required=True, metavar="list|revoke")
    ls = grants_sub.add_parser("list", help="list open grants (all with --all)")
    ls.add_argument("--all", action="store_true", help="include ended grants")
    ls.add_argument("--user", help="only this Slack user id")
    ls.add_argument("--limit", type=int, default=200)
    ls.add_argument("--json", action="store_true", help="one JSON object per line")
    ls.set_defaults(grants_func=cmd_grants_list)
    rv = grants_sub.add_parser("revoke", help="revoke a grant now (deletes its Rancher binding)")
    rv.add_argument("grant_id")
    rv.add_argument("--reason", default="")
    rv.set_defaults(grants_func=cmd_grants_revoke)
