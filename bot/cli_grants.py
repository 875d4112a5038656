"""Operator commands for the policy and grants: `accessbot policy test|validate` and `accessbot grants list|revoke`."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

from bot.core.durations import format_duration, parse_duration
from bot.core.errors import UserError
from bot.core.model import Grant, GrantState

if TYPE_CHECKING:
    from bot.adapters.store import Store
    from bot.config import Config
    from bot.services.granting import GrantingService

EXIT_OK, EXIT_FAIL = 0, 1
Add = Callable[[str, Callable[[argparse.Namespace], int], str], argparse.ArgumentParser]
_T = TypeVar("_T")


def _run(factory: Callable[[GrantingService, Store], Coroutine[Any, Any, _T]], args: argparse.Namespace) -> _T:
    """Build the store, the Rancher client and the granting service from the config, run one coroutine, close."""
    from bot.adapters.clock import SystemClock  # noqa: PLC0415 - only these commands need the wiring
    from bot.config import load_config  # noqa: PLC0415
    from bot.services.audit import AuditLog  # noqa: PLC0415
    from bot.services.notifications import Notifications  # noqa: PLC0415
    from bot.wiring import build_granting, open_store  # noqa: PLC0415

    config: Config = load_config(getattr(args, "config", None))
    store = open_store(config)
    clock = SystemClock()
    channels = config.slack.channels
    notifications = Notifications(
        store,
        clock,
        {"grants": channels.grants, "approvals": channels.approvals, "security": channels.security},
    )

    async def main() -> _T:
        rancher, granting = build_granting(
            config, store=store, audit=AuditLog(store, clock), notifications=notifications, clock=clock
        )
        try:
            return await factory(granting, store)
        finally:
            await rancher.aclose()

    try:
        return asyncio.run(main())
    finally:
        store.close()


def cmd_policy_test(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Explain the policy decision for a user (by email, groups from the stored link) or for `--groups`."""
    out = out or sys.stdout
    duration = parse_duration(args.duration) if args.duration else None

    async def go(svc: GrantingService, store: Store) -> int:
        if args.groups is not None:
            groups = tuple(g.strip() for g in args.groups.split(",") if g.strip())
            who = f"groups {', '.join(groups) or '(none)'}"
        else:
            if not args.user:
                raise UserError("give --user EMAIL (a linked user) or --groups a,b")
            email = args.user.strip().lower()
            link = next((i for i in store.active_links() if i.email.lower() == email), None)
            if link is None:
                raise UserError(f"no active link with email {args.user}", "use --groups a,b to supply the groups")
            groups = link.groups
            who = f"{link.email} (Slack {link.slack_user}; groups {', '.join(groups) or 'none'})"
        result = await svc.test_policy(groups, args.target, args.role, duration, break_glass=args.break_glass)
        d = result.decision
        print(f"{'ALLOWED' if d.allowed else 'DENIED'}: {args.role} on {result.target} for {who}", file=out)
        print(f"  why: {d.why}", file=out)
        if d.allowed and d.rule is not None and d.duration is not None:
            print(f"  rule: {d.rule.name}", file=out)
            print(f"  duration: {format_duration(d.duration)} (max {format_duration(d.rule.max_duration)})", file=out)
            if d.break_glass:
                print("  approval: break-glass (self-approved, announced)", file=out)
            elif d.needs_approval:
                print(f"  approval: {d.approvals_required} from {', '.join(d.approver_groups)}", file=out)
            else:
                print("  approval: none (self-service)", file=out)
        return EXIT_OK if d.allowed else EXIT_FAIL

    return _run(go, args)


def cmd_policy_validate(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Check the policy against Rancher: unknown role templates, misplaced roles, selectors matching nothing."""
    out = out or sys.stdout

    async def go(svc: GrantingService, store: Store) -> list[str]:
        return await svc.validate()

    warnings = _run(go, args)
    for warning in warnings:
        print(f"warning: {warning}", file=out)
    print(f"{len(warnings)} warning(s)" if warnings else "OK: every rule can be used", file=out)
    return EXIT_FAIL if warnings else EXIT_OK


def _time(ts: int | None) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M") if ts else "-"


def _row(g: Grant) -> dict[str, object]:
    return {
        "id": g.id,
        "user": g.slack_user,
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
    from datetime import timedelta  # noqa: PLC0415

    return format_duration(timedelta(seconds=seconds))


def cmd_grants_list(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """List grants from the database (open ones unless --all)."""
    out = out or sys.stdout
    from bot.config import load_config  # noqa: PLC0415
    from bot.services.granting import OPEN_STATES  # noqa: PLC0415
    from bot.wiring import open_store  # noqa: PLC0415

    config = load_config(getattr(args, "config", None))
    store = open_store(config)
    try:
        states: tuple[GrantState, ...] = () if args.all else OPEN_STATES
        grants = store.grants(slack_user=args.user, states=states, limit=args.limit)
    finally:
        store.close()
    rows = [_row(g) for g in grants]
    if args.json:
        for row in rows:
            print(json.dumps(row), file=out)
        return EXIT_OK
    if not rows:
        print("no grants", file=out)
        return EXIT_OK
    cols = list(rows[0])
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in cols}
    print("  ".join(c.upper().ljust(widths[c]) for c in cols).rstrip(), file=out)
    for row in rows:
        print("  ".join(str(row[c]).ljust(widths[c]) for c in cols).rstrip(), file=out)
    return EXIT_OK


def cmd_grants_revoke(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Revoke a grant (or withdraw a request) now, deleting its Rancher binding."""
    out = out or sys.stdout
    actor = f"cli:{getpass.getuser()}"

    async def go(svc: GrantingService, store: Store) -> Grant:
        return await svc.end(
            args.grant_id, actor=actor, reason=args.reason or f"revoked from the command line by {actor}"
        )

    grant = _run(go, args)
    print(f"{grant.id}: {grant.state.value}", file=out)
    return EXIT_OK if grant.state in (GrantState.REVOKED, GrantState.DENIED) else EXIT_FAIL


def register_policy(sub: Any, add: Add) -> None:
    """`accessbot policy test|validate`."""
    p = add("policy", lambda a: int(a.policy_func(a)), "test or validate the access policy")
    policy_sub = p.add_subparsers(dest="policy_command", required=True, metavar="test|validate")
    t = policy_sub.add_parser("test", help="explain the decision for a user, target, role and duration")
    t.add_argument("--user", help="email of a linked user (their stored groups are used)")
    t.add_argument("--groups", help="comma-separated IdP groups instead of a linked user")
    t.add_argument("--target", required=True, help="CLUSTER or CLUSTER/PROJECT (names or ids)")
    t.add_argument("--role", required=True, help="role template id, e.g. project-member")
    t.add_argument("--for", dest="duration", help="duration such as 2h (default: the rule's default)")
    t.add_argument("--break-glass", action="store_true", help="test a break-glass request")
    t.set_defaults(policy_func=cmd_policy_test)
    v = policy_sub.add_parser("validate", help="warn about rules that cannot work against this Rancher")
    v.set_defaults(policy_func=cmd_policy_validate)


def register_grants(sub: Any, add: Add) -> None:
    """`accessbot grants list|revoke`."""
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
