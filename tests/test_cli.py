"""The accessbot command line: results and exit codes of each command."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cryptography.fernet import Fernet

from bot.cli import build_parser, main
from bot.demo import botconfig
from tests import attacker

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
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
    return path


def test_check_config_prints_ok_and_summary(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A valid file prints OK and a summary without secrets, exit 0."""
    assert main(["check-config", str(config_file)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("OK\n")
    assert "policy          3 rule(s)" in out
    assert "clisecretvalue" not in out


def test_check_config_reports_errors_and_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An invalid file prints each error as field.path and exits 2."""
    path = tmp_path / "bad.yaml"
    path.write_text("public_url: nope\nslack: {command: access}\n")
    assert main(["check-config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "public_url: must be an http(s) URL" in err
    assert "slack.command: must be a slash command" in err
    assert "slack.bot_token: is required" in err
    assert "Traceback" not in err


def test_missing_config_file_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A missing file is named, with how to pass another."""
    assert main(["check-config", str(tmp_path / "nope.yaml")]) == 2
    assert "file not found (pass --config PATH or set ACCESSBOT_CONFIG)" in capsys.readouterr().err


def test_migrate_then_audit_verify_and_export(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """migrate creates the schema and keys the chain; verify reports OK; export writes JSON lines and CSV."""
    assert main(["--config", str(config_file), "migrate"]) == 0
    assert "the audit chain is now keyed" in capsys.readouterr().out
    from bot.adapters.clock import SystemClock
    from bot.adapters.store import open_storage
    from bot.config import load_config
    from bot.wiring import audit_log

    store = open_storage(yaml.safe_load(config_file.read_text())["database"])
    audit = audit_log(load_config(config_file), store, SystemClock())
    audit.record("link.created", actor="U1", target="alice")
    audit.record("grant.requested", actor="U1", target="dev-eu")
    store.database.close()
    assert main(["--config", str(config_file), "audit", "verify"]) == 0
    assert capsys.readouterr().out.strip() == "OK: 3 events, chain intact (keyed)"
    assert main(["--config", str(config_file), "audit", "export", "--since", "1d", "--format", "jsonl"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["action"] for line in lines] == ["audit.rekeyed", "link.created", "grant.requested"]
    assert main(["--config", str(config_file), "audit", "export", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["actor"] for r in rows] == ["system", "U1", "U1"]


def test_audit_verify_exits_1_on_tampering(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An edited row makes verify print its id and exit 1."""
    main(["--config", str(config_file), "migrate"])
    from bot.adapters.clock import SystemClock
    from bot.adapters.store import open_storage
    from bot.config import load_config
    from bot.wiring import audit_log

    db = yaml.safe_load(config_file.read_text())["database"]
    store = open_storage(db)
    audit = audit_log(load_config(config_file), store, SystemClock())
    for i in range(3):
        audit.record("x", actor=f"U{i}")
    store.database.close()
    attacker.execute(db, "update audit_events set outcome='tampered' where id=2")
    capsys.readouterr()
    assert main(["--config", str(config_file), "audit", "verify"]) == 1
    assert capsys.readouterr().out.startswith("BROKEN at event 2")


def test_manifest_names_command_scopes_and_urls(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The manifest carries the slash command, the scopes and the request URLs."""
    assert main(["--config", str(config_file), "manifest"]) == 0
    manifest = yaml.safe_load(capsys.readouterr().out)
    assert manifest["features"]["slash_commands"][0]["command"] == "/access"
    assert manifest["features"]["slash_commands"][0]["url"] == "https://bot.example.com/slack/events"
    assert "users:read.email" in manifest["oauth_config"]["scopes"]["bot"]
    assert manifest["settings"]["event_subscriptions"]["bot_events"] == ["app_home_opened"]


def test_gen_key_prints_a_fernet_key(capsys: pytest.CaptureFixture[str]) -> None:
    """gen-key prints a key Fernet accepts."""
    assert main(["gen-key"]) == 0
    Fernet(capsys.readouterr().out.strip().encode())


def test_every_subcommand_has_help_and_is_in_the_readme() -> None:
    """Each CLI subcommand has a help line and is documented in README.md."""
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    readme = (ROOT / "README.md").read_text()
    for name, subparser in sub.choices.items():  # type: ignore[union-attr]
        assert subparser.description, name
        assert f"accessbot {name}" in readme, name


def test_python_dash_m_bot_runs() -> None:
    """`python -m bot --version` works."""
    result = subprocess.run([sys.executable, "-m", "bot", "--version"], capture_output=True, text=True, check=False)
    assert result.returncode == 0
    assert result.stdout.startswith("accessbot ")


def test_rancher_check_reports_key_and_version(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`accessbot rancher check` against the emulator prints the key's user, provider and version, exit 0."""
    from accessbot_emulators.rancher import run_emulator
    from tests.conftest import BOT_KEY

    with run_emulator() as rancher:
        data = botconfig.config_data(
            database=tmp_path / "r.db",
            public_url="https://bot.example.com",
            slack_api_url="https://slack.com/api/",
            oidc_issuer="https://idp.example.com",
            rancher_url=rancher.url,
            rancher_token=BOT_KEY,
        )
        path = tmp_path / "c.yaml"
        path.write_text(yaml.safe_dump(data))
        assert main(["--config", str(path), "rancher", "check"]) == 0
    out = capsys.readouterr().out
    assert "server version v2.14.4" in out
    assert "API key        token-b9t4n" in out  # read by name: an API key is never `current` (tokens/manager.go)
    assert "key provider   genericoidc" in out
    assert "global admin   yes, Admin (grb-p3z9c, held by its user)" in out
    assert "this version   duplicate project bindings are accepted" in out
    assert out.strip().endswith("OK")
    assert BOT_KEY.split(":")[1] not in out


def test_rancher_check_exits_1_with_reasons_when_the_key_cannot_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """On Rancher 2.7 genericoidc does not exist (providers/genericoidc/ @v2.9.0+): NOT OK, the reason, exit 1."""
    from accessbot_emulators.rancher import EmulatorSettings, run_emulator
    from tests.conftest import BOT_KEY

    with run_emulator(settings=EmulatorSettings(server_version="v2.7.18")) as rancher:
        data = botconfig.config_data(
            database=tmp_path / "r.db",
            public_url="https://bot.example.com",
            slack_api_url="https://slack.com/api/",
            oidc_issuer="https://idp.example.com",
            rancher_url=rancher.url,
            rancher_token=BOT_KEY,
        )
        path = tmp_path / "c.yaml"
        path.write_text(yaml.safe_dump(data))
        assert main(["--config", str(path), "rancher", "check"]) == 1
    out = capsys.readouterr().out
    assert "problem: rancher.auth_provider is genericoidc, which Rancher has only from 2.9" in out
    assert out.strip().endswith("NOT OK")


def test_rancher_check_unreachable_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An unreachable Rancher is reported in one line and exits 1."""
    data = botconfig.config_data(
        database=tmp_path / "r.db",
        public_url="https://bot.example.com",
        slack_api_url="https://slack.com/api/",
        oidc_issuer="https://idp.example.com",
        rancher_url="http://127.0.0.1:9",
        rancher_token="token-abcde:zzz",
    )
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    assert main(["--config", str(path), "rancher", "check"]) == 1
    out = capsys.readouterr().out
    assert "reachable      no" in out
    assert "Traceback" not in out


def test_check_config_warns_on_suspicious_values(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A valid file with a missing approvals channel, plain http and a week-long rule prints OK and a warning each."""
    data = botconfig.config_data(
        database=tmp_path / "w.db",
        public_url="http://bot.example.com",
        slack_api_url="https://slack.com/api/",
        oidc_issuer="https://idp.example.com",
        rancher_url="https://rancher.example.com",
        rancher_token="token-abcde:clisecretvalue",
    )
    data["slack"]["channels"]["approvals"] = None
    data["policy"]["rules"][0]["max_duration"] = "7d"
    data["policy"]["rules"][0]["default_duration"] = "1h"
    path = tmp_path / "w.yaml"
    path.write_text(yaml.safe_dump(data))
    assert main(["check-config", str(path)]) == 0
    warnings = [line for line in capsys.readouterr().out.splitlines() if line.startswith("warning: ")]
    assert warnings == [
        "warning: slack.channels.approvals: not set, but rule(s) prod-with-approval need approval "
        "(approvers are only DMed; nothing is posted for the team)",
        "warning: public_url: is not https (the sign-in cookie and the OAuth code travel in clear)",
        "warning: policy.rules[0].max_duration: 7d in rule dev-self-service (long for time-boxed access)",
        "warning: security.audit_keys: not set (the audit chain is keyed with a key derived from the token "
        "encryption keys; dropping an old token key makes older events unverifiable)",
    ]


def test_check_config_names_a_channel_name_and_an_email_admin(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`#grants` as a channel and an email as an admin are errors naming their keys, exit 2 (no traceback)."""
    data = botconfig.config_data(
        database=tmp_path / "n.db",
        public_url="https://bot.example.com",
        slack_api_url="https://slack.com/api/",
        oidc_issuer="https://idp.example.com",
        rancher_url="https://rancher.example.com",
        rancher_token="token-abcde:clisecretvalue",
    )
    data["slack"]["channels"]["grants"] = "#grants"
    data["slack"]["admins"] = ["alice@example.com"]
    path = tmp_path / "n.yaml"
    path.write_text(yaml.safe_dump(data))
    assert main(["check-config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "slack.channels.grants: is a channel name, not an id" in err
    assert "slack.admins: holds an email" in err
    assert "Traceback" not in err
