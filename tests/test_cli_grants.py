"""`accessbot policy test|validate` and `accessbot grants list|revoke` against the Rancher emulator."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from accessbot_emulators.rancher import RancherEmulator
from bot.adapters.store import open_storage
from bot.cli import main
from bot.demo import botconfig
from tests import factories
from tests.conftest import BOT_KEY


@pytest.fixture
def config_path(tmp_path: Path, rancher: RancherEmulator) -> Path:
    """A config file pointing at the emulator, with Alice linked in the database."""
    rancher.reset()
    db = tmp_path / "bot.db"
    data = botconfig.config_data(
        database=db,
        public_url="http://127.0.0.1:9",
        slack_api_url="http://127.0.0.1:9/api/",
        oidc_issuer="http://127.0.0.1:9",
        rancher_url=rancher.url,
        rancher_token=BOT_KEY,
    )
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    store = open_storage(db)
    factories.link(
        store.links,
        "U0ALICE001",
        "3f2a9c1e-5b7d-4e8a-9c0f-1a2b3c4d5e6f",
        ["engineering"],
        now=int(time.time()),
        email="alice@example.com",
        name="Alice",
    )
    store.database.close()
    return path


def test_policy_test_explains_an_approval_decision(config_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`policy test --user EMAIL` uses the stored groups and names the rule and the approvers."""
    code = main(
        ["--config", str(config_path), "policy", "test", "--user", "alice@example.com",
         "--target", "prod-eu/payments", "--role", "project-member", "--for", "2h"]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert "ALLOWED: project-member on prod-eu/payments" in out
    assert "rule: prod-with-approval" in out
    assert "approval: 1 from sre" in out


def test_policy_test_with_groups_explains_a_denial(config_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`policy test --groups` over the maximum exits 1 and names the limit."""
    code = main(
        ["--config", str(config_path), "policy", "test", "--groups", "engineering",
         "--target", "dev-eu/payments", "--role", "project-member", "--for", "12h"]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 1
    assert "DENIED" in out
    assert "8h maximum" in out


def test_grants_list_and_revoke(
    config_path: Path, rancher: RancherEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """A grant made through the service is listed, and `grants revoke` deletes its binding."""
    import asyncio

    from bot.config import load_config
    from bot.wiring import build

    async def make() -> str:
        components = build(load_config(config_path))
        try:
            outcome = await components.grants.requests.request("U0ALICE001", "dev-eu/payments", "project-member")
            assert outcome.grant is not None
            return outcome.grant.id
        finally:
            await components.aclose()

    gid = asyncio.run(make())
    assert main(["--config", str(config_path), "grants", "list"]) == 0
    listing = capsys.readouterr().out
    assert gid in listing
    assert "active" in listing
    assert main(["--config", str(config_path), "grants", "revoke", gid, "--reason", "test"]) == 0
    assert f"{gid}: revoked" in capsys.readouterr().out
    live = [
        b for b in rancher.objects("projectRoleTemplateBinding")
        if (b.get("labels") or {}).get("accessbot.io/grant") == gid and not b.get("removed")
    ]  # fmt: skip
    assert live == []
