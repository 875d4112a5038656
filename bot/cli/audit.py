"""`accessbot audit verify|export`: check the audit log's hash chain, or write its events out for a SIEM."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import TextIO

from bot.cli.context import EXIT_FAIL, EXIT_OK, Add, Subparsers, config_from, storage_from
from bot.core.durations import parse_moment
from bot.core.errors import UserError, is_number, shown
from bot.core.model import ChainHead

_HEX = frozenset("0123456789abcdef")


def parse_anchor(text: str) -> ChainHead:
    """`ID:HASH` (as the security channel and the digest post it) → the anchored head; UserError otherwise."""
    event_id, _, digest = text.strip().partition(":")
    digest = digest.lower()
    if not (is_number(event_id) and len(event_id) <= 18 and len(digest) == 64 and set(digest) <= _HEX):
        raise UserError(f"`{shown(text)}` is not an anchor", "write it as ID:HASH, e.g. 1204:9f86d0…(64 hex digits)")
    return ChainHead(int(event_id), digest)


def _time_arg(text: str | None, now: datetime) -> int | None:
    """`7d` (ago), an ISO date/time, or epoch seconds; None stays None."""
    return None if text is None else parse_moment(text, now)


def cmd_audit(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Verify or export the audit log."""
    out = out or sys.stdout
    from bot.adapters.clock import SystemClock  # noqa: PLC0415
    from bot.wiring import audit_log  # noqa: PLC0415

    anchors = [parse_anchor(text) for text in getattr(args, "anchor", None) or ()]
    config = config_from(args)
    with storage_from(args) as storage:
        audit = audit_log(config, storage, SystemClock())
        if args.audit_command == "verify":
            check = audit.verify(anchors)
            if check.ok:
                keyed = " (keyed)" if audit.keys else ""
                against = f", matches {len(anchors)} anchor(s)" if anchors else ""
                print(f"OK: {check.count} events, chain intact{keyed}{against}", file=out)
                return EXIT_OK
            print(
                f"BROKEN at event {check.broken_at}: {check.problem} ({check.count} events verified before it)",
                file=out,
            )
            return EXIT_FAIL
        now = datetime.now(UTC)
        since, until = _time_arg(args.since, now), _time_arg(args.until, now)
        for chunk in audit.export(since, until, args.format):
            out.write(chunk)
        return EXIT_OK


def register(sub: Subparsers, add: Add) -> None:
    """Add `accessbot audit verify` and `accessbot audit export [--since] [--until] [--format]`."""
    p = add("audit", cmd_audit, "verify or export the audit log")
    audit_sub = p.add_subparsers(dest="audit_command", required=True, metavar="verify|export")
    verify = audit_sub.add_parser("verify", help="check the hash chain; exit 1 at the first broken event")
    verify.add_argument(
        "--anchor",
        action="append",
        metavar="ID:HASH",
        help="an anchor posted in the security channel or the weekly digest (repeatable)",
    )
    export = audit_sub.add_parser("export", help="write events to stdout for a SIEM")
    export.add_argument("--since", default="7d", help="7d, an ISO time, or epoch seconds (default 7d)")
    export.add_argument("--until", help="end of the range (exclusive)")
    export.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
