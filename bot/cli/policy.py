"""`accessbot policy test|validate`: explain one decision of the access policy, or check it against Rancher."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, TextIO

from bot.cli.context import EXIT_FAIL, EXIT_OK, Add, Subparsers, run_with_bot
from bot.core.durations import format_duration, parse_duration
from bot.core.errors import UserError

if TYPE_CHECKING:
    from bot.wiring import Bot


def cmd_policy_test(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Explain the policy decision for a user (by email, groups from the stored link) or for `--groups`."""
    out = out or sys.stdout
    duration = parse_duration(args.duration) if args.duration else None

    async def go(bot: Bot) -> int:
        if args.groups is not None:
            groups = tuple(g.strip() for g in args.groups.split(",") if g.strip())
            who = f"groups {', '.join(groups) or '(none)'}"
        else:
            if not args.user:
                raise UserError("give --user EMAIL (a linked user) or --groups a,b")
            email = args.user.strip().lower()
            linked = bot.grants.directory.linked()
            link = next((i for i in linked if i.email.lower() == email), None)
            if link is None:
                raise UserError(f"no active link with email {args.user}", "use --groups a,b to supply the groups")
            groups = link.policy_groups
            who = f"{link.email} (Slack {link.slack_user}; groups {', '.join(groups) or 'none'})"
        result = await bot.grants.queries.test_policy(
            groups, args.target, args.role, duration, break_glass=args.break_glass
        )
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

    return run_with_bot(go, args)


def cmd_policy_validate(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Check the policy against Rancher: unknown role templates, misplaced roles, selectors matching nothing."""
    out = out or sys.stdout

    async def go(bot: Bot) -> list[str]:
        return await bot.grants.queries.validate()

    warnings = run_with_bot(go, args)
    for warning in warnings:
        print(f"warning: {warning}", file=out)
    print(f"{len(warnings)} warning(s)" if warnings else "OK: every rule can be used", file=out)
    return EXIT_FAIL if warnings else EXIT_OK


def register(sub: Subparsers, add: Add) -> None:
    """Add `accessbot policy test|validate`."""
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
