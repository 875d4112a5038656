"""`oidc.provider` presets, the keys that override them, and the IdP ↔ Rancher pairings check-config refuses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.cli import main
from bot.config import load_config, parse_config, warnings
from bot.config.providers import PRESETS, PROVIDERS
from bot.core.errors import ConfigError
from tests.test_config import ENV, EXAMPLE, _valid

ENTRA = "https://login.microsoftonline.com/6f1c2d3e-4b5a-4c7d-8e9f-0a1b2c3d4e5f/v2.0"


def _with(oidc: dict[str, Any] | None = None, rancher: dict[str, Any] | None = None) -> dict[str, Any]:
    data = _valid()
    data["oidc"].pop("scopes")
    data["oidc"].update(oidc or {})
    data["rancher"].update(rancher or {})
    return data


def _problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    return info.value.problems


@pytest.mark.parametrize("provider", PROVIDERS)
def test_example_config_loads_with_only_the_preset_issuer_and_credentials(provider: str) -> None:
    """config.example.yaml with OIDC_PROVIDER set: valid, the preset's defaults in effect, no explicit scopes."""
    issuer = ENTRA if provider == "entra" else "https://idp.example.com"
    config = load_config(EXAMPLE, environ={**ENV, "OIDC_PROVIDER": provider, "OIDC_ISSUER": issuer})
    assert config.oidc.scopes is None
    assert config.oidc.wanted_scopes == PRESETS[provider].scopes  # type: ignore[index]
    assert config.oidc.require_refresh_token
    assert config.oidc.relink_grace.total_seconds() == 3600


def test_preset_values_are_each_overridable() -> None:
    """An explicit key beats the preset: scopes, parameters, claims, group source, format and email policy."""
    oidc = {
        "provider": "google",
        "scopes": ["openid", "email"],
        "extra_auth_params": {"hd": "example.com"},
        "groups_claim": "roles",
        "group_source": "none",
        "group_format": "path",
        "email_claim": "upn",
        "email_verified": "ignore",
    }
    oc = parse_config(_with(oidc)).oidc
    assert (oc.wanted_scopes, oc.effective_auth_params) == (("openid", "email"), {"hd": "example.com"})
    assert (oc.effective_groups_claim, oc.effective_group_source, oc.effective_group_format) == (
        "roles",
        "none",
        "path",
    )
    assert (oc.effective_email_claim, oc.effective_email_verified) == ("upn", "ignore")


@pytest.mark.parametrize("tenant", ["common", "organizations", "consumers", "{tenantid}"])
def test_multi_tenant_entra_issuers_are_refused(tenant: str) -> None:
    """v2-protocols-oidc: /common and /organizations advertise a literal {tenantid} issuer; refused plainly."""
    problems = _problems(_with({"issuer": f"https://login.microsoftonline.com/{tenant}/v2.0"}))
    assert len(problems) == 1
    assert problems[0].startswith("oidc.issuer: is Entra's multi-tenant endpoint")
    assert "login.microsoftonline.com/<tenant id>/v2.0" in problems[0]


def test_extra_auth_params_may_not_override_what_the_bot_sets() -> None:
    """state, nonce, scope, redirect_uri, PKCE … belong to the bot."""
    assert _problems(_with({"extra_auth_params": {"state": "x", "prompt": "consent"}})) == [
        "oidc.extra_auth_params: state is set by the bot itself (e.g. access_type, prompt, hd)"
    ]


def test_google_directory_group_source_needs_its_credentials() -> None:
    """An explicit google_directory source without oidc.google_directory names what is missing."""
    problems = _problems(_with({"group_source": "google_directory"}))
    assert problems == [
        "oidc: group_source google_directory needs oidc.google_directory (credentials_file, admin_email)"
    ]


def test_google_directory_key_file_must_exist(tmp_path: Path) -> None:
    """A missing service account key is named, without reading anything secret."""
    gd = {"credentials_file": str(tmp_path / "nope.json"), "admin_email": "admin@example.com"}
    problems = _problems(_with({"provider": "google", "google_directory": gd}))
    assert problems[0].startswith("oidc.google_directory.credentials_file: file ")


AZURE_OID = {"auth_provider": "azuread", "user_principal_claim": "oid"}


@pytest.mark.parametrize(
    ("oidc", "rancher", "expected"),
    [
        ({"provider": "entra", "issuer": ENTRA}, {"auth_provider": "azuread"}, "rancher.user_principal_claim: `sub`"),
        ({"provider": "okta"}, AZURE_OID, "rancher.auth_provider: azuread"),
        ({"provider": "okta"}, {"auth_provider": "googleoauth"}, "rancher.auth_provider: googleoauth"),
        ({"provider": "google"}, {"auth_provider": "googleoauth", "user_principal_claim": "email"}, "rancher.user"),
        ({}, {"auth_provider": "local"}, "rancher.auth_provider: local"),
    ],
)
def test_pairings_known_to_break_are_refused(oidc: dict[str, Any], rancher: dict[str, Any], expected: str) -> None:
    """The pairing table (bot/config/pairing.py): each broken pairing names the key and the fix."""
    problems = _problems(_with(oidc, rancher))
    assert any(p.startswith(expected) for p in problems), problems


def test_entra_with_azuread_and_oid_is_accepted() -> None:
    """azuread_user://<oid>: the pairing that works for Rancher's azuread provider."""
    config = parse_config(
        _with({"provider": "entra", "issuer": ENTRA}, {"auth_provider": "azuread", "user_principal_claim": "oid"})
    )
    assert config.rancher.user_principal_claim == "oid"


def test_pairings_that_need_outside_setup_are_warned_about() -> None:
    """Entra + genericoidc (pairwise sub), a SAML provider, Google without a Directory, optional refresh tokens."""
    data = _with({"provider": "entra", "issuer": ENTRA, "require_refresh_token": False})
    text = " ".join(warnings(parse_config(data)))
    assert "Entra's sub is different for every app registration" in text
    assert "require_refresh_token is false" in text
    assert "Google ID tokens carry no groups" in " ".join(warnings(parse_config(_with({"provider": "google"}))))
    assert "SAML" in " ".join(warnings(parse_config(_with(rancher={"auth_provider": "okta"}))))


def test_check_config_prints_the_warnings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """check-config: OK, the summary (provider, group source, principal claim), then each warning."""
    for name, value in {**ENV, "OIDC_PROVIDER": "google"}.items():
        monkeypatch.setenv(name, value)  # the process environment, not our code
    assert main(["check-config", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    assert "oidc            google at" in out
    assert "warning: Google ID tokens carry no groups" in out
