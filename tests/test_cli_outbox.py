"""`accessbot outbox list|retry|drop`: operators see parked messages and decide what becomes of them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from cryptography.fernet import Fernet

from bot.adapters.store import open_storage
from bot.cli import main
from bot.core import audit_actions as A
from bot.core.model import OutboxStatus
from bot.core.storage import Storage
from bot.demo import botconfig


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    """A config whose database holds one parked DM and one pending post."""
    data = botconfig.config_data(
        database=tmp_path / "cli.db",
        public_url="https://bot.example.com",
        slack_api_url="https://slack.com/api/",
        oidc_issuer="https://idp.example.com",
        rancher_url="https://rancher.example.com",
        rancher_token="token-abcde:clisecretvalue",
        encryption_key=Fernet.generate_key().decode(),
    )
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    store = open_storage(data["database"])
    store.outbox.enqueue(key="dm:g-1:revoked", kind="dm", channel="U0GONE0001", payload={"text": "x"}, now=100)
    store.outbox.enqueue(key="grant:g-2:post", kind="post", channel="CGRANTS001", payload={"text": "y"}, now=101)
    parked = store.outbox.get("dm:g-1:revoked")
    assert parked is not None
    store.outbox.move(parked.id, (OutboxStatus.PENDING,), OutboxStatus.PARKED, now=102, reason="user_disabled")
    store.database.close()
    return path


def _store(config_file: Path) -> Storage:
    return open_storage(yaml.safe_load(config_file.read_text())["database"], migrate=False)


def test_outbox_list_shows_parked_messages_with_their_reason(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`outbox list` prints the parked DM with its id and Slack's reason; the pending post only with --all."""
    assert main(["--config", str(config_file), "outbox", "list"]) == 0
    out = capsys.readouterr().out
    assert "user_disabled" in out
    assert "dm:g-1:revoked" in out
    assert "grant:g-2:post" not in out
    assert main(["--config", str(config_file), "outbox", "list", "--all", "--json"]) == 0
    assert capsys.readouterr().out.count("\n") == 2


def test_outbox_retry_and_drop_move_a_message_and_are_audited(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """retry makes the parked DM pending again; drop ends the pending post; each leaves an audit event."""
    store = _store(config_file)
    parked, pending = store.outbox.get("dm:g-1:revoked"), store.outbox.get("grant:g-2:post")
    store.database.close()
    assert parked is not None
    assert pending is not None
    assert main(["--config", str(config_file), "outbox", "retry", str(parked.id)]) == 0
    assert capsys.readouterr().out.strip() == f"{parked.id}: pending"
    assert main(["--config", str(config_file), "outbox", "drop", str(pending.id)]) == 0
    assert capsys.readouterr().out.strip() == f"{pending.id}: dropped"
    store = _store(config_file)
    actions = [(e.action, e.actor.startswith("cli:")) for e in store.audit.events()]
    store.database.close()
    assert (A.OUTBOX_RETRIED, True) in actions
    assert (A.OUTBOX_DROPPED, True) in actions


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["outbox", "retry", "999"], "error: there is no outbox message 999"),
        (["outbox", "list", "--status", "lost"], "error: unknown status lost"),
        (["outbox", "list", "--limit", "0"], "error: --limit 0 is out of range"),
    ],
)
def test_outbox_mistakes_are_one_line_and_exit_2(
    config_file: Path, capsys: pytest.CaptureFixture[str], argv: list[str], expected: str
) -> None:
    """An unknown id, status or limit is one line on stderr and exit 2."""
    assert main(["--config", str(config_file), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(expected)
    assert err.count("\n") == 1
