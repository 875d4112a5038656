"""One `accessbot demo` session: start the stack, read console lines from a terminal or a script, exit code."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from bot.demo.console import Console, ExpectationFailed
from bot.demo.stack import running_stack

GREETING = """\
accessbot demo — a dev IdP, a Rancher emulator, a Slack emulator and the bot, all on this machine.
  bot {bot}   IdP {idp}   Rancher {rancher}
  config {config}   (try: accessbot --config {config} audit verify)

You are alice (engineering). Three things to try first:
  1. /access link        then  :login          — link alice to the identity provider
  2. /access list                               — what alice can access, and why
  3. /access request dev-eu/payments project-member for 30m
Then :as bob to approve a prod request, :wait 30m to watch it expire, :disable carol for offboarding. :help for all."""


@contextlib.contextmanager
def _time_travel() -> Iterator[Any]:
    try:
        import time_machine  # noqa: PLC0415 - optional: the demo extra
    except ImportError:
        yield None
        return
    scheduler_log = logging.getLogger("apscheduler.executors.default")
    scheduler_log.addFilter(_drop_misfires)
    try:
        with time_machine.travel(datetime.now(UTC), tick=True) as traveller:
            yield traveller
    finally:
        scheduler_log.removeFilter(_drop_misfires)


def _drop_misfires(record: logging.LogRecord) -> bool:
    """Hide APScheduler's "run time … was missed" warnings: under `:wait` the clock jumps on purpose."""
    return "was missed by" not in record.getMessage()


def run(args: argparse.Namespace, stdin: TextIO, out: TextIO) -> int:
    """Start the stack and run the console on `stdin` (a script file or the terminal); 1 when a script fails."""
    script = getattr(args, "script", None)
    database = getattr(args, "database", None)
    if script:
        try:
            source: TextIO = Path(script).open(encoding="utf-8")  # noqa: SIM115 - closed below
        except OSError as err:
            print(f"cannot read the script {script}: {err.strerror or err}", file=out)
            return 2
    else:
        source = stdin
    interactive = source.isatty()
    where = script or "<stdin>"
    status = 0
    try:
        with _time_travel() as traveller, running_stack(database=database) as stack:
            console = Console(stack=stack, out=out, traveller=traveller, strict=not interactive)
            console.say(
                GREETING.format(
                    bot=stack.bot_url, idp=stack.idp_url, rancher=stack.rancher.url, config=stack.config_path
                )
            )
            try:
                status = _loop(console, source, out, interactive=interactive, where=where)
            finally:
                console.close()
    finally:
        if script:
            source.close()
    print("demo stopped.", file=out, flush=True)
    return status


def _loop(console: Console, source: TextIO, out: TextIO, *, interactive: bool, where: str) -> int:
    """Read and run console lines until the end, `:quit` or (in a script) the first failure."""
    number = 0
    try:
        while True:
            if interactive:
                out.write(f"{console.user}> ")
                out.flush()
            line = source.readline()
            if not line:
                return 0
            number += 1
            if not interactive and line.strip():
                print(f"{console.user}> {line.rstrip()}", file=out, flush=True)
            try:
                if not console.run_line(line):
                    return 0
            except ExpectationFailed:
                print(f"{where}:{number}: script failed at: {line.strip()}", file=out, flush=True)
                return 1
            except Exception as err:  # a console keeps going; a script stops with the reason
                print(f"error: {type(err).__name__}: {err}", file=out, flush=True)
                if not interactive:
                    print(f"{where}:{number}: script failed at: {line.strip()}", file=out, flush=True)
                    return 1
    except KeyboardInterrupt:
        return 0 if interactive else 130


def main(args: argparse.Namespace) -> int:
    """Entry point of `accessbot demo`."""
    return run(args, sys.stdin, sys.stdout)
