"""`accessbot rancher check`: can the bot reach Rancher, who is its key, and what will not work."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TextIO

from bot.cli.context import EXIT_FAIL, EXIT_OK, Add, Subparsers, config_from


def cmd_rancher_check(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Verify connectivity, the key (name, owner, provider, expiry), admin, the server version; exit 0 or 1."""
    from bot.wiring import build_rancher  # noqa: PLC0415

    out = out or sys.stdout
    config = config_from(args)
    if not config.rancher.verify_tls:
        print("warning: rancher.verify_tls is false; the connection to Rancher is not authenticated", file=out)

    async def check() -> int:
        client = build_rancher(config)
        try:
            report = await client.check(config.rancher.auth_provider)
        finally:
            await client.aclose()
        print(f"Rancher        {report.url}", file=out)
        print(f"reachable      {'yes' if report.reachable else 'no'}", file=out)
        if report.reachable:
            print(f"server version {report.server_version or 'unknown'}", file=out)
            print(f"API key        {report.key_name or '?'}", file=out)
            print(f"key owner      {report.user_name or '?'} ({report.user_id or '?'})", file=out)
            print(f"key provider   {report.auth_provider or 'unknown'}", file=out)
            print(f"key expires    {report.expires_at or 'unknown'}", file=out)
            print(f"global admin   {'yes, ' + report.admin_via if report.is_admin else 'no'}", file=out)
            for line in report.implications:
                print(f"this version   {line}", file=out)
        for problem in report.problems:
            print(f"problem: {problem}", file=out)
        for warning in report.warnings:
            print(f"warning: {warning}", file=out)
        print("OK" if report.ok else "NOT OK", file=out)
        return EXIT_OK if report.ok else EXIT_FAIL

    return asyncio.run(check())


def register(sub: Subparsers, add: Add) -> None:
    """Add `accessbot rancher check`."""
    parser = add("rancher", cmd_rancher_check, "check the Rancher server and the bot's API key")
    rancher_sub = parser.add_subparsers(dest="rancher_command", required=True, metavar="check")
    rancher_sub.add_parser("check", help="connectivity, key user and provider, server version, warnings")
