"""Reading the configuration file: `${ENV}` substitution, validation into `Config`, `field.path: …` errors, summary."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from bot.config import pairing
from bot.config.root import Config
from bot.core.durations import to_spec
from bot.core.errors import ConfigError

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
DEFAULT_CONFIG_PATH = "config.yaml"


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
        config = Config.model_validate(data)
    except ValidationError as exc:
        errors = _dedupe_union_errors(list(exc.errors(include_url=False, include_input=False)))  # type: ignore[arg-type]
        problems = [f"{_loc(tuple(e['loc']))}: {_explain(e)}" for e in errors]
        raise ConfigError(sorted(dict.fromkeys(problems))) from None
    broken = pairing.problems(config.oidc, config.rancher)
    if broken:
        raise ConfigError(broken)
    return config


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
        f"oidc            {config.oidc.provider} at {config.oidc.issuer} client {config.oidc.client_id}, groups from "
        f"{config.oidc.effective_group_source} (claim {config.oidc.effective_groups_claim!r}, "
        f"{config.oidc.effective_group_format}), email claim {config.oidc.effective_email_claim!r} "
        f"(email_verified {config.oidc.effective_email_verified}), refresh token "
        f"{'required' if config.oidc.require_refresh_token else 'optional'}, "
        f"algorithms {', '.join(config.oidc.allowed_algorithms)}",
        f"rancher         {config.rancher.url} provider {config.rancher.auth_provider} "
        f"(user principal from claim {config.rancher.user_principal_claim!r}), "
        f"TLS {'verified' if config.rancher.verify_tls else 'NOT VERIFIED'}",
        f"security        {len(config.security.token_encryption_keys)} token encryption key(s)",
        f"policy          {len(rules)} rule(s): {', '.join(r.name for r in rules) or 'none'}; "
        f"requests expire after {to_spec(config.policy.request_ttl)}",
        f"schedule        sweep {to_spec(config.schedule.sweep_interval)}, "
        f"reconcile {to_spec(config.schedule.reconcile_interval)}, "
        f"digest {config.schedule.digest.day} {config.schedule.digest.time} {config.schedule.digest.timezone}",
    ]
