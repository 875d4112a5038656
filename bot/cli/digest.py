"""`accessbot digest`: the audit digest the bot posts weekly, printed in the terminal for any window."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.cli.context import EXIT_OK, Add, Subparsers, config_from, storage_from
from bot.core.durations import parse_moment
from bot.core.errors import UserError

if TYPE_CHECKING:
    from bot.core.storage import Storage


def _moment(text: str | None, now: datetime) -> int:
    """`7d` (that long ago), an ISO date/time, or epoch seconds; None means now."""
    return int(now.timestamp()) if text is None else parse_moment(text, now)


def _name(storage: Storage, slack_user: str) -> str:
    """How people know a Slack user: the email (else the name) of their link, when they ever linked."""
    record = storage.links.get(slack_user)
    return (record.identity.email or record.identity.name) if record is not None else ""


def cmd_digest(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Print the digest of [since, until) with the change against the equally long window before it."""
    from bot.services.jobs.digest import build_period_digest  # noqa: PLC0415 - only this command needs it
    from bot.slack.digest_blocks import render_digest_text  # noqa: PLC0415
    from bot.wiring import audit_keys  # noqa: PLC0415

    config = config_from(args)
    timezone = args.timezone or config.schedule.digest.timezone
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise UserError(
            f"--timezone {timezone[:60]} is not a time zone", "an IANA name like Europe/Berlin or UTC"
        ) from None
    now = datetime.now(UTC)
    since, until = _moment(args.since, now), _moment(args.until, now)
    if since >= until:
        raise UserError("--since must be before --until", "for example `accessbot digest --since 7d`")
    with storage_from(args) as storage:
        digest = build_period_digest(storage, since, until, audit_keys(config))
        people = {u for u, _ in digest.top_requesters} | {s.slack_user for s in digest.longest_grants}
        people |= {b.slack_user for b in digest.break_glass}
        names = {u: _name(storage, u) for u in people}
    text = render_digest_text(digest, timezone=timezone, names={u: n for u, n in names.items() if n})
    (out or sys.stdout).write(text)
    return EXIT_OK


def register(sub: Subparsers, add: Add) -> None:
    """Add `accessbot digest --since 7d [--until T] [--timezone TZ]`."""
    p = add("digest", cmd_digest, "print the audit digest (as posted weekly) for a time window")
    p.add_argument("--since", default="7d", help="start: 7d (ago), an ISO time, or epoch seconds (default 7d)")
    p.add_argument("--until", help="end (exclusive), same forms (default: now)")
    p.add_argument("--timezone", help="show times in this IANA zone (default: schedule.digest.timezone)")
