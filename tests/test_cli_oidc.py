"""`accessbot oidc check [--login]` against the dev IdP's personalities (their behaviour and its sources:
accessbot_emulators/idp/personalities.py)."""

from __future__ import annotations

import argparse
import asyncio
import copy
import io
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml

from accessbot_emulators.idp import complete_login
from accessbot_emulators.slack import SlackEmulator
from bot.cli import main
from bot.cli.oidc import cmd_oidc_check
from tests.personas import ACCOUNTS, PASSWORDS, bot_config_data, persona_server, start

__all__ = ["persona_server"]
Server = tuple[Any, str]


def _config(name: str, persona_server: Server, tmp_path: Path, slack: SlackEmulator, **oidc: Any) -> tuple[Any, Path]:
    idp = start(persona_server, name, oidc.pop("accounts", None))
    data = bot_config_data(name, idp, tmp_path, slack_api_url=slack.api_url)
    data["oidc"].update(oidc)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return idp, path


def _run(path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    code = main(["--config", str(path), "oidc", "check", *extra])
    return code, capsys.readouterr().out


def test_entra_check_reports_scopes_graph_and_refresh_tokens(
    persona_server: Server, tmp_path: Path, slack: SlackEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """Discovery, the scopes asked for, Graph reachable with the app's credentials, refresh tokens likely: OK."""
    _, path = _config("entra", persona_server, tmp_path, slack)
    code, out = _run(path, capsys)
    assert code == 0, out
    assert "scopes             openid email profile offline_access" in out
    assert "graph (overage): token and GroupMember.Read.All work" in out
    assert "refresh token      likely" in out
    assert out.rstrip().endswith("OK")


def test_google_check_reports_the_directory_and_access_type(
    persona_server: Server, tmp_path: Path, slack: SlackEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """The Directory answers with the service account; access_type=offline promises a refresh token."""
    _, path = _config("google", persona_server, tmp_path, slack)
    code, out = _run(path, capsys)
    assert code == 0, out
    assert "authorize          access_type=offline prompt=consent" in out
    assert "google_directory: service account" in out
    assert "refresh token      yes" in out


def test_keycloak_check_names_the_scope_it_leaves_out(
    persona_server: Server, tmp_path: Path, slack: SlackEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """A default realm lists no `groups` scope: the bot does not ask for it (and says so)."""
    _, path = _config("keycloak", persona_server, tmp_path, slack)
    _, out = _run(path, capsys)
    assert "left out           groups" in out


def test_no_refresh_token_expected_is_a_problem(
    persona_server: Server, tmp_path: Path, slack: SlackEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """Explicit scopes without offline_access: links would be refused, so the check fails (exit 1)."""
    _, path = _config("okta", persona_server, tmp_path, slack, scopes=["openid", "email", "profile", "groups"])
    code, out = _run(path, capsys)
    assert code == 1
    assert "problem: refresh token: neither offline_access nor access_type=offline" in out
    assert out.rstrip().endswith("NOT OK")


def test_graph_without_permission_is_a_problem(
    persona_server: Server, tmp_path: Path, slack: SlackEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """Graph refusing the app (Authorization_RequestDenied) is named, and the check fails."""
    accounts = copy.deepcopy(ACCOUNTS)
    accounts["clients"][0]["graph_permissions"] = ["User.Read"]
    _, path = _config("entra", persona_server, tmp_path, slack, accounts=accounts)
    code, out = _run(path, capsys)
    assert code == 1
    assert "Authorization_RequestDenied" in out
    assert "dev-client-secret" not in out


def test_a_wrong_issuer_is_a_problem(
    persona_server: Server, tmp_path: Path, slack: SlackEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """An issuer differing from discovery's (a trailing slash too many) is refused with the reason."""
    idp, path = _config("dex", persona_server, tmp_path, slack)
    data = yaml.safe_load(path.read_text())
    data["oidc"]["issuer"] = idp.issuer + "/"
    path.write_text(yaml.safe_dump(data))
    code, out = _run(path, capsys)
    assert code == 1
    assert "discovery issuer mismatch" in out


def test_login_prints_the_claims_and_what_the_bot_would_do(
    persona_server: Server, tmp_path: Path, slack: SlackEmulator
) -> None:
    """--login: the user signs in, pastes where the browser ended; the claims and the verdict are printed."""
    idp, path = _config("entra", persona_server, tmp_path, slack)
    env = {**os.environ, "ACCESSBOT_CONFIG": str(path)}
    command = [sys.executable, "-c", "from bot.cli import main; raise SystemExit(main())", "oidc", "check", "--login"]
    process = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    lines: list[str] = []
    url = ""
    while not url:
        line = process.stdout.readline()
        assert line, "".join(lines)
        lines.append(line)
        if line.startswith(f"{idp.issuer}/authorize?"):
            url = line.strip()
    location: list[str] = []

    def browse() -> None:
        async def go() -> None:
            async with httpx.AsyncClient(timeout=10) as browser:
                location.append(await complete_login(browser, url, "alice", PASSWORDS["alice"]))

        asyncio.run(go())

    thread = threading.Thread(target=browse)
    thread.start()
    thread.join(30)
    out, _ = process.communicate(location[0] + "\n", timeout=60)
    assert urlsplit(location[0]).path == "/oauth/callback"
    assert process.returncode == 0, out
    assert "claims received" in out
    assert '"oid"' not in out  # claim names are printed unquoted
    assert "  oid " in out
    assert "refresh token      yes" in out
    assert "would              link" in out


@pytest.mark.parametrize(
    "pasted",
    ["", "x" * 100_000, "http://127.0.0.1:9/oauth/callback?code=abc&state=forged", "%%%\x00\n"],
)
def test_login_refuses_an_address_that_is_not_this_sign_ins_end(
    persona_server: Server, tmp_path: Path, slack: SlackEmulator, pasted: str
) -> None:
    """A pasted address with another state, no code, or garbage of any size is refused in one line, exit 1."""
    _, path = _config("okta", persona_server, tmp_path, slack)
    out = io.StringIO()
    args = argparse.Namespace(config=str(path), login=True)
    started = time.perf_counter()
    assert cmd_oidc_check(args, out=out, inp=io.StringIO(pasted + "\n")) == 1
    assert time.perf_counter() - started < 10
    assert "problem: that is not the address this sign-in ends on" in out.getvalue()
