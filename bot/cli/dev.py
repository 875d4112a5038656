"""`accessbot demo`, `dev-idp` and `dev-rancher`: the developer tools, imported only when one of them runs."""

from __future__ import annotations

import argparse

from bot.cli.context import Add, Subparsers


def cmd_demo(args: argparse.Namespace) -> int:
    """Start the whole product on loopback with emulators and an interactive console."""
    from bot.demo import session  # noqa: PLC0415 - the demo is imported only when it runs

    return session.main(args)


def run_tool(name: str, argv: list[str]) -> int:
    """`accessbot dev-idp …` / `accessbot dev-rancher …`: every argument goes to the emulator's own parser."""
    from bot.demo import dev_commands  # noqa: PLC0415 - developer tool

    return dev_commands.dev_idp(argv) if name == "dev-idp" else dev_commands.dev_rancher(argv)


def cmd_dev_idp(args: argparse.Namespace) -> int:
    """Run the development OpenID provider (main() hands the arguments over before parsing; see run_tool)."""
    return run_tool("dev-idp", [])


def cmd_dev_rancher(args: argparse.Namespace) -> int:
    """Run the Rancher v3 emulator (main() hands the arguments over before parsing; see run_tool)."""
    return run_tool("dev-rancher", [])


def register(sub: Subparsers, add: Add) -> None:
    """Add `accessbot demo [--database] [--script]`, `accessbot dev-idp …` and `accessbot dev-rancher …`."""
    p = add("demo", cmd_demo, "run the whole product on this machine with emulators (no accounts needed)")
    p.add_argument("--database", help="SQLite file to use (default: a fresh temp file)")
    p.add_argument("--script", help="run console commands from FILE; exit non-zero when an :expect fails")
    # bot.cli.main hands every argument after these two to the emulator's own parser before parsing
    # (argparse.REMAINDER refused `--port 9000` when it came first); they are here for `--help` and the README.
    add("dev-idp", cmd_dev_idp, "run the development OpenID provider (tests and demo): --accounts FILE --port N")
    add("dev-rancher", cmd_dev_rancher, "run the Rancher v3 emulator (tests and demo): --fixture FILE --port N")
