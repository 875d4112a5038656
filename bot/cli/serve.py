"""`accessbot serve`: the HTTP server, the Slack listeners and the scheduled jobs in one process."""

from __future__ import annotations

import argparse
import os
import socket

from bot.cli.context import EXIT_OK, Add, Subparsers, config_from, storage_from
from bot.core.errors import UserError


def _listen(host: str, port: int) -> socket.socket:
    """Bind the listening socket before anything starts, so a busy port is one clear line, not a traceback."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as err:
        sock.close()
        raise UserError(
            f"cannot listen on {host}:{port} ({err.strerror or 'address unavailable'})",
            "another process may hold the port; choose one with --port or server.port",
        ) from None
    return sock


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the bot: HTTP server, Slack listeners and scheduled jobs in one process."""
    import uvicorn  # noqa: PLC0415

    from bot.logs import setup_logging  # noqa: PLC0415
    from bot.web.app import create_app  # noqa: PLC0415

    config = config_from(args)
    if args.socket_mode and config.slack.app_token is None:
        raise UserError("--socket-mode needs slack.app_token", "an app-level token xapp-… with connections:write")
    if not args.socket_mode and config.slack.signing_secret is None:
        raise UserError(
            "slack.signing_secret is not set, so Slack's HTTP requests cannot be verified",
            "set it, or run `accessbot serve --socket-mode`",
        )
    port = config.server.port if args.port is None else args.port
    if not 0 <= port <= 65535:
        raise UserError(f"--port {port} is not a TCP port", "use 1 to 65535")
    with storage_from(args):
        pass  # migrate now, or stop with one line: a database newer than this version, or one that does not answer
    sock = _listen(args.host or config.server.host, port)
    setup_logging(config.log_level)
    app = create_app(config, socket_mode=args.socket_mode)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            log_config=None,
            proxy_headers=True,
            forwarded_allow_ips=os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1"),
        )
    )
    server.run(sockets=[sock])
    return EXIT_OK


def register(sub: Subparsers, add: Add) -> None:
    """Add `accessbot serve [--host H] [--port P] [--socket-mode]`."""
    p = add("serve", cmd_serve, "run the bot (HTTP, Slack listeners, scheduled jobs)")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--socket-mode", action="store_true", help="receive Slack events over Socket Mode")
