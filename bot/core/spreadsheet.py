"""CSV that is safe to open in a spreadsheet: the one writer every export uses.

A cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return is read as a formula by Excel, LibreOffice and
Google Sheets (OWASP "CSV Injection"), so such text is prefixed with a single quote, which those programs show as
text. Numbers are left alone: only text values are neutralised.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
CHUNK = 65536
"""Characters buffered before a chunk is handed out."""


def safe_cell(value: object) -> object:
    """A cell's value with spreadsheet formulas in text defused (non-text values as they are)."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def csv_chunks(columns: Sequence[str], rows: Iterable[Sequence[object]]) -> Iterator[str]:
    """The header and every row as CSV text (CRLF line ends), in chunks of about CHUNK characters."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([safe_cell(value) for value in row])
        if buffer.tell() > CHUNK:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def csv_text(columns: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """The whole CSV as one string."""
    return "".join(csv_chunks(columns, rows))
