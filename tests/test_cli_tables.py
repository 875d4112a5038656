"""The CLI's row printing (bot/cli/tables.py), shared by `grants list`, `outbox list` and `review list|show|plan`."""

from __future__ import annotations

import io
import json

from bot.cli.tables import MAX_CELL, print_json_lines, print_table


def test_a_table_aligns_columns_under_upper_case_headers() -> None:
    """Columns are as wide as their widest cell, headers upper-cased, trailing spaces trimmed."""
    out = io.StringIO()
    print_table([{"id": "g-1", "who": "alice"}, {"id": "g-10", "who": "bo"}], out)
    assert out.getvalue().splitlines() == ["ID    WHO", "g-1   alice", "g-10  bo"]


def test_outside_text_cannot_drive_the_terminal_or_widen_the_table() -> None:
    """Escape sequences from names read elsewhere (Slack, Rancher, the IdP) show as `?`; long cells are cut."""
    out = io.StringIO()
    print_table([{"reason": "\x1b[2J\x1b]0;owned\x07" + "x" * 500}], out)
    text = out.getvalue()
    assert "\x1b" not in text
    assert "\x07" not in text
    assert max(len(line) for line in text.splitlines()) == MAX_CELL
    assert text.splitlines()[1].endswith("…")


def test_no_rows_print_nothing_and_json_lines_keep_every_character() -> None:
    """An empty table prints nothing; JSON lines carry values whole (scripts escape them themselves)."""
    out = io.StringIO()
    print_table([], out)
    assert out.getvalue() == ""
    print_json_lines([{"reason": "x" * 500}], out)
    assert json.loads(out.getvalue()) == {"reason": "x" * 500}
