"""The `accessbot` command line: the parser, `main()`, and the one mapping from a failure to a message and exit code.

Each command group lives in its own module with a `register(sub, add)`; `context` holds what they share.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import NoReturn

from bot import __version__
from bot.cli import audit, data, dev, digest, generate, grants, oidc, outbox, policy, prepare, rancher, reviews, serve
from bot.cli.context import EXIT_FAIL, EXIT_OK, EXIT_USAGE, Command
from bot.core.errors import BotError, ConfigError, UserError

REGISTRARS = (
    serve.register,
    prepare.register,
    data.register,
    audit.register,
    generate.register,
    dev.register,
    rancher.register,
    oidc.register,
    policy.register,
    grants.register,
    outbox.register,
    digest.register,
    reviews.register,
)
"""Every command group, in the order `accessbot --help` lists them."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line on stderr and exit 2 (no usage block)."""

    def error(self, message: str) -> NoReturn:
        """Print `error: … (see accessbot X --help)` and exit 2."""
        self.exit(EXIT_USAGE, f"error: {message} (see `{self.prog} --help`)\n")


def terminal_text(text: str) -> str:
    """One line for the terminal: control characters a refusal quotes back (escape sequences typed or read from
    outside) shown as `?`, so an error message can never drive the terminal."""
    return "".join(c if c.isprintable() else "?" for c in text)


DEV_TOOLS = ("dev-idp", "dev-rancher")
"""Subcommands that hand every argument after them to the emulator's own command line."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = _Parser(prog="accessbot", description="Identity-based, time-boxed access to Rancher clusters from Slack.")
    parser.add_argument("--version", action="version", version=f"accessbot {__version__}")
    parser.add_argument("--config", help="configuration file (default: $ACCESSBOT_CONFIG or ./config.yaml)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, fn: Command, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--config", default=argparse.SUPPRESS, help="configuration file")
        p.set_defaults(func=fn)
        return p

    for register in REGISTRARS:
        register(sub, add)  # type: ignore[arg-type]  # a _Parser is an ArgumentParser
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: run one subcommand and map failures to one line and an exit code.

    ConfigError prints each problem on stderr (exit 2); UserError prints `error: message (hint)` (exit 2); any other
    BotError prints `error: …` (exit 1); Ctrl-C exits 130 and a closed pipe exits 0.
    """
    raw = list(sys.argv[1:] if argv is None else argv)
    start = 2 if raw[:1] == ["--config"] else 0
    if raw[start : start + 1] and raw[start] in DEV_TOOLS:  # the emulator's own parser reads the rest (--port …)
        return dev.run_tool(raw[start], raw[start + 1 :])
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(raw)
        if getattr(args, "func", None) and extra:
            parser.error(f"unrecognized arguments: {' '.join(extra)[:200]}")
    except SystemExit as done:  # --help, --version, or a usage error already printed on one line
        return done.code if isinstance(done.code, int) else EXIT_USAGE
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
        print(terminal_text(f"error: {err.message}" + (f" ({err.hint})" if err.hint else "")), file=sys.stderr)
        return EXIT_USAGE
    except BotError as err:
        print(terminal_text(f"error: {err}"), file=sys.stderr)
        return EXIT_FAIL
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as err:  # a bug or an outside failure nobody translated: one line, never a traceback
        logging.getLogger("bot.cli").debug("unexpected failure", exc_info=True)
        print(
            terminal_text(f"error: unexpected {type(err).__name__} ({str(err)[:200]}); nothing more was done"),
            file=sys.stderr,
        )
        return EXIT_USAGE
