"""The configuration file: YAML with `${ENV}` substitution, validated once into frozen pydantic models."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from bot.core.durations import parse_duration, to_spec
from bot.core.errors import ConfigError, UserError
from bot.core.policy import ApprovalRule, Policy, Rule

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
DEFAULT_CONFIG_PATH = "config.yaml"
_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def _duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value <= 0:
            raise ValueError("must be positive (a duration like 30s, 15m, 4h or 2d)")
        return timedelta(seconds=value)
    if not isinstance(value, str):
        raise ValueError("must be a duration like 30s, 15m, 4h or 2d")
    try:
        return parse_duration(value)
    except UserError as err:
        raise ValueError(f"{err.message} (a duration like 30s, 15m, 4h or 2d)") from None


Duration = Annotated[timedelta, BeforeValidator(_duration)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ServerConfig(_Model):
    """Where `accessbot serve` listens."""

    host: str = "0.0.0.0"  # noqa: S104 - a server in a container listens on all interfaces by default
    port: int = Field(3000, ge=1, le=65535)


class SlackChannels(_Model):
    """Channel ids the bot posts to."""

    grants: str | None = None
    approvals: str | None = None
    security: str | None = None
    digest: str | None = None


class SlackConfig(_Model):
    """The Slack app's credentials and where the bot talks."""

    bot_token: SecretStr
    signing_secret: SecretStr
    app_token: SecretStr | None = None
    api_url: str = "https://slack.com/api/"
    command: str = "/access"
    channels: SlackChannels = SlackChannels()
    admins: tuple[str, ...] = ()

    @field_validator("command")
    @classmethod
    def _command_shape(cls, value: str) -> str:
        if not re.fullmatch(r"/[a-z0-9_-]{1,31}", value):
            raise ValueError("must be a slash command like /access")
        return value

    @field_validator("api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        _require_http_url(value)
        return value if value.endswith("/") else value + "/"

    @field_validator("bot_token")
    @classmethod
    def _bot_token(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().startswith("xoxb-"):
            raise ValueError("must be a bot token starting with xoxb-")
        return value

    @field_validator("app_token")
    @classmethod
    def _app_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith("xapp-"):
            raise ValueError("must be an app-level token starting with xapp-")
        return value


class OidcConfig(_Model):
    """The OpenID Connect provider users link with."""

    issuer: str
    client_id: str
    client_secret: SecretStr
    scopes: tuple[str, ...] = ("openid", "email", "profile", "groups", "offline_access")
    groups_claim: str = "groups"
    allowed_algorithms: tuple[str, ...] = ("RS256",)
    allowed_email_domains: tuple[str, ...] = ()
    require_email_match: bool = True
    refresh_interval: Duration = timedelta(hours=6)
    timeout: Duration = timedelta(seconds=10)
    login_ttl: Duration = timedelta(minutes=10)

    @field_validator("issuer")
    @classmethod
    def _issuer(cls, value: str) -> str:
        _require_http_url(value)
        return value

    @field_validator("scopes")
    @classmethod
    def _scopes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if "openid" not in value:
            raise ValueError("must include openid")
        return value

    @field_validator("allowed_algorithms")
    @classmethod
    def _algorithms(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        allowed = {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
        bad = [a for a in value if a not in allowed]
        if bad or not value:
            raise ValueError(
                f"{', '.join(bad) or 'empty list'} not allowed (asymmetric algorithms only: "
                + ", ".join(sorted(allowed))
                + ")"
            )
        return value


class RancherConfig(_Model):
    """The Rancher server and the API key the bot uses."""

    url: str
    token: SecretStr
    verify_tls: bool = True
    ca_bundle: Path | None = None
    auth_provider: str = "genericoidc"
    user_principal_template: str | None = None
    group_principal_template: str | None = None
    timeout: Duration = timedelta(seconds=10)
    cache_ttl: Duration = timedelta(minutes=5)
    max_connections: int = Field(20, ge=1, le=500)
    page_size: int = Field(5000, ge=1, le=10000)
    filter_chunk: int = Field(20, ge=1, le=100)
    grant_label: str = "accessbot.io/grant"

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        _require_http_url(value)
        return value.rstrip("/")

    @field_validator("token")
    @classmethod
    def _token(cls, value: SecretStr) -> SecretStr:
        if not re.fullmatch(r"(token-[a-z0-9]+|ext/[a-z0-9.-]+):\S+", value.get_secret_value()):
            raise ValueError("must be a Rancher API key like token-abcde:<secret>")
        return value

    @field_validator("ca_bundle")
    @classmethod
    def _ca_bundle(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"file {value} does not exist (a PEM CA bundle)")
        return value

    @field_validator("grant_label")
    @classmethod
    def _label(cls, value: str) -> str:
        if value.startswith("cattle.io/") or "/" not in value:
            raise ValueError("must be a prefixed label key outside cattle.io/, like accessbot.io/grant")
        return value


class SecurityConfig(_Model):
    """Keys protecting secrets at rest."""

    token_encryption_keys: tuple[SecretStr, ...]

    @field_validator("token_encryption_keys")
    @classmethod
    def _keys(cls, value: tuple[SecretStr, ...]) -> tuple[SecretStr, ...]:
        if not value:
            raise ValueError("needs at least one Fernet key (generate with `accessbot gen-key`)")
        for index, key in enumerate(value):
            if not _is_fernet_key(key.get_secret_value()):
                raise ValueError(f"entry {index} is not a Fernet key (32 url-safe base64 bytes; `accessbot gen-key`)")
        return value


class ApprovalConfig(_Model):
    """Who must approve: `count` distinct members of `groups`."""

    groups: tuple[str, ...] = Field(min_length=1)
    count: int = Field(1, ge=1, le=10)


class RuleConfig(_Model):
    """One policy rule as written in the YAML file."""

    name: str = Field(min_length=1, max_length=64)
    groups: tuple[str, ...] = Field(min_length=1)
    clusters: tuple[str, ...] = ()
    projects: tuple[str, ...] = ()
    cluster_labels: dict[str, str] = Field(default_factory=dict)
    roles: tuple[str, ...] = Field(min_length=1)
    max_duration: Duration
    default_duration: Duration | None = None
    approval: Literal["none"] | ApprovalConfig = "none"
    require_reason: bool = False
    max_extensions: int = Field(0, ge=0, le=100)
    self_approval: bool = False
    break_glass: bool = False

    @field_validator("projects")
    @classmethod
    def _projects(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            if item.count("/") != 1:
                raise ValueError(f"{item!r} is not CLUSTER/PROJECT (globs allowed, e.g. dev-*/*)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> RuleConfig:
        if not self.clusters and not self.projects and not self.cluster_labels:
            raise ValueError("needs clusters, projects or cluster_labels (what may be requested)")
        if self.default_duration is not None and self.default_duration > self.max_duration:
            raise ValueError("default_duration is over max_duration (default must be ≤ max)")
        if self.break_glass and self.max_duration > timedelta(hours=4):
            raise ValueError("break_glass rules are capped at 4h (max_duration ≤ 4h)")
        return self

    def to_rule(self) -> Rule:
        """Convert to the core's pure value."""
        approval = (
            ApprovalRule()
            if self.approval == "none"
            else ApprovalRule(groups=self.approval.groups, count=self.approval.count)
        )
        return Rule(
            name=self.name,
            groups=self.groups,
            roles=self.roles,
            max_duration=self.max_duration,
            default_duration=self.default_duration or min(self.max_duration, timedelta(hours=1)),
            clusters=self.clusters,
            projects=self.projects,
            cluster_labels=tuple(sorted(self.cluster_labels.items())),
            approval=approval,
            require_reason=self.require_reason or self.break_glass,
            max_extensions=self.max_extensions,
            self_approval=self.self_approval,
            break_glass=self.break_glass,
        )


class PolicyConfig(_Model):
    """Rules that decide what may be requested."""

    request_ttl: Duration = timedelta(hours=1)
    rules: tuple[RuleConfig, ...] = ()

    @field_validator("rules")
    @classmethod
    def _unique_names(cls, value: tuple[RuleConfig, ...]) -> tuple[RuleConfig, ...]:
        seen: set[str] = set()
        for rule in value:
            if rule.name in seen:
                raise ValueError(f"rule name {rule.name!r} is used twice (names must be unique)")
            seen.add(rule.name)
        return value

    def to_policy(self) -> Policy:
        """Convert to the core's pure value."""
        return Policy(rules=tuple(r.to_rule() for r in self.rules), request_ttl=self.request_ttl)


class DigestConfig(_Model):
    """When the weekly audit digest is posted."""

    day: str = "monday"
    time: str = "09:00"
    timezone: str = "UTC"

    @field_validator("day")
    @classmethod
    def _day(cls, value: str) -> str:
        day = value.strip().lower()
        matches = [d for d in _DAYS if d.startswith(day[:3])] if len(day) >= 3 else []
        if len(matches) != 1 or not (day == matches[0] or day == matches[0][:3]):
            raise ValueError("must be a day name like monday (numbers are ambiguous)")
        return matches[0]

    @field_validator("time")
    @classmethod
    def _time(cls, value: str) -> str:
        match = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", value.strip())
        if not match:
            raise ValueError("must be HH:MM in 24-hour time, like 09:00")
        return f"{int(match.group(1)):02d}:{match.group(2)}"

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("is not a known IANA timezone (like Europe/Berlin or UTC)") from None
        return value


class ScheduleConfig(_Model):
    """Intervals of the scheduled jobs."""

    sweep_interval: Duration = timedelta(seconds=30)
    reconcile_interval: Duration = timedelta(minutes=10)
    outbox_interval: Duration = timedelta(seconds=5)
    lease_ttl: Duration = timedelta(seconds=60)
    revoke_concurrency: int = Field(16, ge=1, le=256)
    overdue_alert_after: Duration = timedelta(minutes=2)
    expiry_warning: Duration = timedelta(minutes=10)
    repair_drift: bool = False
    report_untagged: bool = False
    digest: DigestConfig = DigestConfig()


class Config(_Model):
    """The whole configuration."""

    database: Path = Path("./accessbot.db")
    public_url: str
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    server: ServerConfig = ServerConfig()
    slack: SlackConfig
    oidc: OidcConfig
    rancher: RancherConfig
    security: SecurityConfig
    policy: PolicyConfig = PolicyConfig()
    schedule: ScheduleConfig = ScheduleConfig()

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str) -> str:
        _require_http_url(value)
        return value.rstrip("/")

    @property
    def redirect_uri(self) -> str:
        """The OAuth redirect registered at the IdP."""
        return f"{self.public_url}/oauth/callback"


def _require_http_url(value: str) -> None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an http(s) URL like https://host.example.com")


def _is_fernet_key(value: str) -> bool:
    import base64  # noqa: PLC0415 - only needed while validating

    try:
        return len(base64.urlsafe_b64decode(value.encode())) == 32
    except (ValueError, TypeError):
        return False


def substitute_env(data: Any, environ: Mapping[str, str], path: str = "") -> tuple[Any, list[str]]:
    """Replace `${NAME}` / `${NAME:-default}` inside parsed YAML values; return the data and problems."""
    problems: list[str] = []
    if isinstance(data, dict):
        out: dict[Any, Any] = {}
        for key, value in data.items():
            out[key], sub = substitute_env(value, environ, f"{path}.{key}" if path else str(key))
            problems += sub
        return out, problems
    if isinstance(data, list):
        items = []
        for index, value in enumerate(data):
            item, sub = substitute_env(value, environ, f"{path}[{index}]")
            items.append(item)
            problems += sub
        return items, problems
    if not isinstance(data, str) or "${" not in data:
        return data, problems

    def repl(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        problems.append(
            f"{path or '(top level)'}: environment variable {name} is not set (set it, or write ${{{name}:-default}})"
        )
        return ""

    return _ENV_REF.sub(repl, data), problems


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("function-after", "function-before", "literal['none']"):
            continue
        elif "[" in str(part) or str(part).startswith(("function", "lax", "json")):
            continue  # pydantic union/validator branch tags are not field names
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _explain(err: dict[str, Any]) -> str:
    kind = err["type"]
    msg = str(err["msg"])
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "is not a known key (check the spelling; see config.example.yaml)"
    if msg.startswith("Value error, "):
        return msg.removeprefix("Value error, ")
    if kind in (
        "string_type",
        "int_type",
        "int_parsing",
        "bool_type",
        "bool_parsing",
        "tuple_type",
        "list_type",
    ):
        expected = {
            "string_type": "text",
            "int_type": "a whole number",
            "int_parsing": "a whole number",
            "bool_type": "true or false",
            "bool_parsing": "true or false",
            "tuple_type": "a list",
            "list_type": "a list",
        }[kind]
        return f"has the wrong type ({expected})"
    if kind in {"model_type", "dict_type"}:
        return "has the wrong type (a mapping of keys)"
    if kind == "literal_error":
        return f"is not allowed ({msg.removeprefix('Input should be ')})"
    # Never include err["input"]: it may be a secret.
    return f"is invalid ({msg})"


def _dedupe_union_errors(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop the 'literal none' branch error of `approval` when the mapping branch explains more."""
    out = []
    locs = {tuple(e["loc"]) for e in errors}
    for e in errors:
        loc = tuple(e["loc"])
        if e["type"] == "literal_error" and any(len(o) > len(loc) and o[: len(loc) - 1] == loc[:-1] for o in locs):
            continue
        out.append(e)
    return out


def parse_config(data: Any) -> Config:
    """Validate already-loaded YAML data, or raise ConfigError with one line per problem."""
    if not isinstance(data, dict):
        raise ConfigError(["(top level): is not a mapping (expected keys like public_url, slack, oidc, …)"])
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        errors = _dedupe_union_errors(list(exc.errors(include_url=False, include_input=False)))  # type: ignore[arg-type]
        problems = [f"{_loc(tuple(e['loc']))}: {_explain(e)}" for e in errors]
        raise ConfigError(sorted(dict.fromkeys(problems))) from None


def load_config(path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Read, substitute and validate the configuration file; raise ConfigError on any problem."""
    env = os.environ if environ is None else environ
    chosen = Path(path or env.get("ACCESSBOT_CONFIG") or DEFAULT_CONFIG_PATH)
    try:
        text = chosen.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{chosen}: file not found (pass --config PATH or set ACCESSBOT_CONFIG)"]) from None
    except OSError as err:
        raise ConfigError([f"{chosen}: cannot be read ({err.strerror})"]) from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "unknown position"
        raise ConfigError(
            [f"{chosen}: is not valid YAML at {where} ({getattr(err, 'problem', 'syntax error')})"]
        ) from None
    data, missing = substitute_env(raw, env)
    if missing:
        raise ConfigError(missing)
    return parse_config(data)


def summary(config: Config) -> list[str]:
    """A one-screen description of a valid configuration (no secret values)."""
    channels = config.slack.channels
    rules = config.policy.rules
    return [
        f"database        {config.database}",
        f"public_url      {config.public_url} (OAuth redirect {config.redirect_uri})",
        f"server          {config.server.host}:{config.server.port}",
        f"slack           command {config.slack.command}, API {config.slack.api_url}, "
        f"socket mode {'available' if config.slack.app_token else 'off'}, {len(config.slack.admins)} admin(s)",
        f"channels        grants={channels.grants or '-'} approvals={channels.approvals or '-'} "
        f"security={channels.security or '-'} digest={channels.digest or '-'}",
        f"oidc            {config.oidc.issuer} client {config.oidc.client_id}, groups claim "
        f"{config.oidc.groups_claim!r}, algorithms {', '.join(config.oidc.allowed_algorithms)}",
        f"rancher         {config.rancher.url} provider {config.rancher.auth_provider}, "
        f"TLS {'verified' if config.rancher.verify_tls else 'NOT VERIFIED'}",
        f"security        {len(config.security.token_encryption_keys)} token encryption key(s)",
        f"policy          {len(rules)} rule(s): {', '.join(r.name for r in rules) or 'none'}; "
        f"requests expire after {to_spec(config.policy.request_ttl)}",
        f"schedule        sweep {to_spec(config.schedule.sweep_interval)}, "
        f"reconcile {to_spec(config.schedule.reconcile_interval)}, "
        f"digest {config.schedule.digest.day} {config.schedule.digest.time} {config.schedule.digest.timezone}",
    ]
