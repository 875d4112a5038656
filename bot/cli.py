"""The `accessbot` command line: serve, demo, check-config, migrate, audit, manifest and operator tools."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TextIO

import yaml

from bot import __version__
from bot.config import Config, load_config, summary
from bot.core.durations import parse_moment
from bot.core.errors import BotError, ConfigError, UserError

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
Command = Callable[[argparse.Namespace], int]


def _config(args: argparse.Namespace) -> Config:
    return load_config(getattr(args, "config", None))


def cmd_check_config(args: argparse.Namespace) -> int:
    """Validate a configuration file and print a summary."""
    config = load_config(args.path or args.config)
    print("OK")
    for line in summary(config):
        print("  " + line)
    return EXIT_OK


def cmd_migrate(args: argparse.Namespace) -> int:
    """Apply database migrations."""
    from bot.wiring import open_store  # noqa: PLC0415 - only this command needs the store

    config = _config(args)
    store = open_store(config)
    try:
        applied = store.applied_migrations()
    finally:
        store.close()
    print(f"OK: {config.database} has {len(applied)} migration(s) applied, none pending")
    return EXIT_OK


def _time_arg(text: str | None, now: datetime) -> int | None:
    """`7d` (ago), an ISO date/time, or epoch seconds; None stays None."""
    return None if text is None else parse_moment(text, now)


def cmd_audit(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Verify or export the audit log."""
    out = out or sys.stdout
    from bot.adapters.clock import SystemClock  # noqa: PLC0415
    from bot.services.audit import AuditLog  # noqa: PLC0415
    from bot.wiring import open_store  # noqa: PLC0415

    config = _config(args)
    store = open_store(config)
    try:
        audit = AuditLog(store, SystemClock())
        if args.audit_command == "verify":
            check = audit.verify()
            if check.ok:
                print(f"OK: {check.count} events, chain intact", file=out)
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
    finally:
        store.close()


def cmd_manifest(args: argparse.Namespace) -> int:
    """Print a Slack app manifest for this configuration."""
    from bot.manifest import build_manifest  # noqa: PLC0415

    config = _config(args)
    print(yaml.safe_dump(build_manifest(config), sort_keys=False), end="")
    return EXIT_OK


def cmd_gen_key(args: argparse.Namespace) -> int:
    """Print a new Fernet key for security.token_encryption_keys."""
    from cryptography.fernet import Fernet  # noqa: PLC0415

    print(Fernet.generate_key().decode())
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the bot: HTTP server, Slack listeners and scheduled jobs in one process."""
    import uvicorn  # noqa: PLC0415

    from bot.logs import setup_logging  # noqa: PLC0415
    from bot.server import create_app  # noqa: PLC0415

    config = _config(args)
    setup_logging(config.log_level)
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


def cmd_demo(args: argparse.Namespace) -> int:
    """Start the whole product on loopback with emulators and an interactive console."""
    from bot.demo import console  # noqa: PLC0415 - the demo is imported only when it runs

    return console.main(args)


def cmd_dev_idp(args: argparse.Namespace) -> int:
    """Run the development OpenID provider."""
    from bot.demo import dev_commands  # noqa: PLC0415 - developer tool

    return dev_commands.dev_idp(args.rest)


def cmd_dev_rancher(args: argparse.Namespace) -> int:
    """Run the Rancher v3 emulator."""
    from bot.demo import dev_commands  # noqa: PLC0415 - developer tool

    return dev_commands.dev_rancher(args.rest)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="accessbot", description="Identity-based, time-boxed access to Rancher clusters from Slack."
    )
    parser.add_argument("--version", action="version", version=f"accessbot {__version__}")
    parser.add_argument("--config", help="configuration file (default: $ACCESSBOT_CONFIG or ./config.yaml)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, fn: Command, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--config", default=argparse.SUPPRESS, help="configuration file")
        p.set_defaults(func=fn)
        return p

    p = add("serve", cmd_serve, "run the bot (HTTP, Slack listeners, scheduled jobs)")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--socket-mode", action="store_true", help="receive Slack events over Socket Mode")
    p = add("check-config", cmd_check_config, "validate a configuration file and print a summary")
    p.add_argument("path", nargs="?")
    add("migrate", cmd_migrate, "apply database migrations")
    p = add("audit", cmd_audit, "verify or export the audit log")
    audit_sub = p.add_subparsers(dest="audit_command", required=True, metavar="verify|export")
    audit_sub.add_parser("verify", help="check the hash chain; exit 1 at the first broken event")
    export = audit_sub.add_parser("export", help="write events to stdout for a SIEM")
    export.add_argument("--since", default="7d", help="7d, an ISO time, or epoch seconds (default 7d)")
    export.add_argument("--until", help="end of the range (exclusive)")
    export.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    add("manifest", cmd_manifest, "print a Slack app manifest (YAML) for this configuration")
    add("gen-key", cmd_gen_key, "print a new Fernet key for security.token_encryption_keys")
    p = add("demo", cmd_demo, "run the whole product on this machine with emulators (no accounts needed)")
    p.add_argument("--database", help="SQLite file to use (default: a fresh temp file)")
    p.add_argument("--script", help="run console commands from FILE; exit non-zero when an :expect fails")
    p = add("dev-idp", cmd_dev_idp, "run the development OpenID provider (tests and demo)")
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p = add("dev-rancher", cmd_dev_rancher, "run the Rancher v3 emulator (tests and demo)")
    p.add_argument("rest", nargs=argparse.REMAINDER)
    for extra in _extra_commands():
        extra(sub, add)
    return parser


def _extra_commands() -> list[Callable[..., None]]:
    from bot import cli_ops  # noqa: PLC0415 - operator commands live in their own module

    return list(cli_ops.REGISTRARS)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: run one subcommand and map failures to one line and an exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args))
    except ConfigError as err:
        for problem in err.problems:
            print(problem, file=sys.stderr)
        return EXIT_USAGE
    except UserError as err:
        print(f"error: {err.message}" + (f" ({err.hint})" if err.hint else ""), file=sys.stderr)
        return EXIT_USAGE
    except BotError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_FAIL
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
