"""Every CLI mistake is one line on stderr and exit 2, never a traceback: each subcommand fed hostile arguments."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
import yaml
from cryptography.fernet import Fernet

from bot.cli import main
from bot.demo import botconfig


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    """A valid configuration (HTTP mode, no app token) with its database in tmp_path."""
    data = botconfig.config_data(
        database=tmp_path / "h.db",
        public_url="https://bot.example.com",
        slack_api_url="https://slack.com/api/",
        oidc_issuer="https://idp.example.com",
        rancher_url="http://127.0.0.1:9",
        rancher_token="token-abcde:hostile",
        encryption_key=Fernet.generate_key().decode(),
    )
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


HOSTILE = [
    (["digest", "--timezone", "Mars/Base"], "--timezone Mars/Base is not a time zone"),
    (["digest", "--timezone", "../../etc/passwd"], "is not a time zone"),
    (["digest", "--since", "99999999d"], "reaches back before the year 1"),
    (["digest", "--until", "99999999999999"], "too far in the future"),
    (["digest", "--since", "1", "--until", "0"], "--since must be before --until"),
    (["digest", "--since", "yesterday-ish"], "is neither a duration"),
    (["audit", "export", "--since", "99999999d"], "reaches back before the year 1"),
    (["audit", "export", "--until", "99999999999999"], "too far in the future"),
    (["audit", "export", "--format", "xml"], "invalid choice"),
    (["serve", "--socket-mode"], "--socket-mode needs slack.app_token"),
    (["serve", "--port", "70000"], "is not a TCP port"),
    (["grants", "list", "--limit", "many"], "invalid int value"),
    (["grants", "revoke", "g-999999"], "there is no grant g-999999"),
    (["outbox", "retry", "twelve"], "is not a message id"),
    (["outbox", "drop", "1" * 40], "is not a message id"),
    (["frobnicate"], "invalid choice"),
    (["digest", "--bogus"], "unrecognized arguments: --bogus"),
]


@pytest.mark.parametrize(("argv", "expected"), HOSTILE, ids=[" ".join(a)[:40] for a, _ in HOSTILE])
def test_hostile_arguments_are_one_line_and_exit_2(
    config_file: Path, capsys: pytest.CaptureFixture[str], argv: list[str], expected: str
) -> None:
    """The mistake is named on one stderr line starting with `error:`; exit 2; no traceback."""
    assert main(["--config", str(config_file), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: "), err
    assert err.count("\n") == 1, err
    assert expected in err
    assert "Traceback" not in err


def test_serve_on_a_busy_port_is_one_line(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Another process holding the port: `cannot listen on 127.0.0.1:P (…)`, exit 2, before anything starts."""
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    port = holder.getsockname()[1]
    try:
        assert main(["--config", str(config_file), "serve", "--host", "127.0.0.1", "--port", str(port)]) == 2
    finally:
        holder.close()
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot listen on 127.0.0.1:{port}")
    assert err.count("\n") == 1


def test_serve_without_a_signing_secret_outside_socket_mode_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Socket Mode config (app token, no signing secret) served over HTTP is refused in one line."""
    data = yaml.safe_load((tmp_path / "x").write_text("") or "{}") or botconfig.config_data(
        database=tmp_path / "s.db",
        public_url="https://bot.example.com",
        slack_api_url="https://slack.com/api/",
        oidc_issuer="https://idp.example.com",
        rancher_url="http://127.0.0.1:9",
        rancher_token="token-abcde:x",
    )
    data["slack"]["app_token"] = "xapp-1-A0TEST0001-x"
    del data["slack"]["signing_secret"]
    path = tmp_path / "socket.yaml"
    path.write_text(yaml.safe_dump(data))
    assert main(["--config", str(path), "serve"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: slack.signing_secret is not set")
    assert err.count("\n") == 1


def test_a_huge_moment_argument_is_refused_quickly(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A 200,000-character --since is refused in one line within half a second (best of 3)."""
    junk = "9" * 100_000 + "d" + "x" * 100_000

    def once() -> float:
        started = time.perf_counter()
        assert main(["--config", str(config_file), "digest", "--since", junk]) == 2
        return time.perf_counter() - started

    assert min(once() for _ in range(3)) < 0.5
    err = capsys.readouterr().err
    assert all(len(line) < 400 for line in err.splitlines())


@pytest.mark.parametrize("tool", ["dev-rancher", "dev-idp"])
def test_dev_tools_accept_their_documented_options(tool: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`accessbot dev-rancher --port N …` reaches the emulator's own parser (which answers --help with exit 0)."""
    with pytest.raises(SystemExit) as done:
        main([tool, "--port", "0", "--help"])
    assert done.value.code == 0
    assert "--port" in capsys.readouterr().out
