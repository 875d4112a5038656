"""How the CLI prints rows: an aligned table (each cell made safe for a terminal) or one JSON object a line."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TextIO

MAX_CELL = 60
"""The widest a table cell gets before it is cut (with `…`)."""


def cell(value: object, limit: int = MAX_CELL) -> str:
    """Text for the terminal: control characters (escape sequences from outside names) shown as `?`, cut short."""
    text = "".join(c if c.isprintable() else "?" for c in str(value))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def print_table(rows: Sequence[Mapping[str, object]], out: TextIO) -> None:
    """The rows under upper-case headers (the first row's keys), columns as wide as their widest cell."""
    if not rows:
        return
    cols = list(rows[0])
    shown = [{c: cell(r[c]) for c in cols} for r in rows]
    widths = {c: max(len(c), *(len(r[c]) for r in shown)) for c in cols}
    print("  ".join(c.upper().ljust(widths[c]) for c in cols).rstrip(), file=out)
    for r in shown:
        print("  ".join(r[c].ljust(widths[c]) for c in cols).rstrip(), file=out)


def print_json_lines(rows: Sequence[Mapping[str, object]], out: TextIO) -> None:
    """One JSON object a line (for jq and scripts)."""
    for row in rows:
        print(json.dumps(row), file=out)
