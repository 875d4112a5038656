"""Configuration loading: the example loads, each bad field is named with its path, secrets never leak."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.fernet import Fernet

from bot.config import load_config, parse_config
from bot.core.errors import ConfigError
from bot.demo import botconfig

EXAMPLE = Path(__file__).resolve().parent.parent / "config.example.yaml"
KEY = Fernet.generate_key().decode()
ENV = {
    "SLACK_BOT_TOKEN": "xoxb-very-secret-bot-token",
    "SLACK_SIGNING_SECRET": "super-secret-signing",
    "OIDC_CLIENT_SECRET": "oidc-client-secret-value",
    "RANCHER_TOKEN": "token-abcde:rancherSecretValue123",
    "ACCESSBOT_ENCRYPTION_KEY": KEY,
}
SECRETS = [v for k, v in ENV.items()]


def _valid() -> dict[str, Any]:
    return botconfig.config_data(
        database="/tmp/x.db",
        public_url="https://bot.example.com",
        slack_api_url="https://slack.com/api/",
        oidc_issuer="https://idp.example.com",
        rancher_url="https://rancher.example.com",
        rancher_token="token-abcde:rancherSecretValue123",
        encryption_key=KEY,
    )


def _problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    return info.value.problems


def test_example_config_loads_with_environment() -> None:
    """config.example.yaml validates once its environment variables are set."""
    config = load_config(EXAMPLE, environ=ENV)
    assert config.slack.command == "/access"
    assert config.redirect_uri == "https://accessbot.example.com/oauth/callback"
    assert [r.name for r in config.policy.rules] == ["dev-self-service", "prod-with-approval", "prod-break-glass"]


def test_unset_environment_variable_is_named_with_its_field() -> None:
    """An unset ${VAR} is reported with the field path and the variable name."""
    env = dict(ENV)
    del env["RANCHER_TOKEN"]
    with pytest.raises(ConfigError) as info:
        load_config(EXAMPLE, environ=env)
    assert info.value.problems == [
        "rancher.token: environment variable RANCHER_TOKEN is not set (set it, or write ${RANCHER_TOKEN:-default})"
    ]


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (("slack", "command"), "access", "slack.command: must be a slash command like /access"),
        (("server", "port"), 70000, "server.port: is invalid"),
        (("oidc", "allowed_algorithms"), ["RS256", "HS256"], "oidc.allowed_algorithms: HS256 not allowed"),
        (("oidc", "allowed_algorithms"), ["none"], "oidc.allowed_algorithms: none not allowed"),
        (("oidc", "refresh_interval"), "soon", "oidc.refresh_interval: `soon` is not a duration"),
        (("schedule", "digest", "day"), 1, "schedule.digest.day: has the wrong type (text)"),
        (("schedule", "digest", "day"), "funday", "schedule.digest.day: must be a day name like monday"),
        (("schedule", "digest", "timezone"), "Mars/Olympus", "schedule.digest.timezone: is not a known IANA timezone"),
        (("rancher", "grant_label"), "cattle.io/grant", "rancher.grant_label: must be a prefixed label key"),
        (("rancher", "group_format"), "path", "rancher.group_format: is not allowed ('name' or 'full_path')"),
        (("schedule", "activation_timeout"), "forever", "schedule.activation_timeout: `forever` is not a duration"),
        (("public_url",), "bot.example.com", "public_url: must be an http(s) URL"),
        (("slack", "colour"), "blue", "slack.colour: is not a known key"),
        (("server", "metrics_token"), "short", "server.metrics_token: is too short (at least 16 random characters"),
    ],
)
def test_bad_field_is_reported_with_its_path(path: tuple[str, ...], value: Any, expected: str) -> None:
    """Each bad field yields `field.path: what is wrong (what is expected)`."""
    data = _valid()
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    problems = _problems(data)
    assert any(p.startswith(expected) for p in problems), problems


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ({"review": {"due": "400d"}}, "review.due: must be between 1h and 365d"),
        ({"review": {"due": "5m"}}, "review.due: must be between 1h and 365d"),
        ({"review": {"on_timeout": "delete"}}, "review.on_timeout: is not allowed"),
        ({"review": {"remind_before": ["1d", "2d", "3d", "4d", "5d", "6d"]}}, "review.remind_before: at most 5"),
        ({"schedule": {"reviews": [{"name": "q", "every": "30d", "due": "1000d"}]}},
         "schedule.reviews[0].due: must be between 1h and 365d"),
        ({"schedule": {"reviews": [{"name": "q", "every": "1h"}]}}, "schedule.reviews[0].every: must be at least 1d"),
        ({"schedule": {"reviews": [{"name": "Q 1", "every": "7d"}]}}, "schedule.reviews[0].name:"),
    ],
)  # fmt: skip
def test_bad_review_settings_are_reported_with_their_path(section: dict[str, Any], expected: str) -> None:
    """The review: section and schedule.reviews are checked like the rest (deadlines as `review start` takes them)."""
    data = _valid()
    for key, value in section.items():
        data.setdefault(key, {}).update(value)
    problems = _problems(data)
    assert any(p.startswith(expected) for p in problems), problems


def test_policy_rule_errors_name_the_rule_index() -> None:
    """A broken policy rule is reported as policy.rules[N].field."""
    data = _valid()
    data["policy"]["rules"][1]["max_duration"] = "forever"
    del data["policy"]["rules"][0]["roles"]
    problems = _problems(data)
    assert "policy.rules[0].roles: is required" in problems
    assert any(p.startswith("policy.rules[1].max_duration: `forever` is not a duration") for p in problems)


def test_missing_sections_are_all_reported_at_once() -> None:
    """Every missing required key is reported, not just the first."""
    problems = _problems({"public_url": "https://x.example.com"})
    for key in ("slack", "oidc", "rancher", "security"):
        assert f"{key}: is required" in problems


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("slack", "bot_token"), "not-a-token-super-secret-1"),
        (("rancher", "token"), "rancher-secret-but-malformed-2"),
        (("security", "token_encryption_keys"), ["not-a-fernet-key-secret-3"]),
        (("server", "metrics_token"), "tooshort4"),
    ],
)
def test_secret_values_never_appear_in_errors(path: tuple[str, ...], value: Any) -> None:
    """A malformed secret is reported without echoing its value."""
    data = _valid()
    data[path[0]][path[1]] = value
    problems = _problems(data)
    text = "\n".join(problems)
    assert f"{path[0]}.{path[1]}" in text
    secret = value if isinstance(value, str) else value[0]
    assert secret not in text


def test_an_empty_metrics_token_leaves_metrics_open_and_a_set_one_is_masked() -> None:
    """`${ACCESSBOT_METRICS_TOKEN:-}` unset means no token (as leaving the key out); a set one never shows in repr."""
    data = _valid()
    data["server"]["metrics_token"] = "  "
    assert parse_config(data).server.metrics_token is None
    data["server"]["metrics_token"] = "a-long-enough-metrics-token-5"
    config = parse_config(data)
    assert config.server.metrics_token is not None
    assert config.server.metrics_token.get_secret_value() == "a-long-enough-metrics-token-5"
    assert "a-long-enough-metrics-token-5" not in repr(config)


def test_invalid_yaml_is_reported_with_position(tmp_path: Path) -> None:
    """Broken YAML is reported with the line and column, not a traceback."""
    path = tmp_path / "bad.yaml"
    path.write_text("slack:\n  command: [unclosed\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert "is not valid YAML at line" in info.value.problems[0]


def test_secret_repr_is_masked() -> None:
    """Secrets print as asterisks in the model's repr."""
    config = parse_config(_valid())
    text = repr(config) + str(config)
    assert "rancherSecretValue123" not in text
    assert botconfig.SIGNING_SECRET not in text


def test_example_file_is_valid_yaml_with_every_documented_section() -> None:
    """The example documents every top-level section."""
    data = yaml.safe_load(EXAMPLE.read_text())
    assert set(data) >= {
        "database",
        "public_url",
        "server",
        "slack",
        "oidc",
        "rancher",
        "security",
        "policy",
        "schedule",
        "review",
    }


PG_PASSWORD = "pg-Secret-Pa55"


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        (f"postgresql://bot:{PG_PASSWORD}@db:54x2/accessbot", "port is not a number"),
        (f"postgresql://bot:{PG_PASSWORD}@db:0/accessbot", "port is not a number"),
        (f"postgresql://bot:{PG_PASSWORD}@db:5432/", "names no database"),
        (f"postgresql://bot:{PG_PASSWORD}@:5432/accessbot", "names no host"),
        (f"postgresql://bot:{PG_PASSWORD} @db/accessbot", "contains spaces"),
        (f"mysql://bot:{PG_PASSWORD}@db/accessbot", "mysql URLs are not supported"),
        ("", "must be text"),
    ],
)
def test_malformed_database_url_is_named_without_echoing_it(url: str, problem: str) -> None:
    """A bad `database:` URL gives `database: what is wrong (what is expected)` and never shows the password."""
    data = _valid()
    data["database"] = url
    (line,) = _problems(data)
    assert line.startswith("database: ")
    assert problem in line
    assert "postgresql://USER:PASSWORD@HOST:5432/DATABASE" in line
    assert PG_PASSWORD not in line


def test_postgresql_url_is_accepted_and_its_password_masked_everywhere() -> None:
    """A postgresql:// URL validates; str, repr, the summary and model dumps show `***`; reveal() gives it whole."""
    from bot.config import summary

    url = f"postgresql://bot:{PG_PASSWORD}@db.example.com:5432/accessbot?sslmode=require"
    data = _valid()
    data["database"] = url
    config = parse_config(data)
    assert config.database.is_postgres
    assert config.database.reveal() == url
    shown = [str(config.database), repr(config.database), repr(config), "\n".join(summary(config))]
    shown.append(config.model_dump_json())
    assert all(PG_PASSWORD not in text for text in shown)
    assert "postgresql://bot:***@db.example.com:5432/accessbot?sslmode=require" in str(config.database)


def test_sqlite_path_stays_a_path() -> None:
    """A plain path is a SQLite file, shown as it is."""
    config = parse_config(_valid())
    assert not config.database.is_postgres
    assert str(config.database) == "/tmp/x.db"
