"""Appending to, verifying and exporting the hash-chained audit log."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping
from typing import Any

from bot.core import audit_chain
from bot.core.ports import Clock, Store

EXPORT_COLUMNS = (
    "id",
    "ts",
    "actor",
    "action",
    "target",
    "outcome",
    "reason",
    "request_id",
    "details",
    "prev_hash",
    "hash",
)


class AuditLog:
    """Every state change and security event goes through `record`."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def record(
        self,
        action: str,
        *,
        actor: str,
        target: str = "",
        outcome: str = "ok",
        reason: str = "",
        request_id: str = "",
        details: Mapping[str, object] | None = None,
    ) -> dict[str, Any]:
        """Append one event (secrets in `details` are redacted by key name) and return the stored row."""
        return self._store.append_audit(
            ts=self._clock.now(),
            actor=actor,
            action=action,
            target=target,
            outcome=outcome,
            reason=reason,
            request_id=request_id,
            details=details or {},
        )

    def verify(self) -> audit_chain.ChainCheck:
        """Walk the whole chain and report the first broken row, if any."""
        return audit_chain.verify(self._store.audit_rows(), head=self._store.audit_head())

    def export(self, since: int | None, until: int | None, fmt: str) -> Iterator[str]:
        """Yield the events in [since, until) as JSON lines or CSV text chunks."""
        rows = self._store.audit_rows(since=since, until=until)
        if fmt == "jsonl":
            for row in rows:
                out = dict(row)
                out["details"] = json.loads(str(row["details"]))
                yield json.dumps(out, ensure_ascii=False, sort_keys=True) + "\n"
            return
        if fmt != "csv":
            raise ValueError(f"unknown export format {fmt!r} (jsonl or csv)")
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=EXPORT_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
            if buffer.tell() > 65536:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()
