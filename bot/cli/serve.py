"""`accessbot serve`: the HTTP server, the Slack listeners and the scheduled jobs in one process."""

from __future__ import annotations

import argparse
import os

from bot.cli.context import EXIT_OK, Add, Subparsers, config_from, storage_from


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the bot: HTTP server, Slack listeners and scheduled jobs in one process."""
    import uvicorn  # noqa: PLC0415

    from bot.logs import setup_logging  # noqa: PLC0415
    from bot.web.app import create_app  # noqa: PLC0415

    config = config_from(args)
    setup_logging(config.log_level)
    with storage_from(args):
        pass  # migrate now, or stop with one line: a database newer than this version, or one that does not answer
    app = create_app(config, socket_mode=args.socket_mode)
    uvicorn.run(
        app,
        host=args.host or config.server.host,
        port=args.port or config.server.port,
        log_config=None,
        proxy_headers=True,
        forwarded_allow_ips=os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1"),
    )
    return EXIT_OK


def register(sub: Subparsers, add: Add) -> None:
    """Add `accessbot serve [--host H] [--port P] [--socket-mode]`."""
    p = add("serve", cmd_serve, "run the bot (HTTP, Slack listeners, scheduled jobs)")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--socket-mode", action="store_true", help="receive Slack events over Socket Mode")
