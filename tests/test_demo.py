"""`accessbot demo`: the tour script passes, a failing script exits 1, and the demo stops everything it started."""

from __future__ import annotations

import argparse
import io
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.adapters.store import open_storage
from bot.demo import session
from bot.demo.blocks_text import mrkdwn_to_text, render
from bot.demo.stack import running_stack
from bot.services.jobs.lease import LEASE_NAME

ROOT = Path(__file__).resolve().parent.parent
TOUR = ROOT / "examples" / "tour.demo"


def run_demo_process(script: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    """`python -m bot demo --script SCRIPT` in a child process, as CI runs it."""
    return subprocess.run(
        [sys.executable, "-m", "bot", "demo", "--script", str(script)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        check=False,
    )


def run_demo_here(script: Path) -> tuple[int, str]:
    """Run `accessbot demo --script SCRIPT` in this process; return the exit code and everything it printed."""
    out = io.StringIO()
    code = session.run(argparse.Namespace(script=str(script), database=None), io.StringIO(), out)
    return code, out.getvalue()


def write_script(tmp_path: Path, *lines: str) -> Path:
    """A console script file made of `lines`."""
    path = tmp_path / "script.demo"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.slow
def test_tour_script_passes_every_expectation_and_exits_zero() -> None:
    """`accessbot demo --script examples/tour.demo` meets every `:expect` and exits 0."""
    expects = [ln for ln in TOUR.read_text(encoding="utf-8").splitlines() if ln.startswith(":expect")]
    result = run_demo_process(TOUR, timeout=180)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "EXPECTATION FAILED" not in result.stdout
    assert result.stdout.count("  ✓ ") == len(expects) >= 40
    assert result.stdout.rstrip().endswith("demo stopped.")


def test_failing_expect_makes_the_script_exit_one(tmp_path: Path) -> None:
    """An `:expect` whose text was not shown stops the script with exit 1, naming the line, and still cleans up."""
    script = write_script(tmp_path, "/access help", ":expect /access link", ":expect text the bot never says")
    result = run_demo_process(script, timeout=60)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "✓ expected: /access link" in result.stdout
    assert "EXPECTATION FAILED: 'text the bot never says' not shown" in result.stdout
    assert f"{script}:3: script failed at: :expect text the bot never says" in result.stdout
    assert result.stdout.rstrip().endswith("demo stopped.")


def test_demo_stops_every_server_and_thread_it_started(tmp_path: Path) -> None:
    """After a script ends, the bot, IdP and Rancher ports refuse connections and no demo thread is left."""
    before = set(threading.enumerate())
    code, output = run_demo_here(write_script(tmp_path, "/access help", ":expect /access link"))
    assert code == 0, output
    assert output.rstrip().endswith("demo stopped.")
    urls = re.findall(r"(?:bot|IdP|Rancher) (http://127\.0\.0\.1:\d+)", output)
    assert len(urls) == 3
    for url in urls:
        host, port = url.removeprefix("http://").split(":")
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((host, int(port)), timeout=2).close()
    deadline = time.monotonic() + 5
    while (
        left := [t for t in threading.enumerate() if t not in before and t.is_alive()]
    ) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert left == []


def test_unknown_console_command_fails_a_script(tmp_path: Path) -> None:
    """A mistyped console command in a script exits 1 at that line instead of being skipped."""
    code, output = run_demo_here(write_script(tmp_path, ":clik 2", ":help"))
    assert code == 1
    assert "unknown console command :clik" in output
    assert "script.demo:1: script failed at: :clik 2" in output
    assert "Console commands" not in output


def test_click_label_without_a_matching_button_fails_a_script(tmp_path: Path) -> None:
    """`:click-label` names the label it could not find and stops the script."""
    code, output = run_demo_here(write_script(tmp_path, "/access help", ":click-label Approve"))
    assert code == 1
    assert "no button labelled 'Approve' was shown" in output


def test_expect_not_fails_when_the_text_was_shown(tmp_path: Path) -> None:
    """`:expect-not TEXT` passes for absent text and stops the script when the text was shown."""
    code, output = run_demo_here(
        write_script(tmp_path, "/access help", ":expect-not no such words", ":expect-not /access link")
    )
    assert code == 1
    assert "absent as expected: no such words" in output
    assert "EXPECTATION FAILED: '/access link' shown but should not be" in output


def test_missing_script_file_exits_two_before_starting_anything(tmp_path: Path) -> None:
    """A script path that cannot be read is reported in one line, exit 2, with no servers started."""
    code, output = run_demo_here(tmp_path / "nope.demo")
    assert code == 2
    assert output.startswith(f"cannot read the script {tmp_path / 'nope.demo'}")
    assert "accessbot demo —" not in output


def test_demo_on_a_reused_database_runs_the_jobs_despite_a_lease_left_by_a_killed_demo(tmp_path: Path) -> None:
    """A jobs lease left in a `--database` file by a demo that died does not keep the next demo on standby."""
    database = tmp_path / "demo.db"
    store = open_storage(database)
    try:
        assert store.leases.take(LEASE_NAME, "killed-demo", int(time.time()), 30 * 86400)
    finally:
        store.database.close()
    with running_stack(database=database) as stack:
        health = httpx.get(f"{stack.bot_url}/healthz", timeout=10).json()
    assert health["jobs"] == "leader"


def test_slack_date_tokens_render_as_their_fallback_text() -> None:
    """`<!date^…|fallback>` shows the fallback time, while `<!channel>` and user mentions keep their @."""
    text = (
        "until <!date^1795944869^{date_short_pretty} {time}|2026-11-29 09:58 UTC> <!channel> <@U1|x> <!subteam^S1|@sre>"
    )
    assert mrkdwn_to_text(text, {"U1": "alice"}) == "until 2026-11-29 09:58 UTC @channel @alice @sre"


def test_buttons_are_numbered_from_the_given_start() -> None:
    """Rendered buttons are numbered on from `start`, so every button shown in a session has its own number."""
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": "*Grant:* `g-2`"}},
        {
            "type": "actions",
            "block_id": "decide",
            "elements": [
                {
                    "type": "button",
                    "action_id": "approve",
                    "value": "g-2",
                    "text": {"type": "plain_text", "text": "Approve"},
                },
                {"type": "button", "action_id": "deny", "value": "g-2", "text": {"type": "plain_text", "text": "Deny"}},
            ],
        },
    ]
    lines, buttons = render(blocks, None, 4)
    assert lines == ["*Grant:* `g-2`", "  [4] Approve", "  [5] Deny"]
    assert [(b.text, b.action_id, b.value, b.block_id) for b in buttons] == [
        ("Approve", "approve", "g-2", "decide"),
        ("Deny", "deny", "g-2", "decide"),
    ]


def test_a_mistyped_slash_command_gets_help_not_bolts_internals(tmp_path: Path) -> None:
    """`/acces help` in the demo answers with the command it probably meant, never "Unhandled request"."""
    code, output = run_demo_here(write_script(tmp_path, "/acces help"))
    assert code == 1
    assert "`/acces` is not a command here. Did you mean `/access help`?" in output
    assert "Unhandled" not in output
