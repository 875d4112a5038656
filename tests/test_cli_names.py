"""The terminal shows people by name where their link says who they are: `grants list` and `digest`."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml
from cryptography.fernet import Fernet

from bot.adapters.clock import SystemClock
from bot.adapters.store import open_storage
from bot.cli import main
from bot.core import audit_actions as A
from bot.core.model import Grant, GrantState, Target
from bot.demo import botconfig
from bot.services.audit import AuditLog
from tests import factories


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    """A config whose database holds Alice's link, one active grant of hers and her request in the audit log."""
    data = botconfig.config_data(
        database=tmp_path / "names.db",
        public_url="https://bot.example.com",
        slack_api_url="https://slack.com/api/",
        oidc_issuer="https://idp.example.com",
        rancher_url="https://rancher.example.com",
        rancher_token="token-abcde:x",
        encryption_key=Fernet.generate_key().decode(),
    )
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    store = open_storage(data["database"])
    now = int(time.time())
    factories.link(store.links, "U0ALICE001", "sub-a", ["engineering"], now=now, email="alice@example.com")
    grant = Grant(
        id="", slack_user="U0ALICE001", subject="sub-a", target=Target("c-1", "c-1:p-1"), role_id="project-member",
        duration_s=3600, rule="r", state=GrantState.ACTIVE, requested_at=now, activated_at=now, expires_at=now + 3600,
    )  # fmt: skip
    factories.grant(store, grant, now=now)
    AuditLog(tx=store.tx, store=store.audit, clock=SystemClock()).record(
        A.GRANT_REQUESTED, actor="U0ALICE001", target="dev-eu/payments", details={"slack_user": "U0ALICE001"}
    )
    store.database.close()
    return path


def test_grants_list_names_the_holder(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The user column reads `alice@example.com (U0ALICE001)`, not the bare Slack id."""
    assert main(["--config", str(config_file), "grants", "list"]) == 0
    assert "alice@example.com (U0ALICE001)" in capsys.readouterr().out


def test_terminal_digest_names_the_top_requester(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The terminal digest's top requesters read `alice@example.com (U0ALICE001) (1)`."""
    until = str(int(time.time()) + 60)
    assert main(["--config", str(config_file), "digest", "--since", "1d", "--until", until]) == 0
    assert "alice@example.com (U0ALICE001) (1)" in capsys.readouterr().out
