"""`accessbot outbox list|retry|drop`: the Slack messages the bot still owes, and what operators do with parked ones."""

from __future__ import annotations

import argparse
import getpass
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TextIO

from bot.cli.context import EXIT_OK, Add, Subparsers, run_with_bot, storage_from
from bot.cli.tables import print_json_lines, print_table
from bot.core.errors import UserError
from bot.core.model import OutboxMessage, OutboxStatus

if TYPE_CHECKING:
    from bot.wiring import Bot


def _time(ts: int | None) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M") if ts else "-"


def _row(m: OutboxMessage) -> dict[str, object]:
    return {
        "id": m.id,
        "status": m.status.value,
        "kind": m.kind,
        "to": m.channel,
        "attempts": m.attempts,
        "queued": _time(m.created_at),
        "error": m.last_error,
        "key": m.key,
    }


def _statuses(args: argparse.Namespace) -> tuple[OutboxStatus, ...]:
    if args.all:
        return tuple(OutboxStatus)
    names = args.status or ["parked"]
    try:
        return tuple(OutboxStatus(name) for name in names)
    except ValueError:
        choices = ", ".join(s.value for s in OutboxStatus)
        raise UserError(f"unknown status {', '.join(names)}", f"use {choices}") from None


def cmd_outbox_list(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """List outbox messages (parked ones unless --status or --all), oldest first."""
    out = out or sys.stdout
    statuses = _statuses(args)
    if args.limit < 1 or args.limit > 100_000:
        raise UserError(f"--limit {args.limit} is out of range", "use 1 to 100000")
    with storage_from(args) as storage:
        rows = [_row(m) for m in storage.outbox.listing(statuses, args.limit)]
    if args.json:
        print_json_lines(rows, out)
        return EXIT_OK
    if not rows:
        print(f"no {' or '.join(s.value for s in statuses)} messages", file=out)
        return EXIT_OK
    print_table(rows, out)
    return EXIT_OK


def _operate(args: argparse.Namespace, out: TextIO | None, verb: str) -> int:
    out = out or sys.stdout
    actor = f"cli:{getpass.getuser()}"

    async def go(bot: Bot) -> OutboxMessage:
        if verb == "retry":
            return bot.outbox.retry(args.message_id, actor=actor)
        return bot.outbox.drop(args.message_id, actor=actor)

    message = run_with_bot(go, args)
    print(f"{message.id}: {message.status.value}", file=out)
    return EXIT_OK


def cmd_outbox_retry(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Put a parked message back in the queue (the next delivery run sends it)."""
    return _operate(args, out, "retry")


def cmd_outbox_drop(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Give up on a parked or pending message for good."""
    return _operate(args, out, "drop")


def _message_id(text: str) -> int:
    if not text.isdigit() or len(text) > 18:
        raise argparse.ArgumentTypeError(f"{text!r} is not a message id (a number from `accessbot outbox list`)")
    return int(text)


def register(sub: Subparsers, add: Add) -> None:
    """Add `accessbot outbox list|retry|drop`."""
    p = add("outbox", lambda a: int(a.outbox_func(a)), "list, retry or drop the Slack messages the bot owes")
    outbox_sub = p.add_subparsers(dest="outbox_command", required=True, metavar="list|retry|drop")
    ls = outbox_sub.add_parser("list", help="list parked messages (others with --status or --all)")
    ls.add_argument("--status", action="append", help="pending, parked, sent or dropped (repeatable)")
    ls.add_argument("--all", action="store_true", help="every status")
    ls.add_argument("--limit", type=int, default=100)
    ls.add_argument("--json", action="store_true", help="one JSON object per line")
    ls.set_defaults(outbox_func=cmd_outbox_list)
    retry = outbox_sub.add_parser("retry", help="send a parked message again")
    retry.add_argument("message_id", type=_message_id)
    retry.set_defaults(outbox_func=cmd_outbox_retry)
    drop = outbox_sub.add_parser("drop", help="give up on a parked or pending message")
    drop.add_argument("message_id", type=_message_id)
    drop.set_defaults(outbox_func=cmd_outbox_drop)
