"""`accessbot digest --since 7d`: the digest in the terminal, with the same numbers as the audit table."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import yaml

from bot.adapters.store import open_storage
from bot.cli import main
from bot.config import parse_config
from bot.core import audit_actions as A
from bot.demo import botconfig
from bot.wiring import audit_log

_ROW = re.compile(r"^\s+(?P<label>\S.*?)\s{2,}(?P<count>\d+)(?:\s+\((?P<change>[^)]+)\))?$")


class At:
    """A clock that reads a settable epoch second."""

    def __init__(self, value: int) -> None:
        self.value = value

    def now(self) -> int:
        """Current time."""
        return self.value


def test_digest_command_prints_counts_of_the_window(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The last 7 days' counts and their change against the 7 days before match the audit table."""
    db = tmp_path / "bot.db"
    data = botconfig.config_data(
        database=db,
        public_url="http://127.0.0.1:1",
        slack_api_url="http://127.0.0.1:9/api/",
        oidc_issuer="http://127.0.0.1:9",
        rancher_url="http://127.0.0.1:9",
        rancher_token="token-abcde:notused",
    )
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(data))
    store = open_storage(db)
    now = int(time.time())
    clock = At(now)
    audit = audit_log(parse_config(data), store, clock)
    for ago, action in [(2, A.GRANT_REQUESTED), (3, A.GRANT_REQUESTED), (4, A.GRANT_EXPIRED), (9, A.GRANT_REQUESTED)]:
        clock.value = now - ago * 86400
        audit.record(action, actor="U0ALICE001", target="dev-eu/payments", details={"grant_id": "g-1"})
    store.database.close()
    assert main(["--config", str(config_path), "digest", "--since", "7d"]) == 0
    out = capsys.readouterr().out
    rows = {m["label"]: m for m in map(_ROW.match, out.splitlines()) if m}
    assert (rows["Grants requested"]["count"], rows["Grants requested"]["change"]) == ("2", "+1")
    assert (rows["Grants expired"]["count"], rows["Grants expired"]["change"]) == ("1", "+1")
    assert rows["Links"]["count"] == "0"
    assert "Audit chain: verified, 4 events" in out
    assert "Top requesters: U0ALICE001 (2)" in out
