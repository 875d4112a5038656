"""`oidc:` the OpenID Connect provider users link with, its preset, its group source and how its tokens are checked."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import SecretStr, field_validator, model_validator

from bot.config.base import Duration, FrozenModel, require_http_url
from bot.config.providers import (
    PRESETS,
    RESERVED_AUTH_PARAMS,
    EmailVerifiedPolicy,
    GroupFormat,
    GroupSourceName,
    IssuerForms,
    Preset,
    Provider,
)

_CLAIM = re.compile(r"[A-Za-z0-9_:/.\-]{1,200}")
# https://learn.microsoft.com/entra/identity-platform/v2-protocols-oidc: `common`, `organizations` and `consumers`
# serve a discovery document whose issuer is the literal `https://login.microsoftonline.com/{tenantid}/v2.0`.
_ENTRA_HOSTS = ("login.microsoftonline.com", "login.microsoftonline.us", "login.partner.microsoftonline.cn")
_MULTI_TENANT = ("common", "organizations", "consumers")


class GraphConfig(FrozenModel):
    """Microsoft Graph as the group source (Entra): client credentials at the tenant's token endpoint."""

    mode: Literal["overage", "always"] = "overage"
    url: str = "https://graph.microsoft.com"
    client_id: str | None = None
    client_secret: SecretStr | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        require_http_url(value)
        return value.rstrip("/")


class GoogleDirectoryConfig(FrozenModel):
    """The Admin SDK Directory API as the group source (Google): a service account with domain-wide delegation."""

    credentials_file: Path
    admin_email: str
    url: str = "https://admin.googleapis.com"

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        require_http_url(value)
        return value.rstrip("/")

    @field_validator("credentials_file")
    @classmethod
    def _file(cls, value: Path) -> Path:
        if not value.is_file():
            raise ValueError(f"file {value} does not exist (the service account's JSON key)")
        return value

    @field_validator("admin_email")
    @classmethod
    def _admin(cls, value: str) -> str:
        if "@" not in value:
            raise ValueError("must be the email of a Workspace administrator the service account acts as")
        return value


class OidcConfig(FrozenModel):
    """The OpenID Connect provider users link with; unset keys come from the `provider` preset."""

    provider: Provider = "generic"
    issuer: str
    client_id: str
    client_secret: SecretStr
    scopes: tuple[str, ...] | None = None
    extra_auth_params: dict[str, str] | None = None
    groups_claim: str | None = None
    group_source: GroupSourceName | None = None
    group_format: GroupFormat | None = None
    email_claim: str | None = None
    email_verified: EmailVerifiedPolicy | None = None
    require_refresh_token: bool = True
    relink_grace: Duration = timedelta(hours=1)
    graph: GraphConfig = GraphConfig()
    google_directory: GoogleDirectoryConfig | None = None
    allowed_algorithms: tuple[str, ...] = ("RS256",)
    allowed_email_domains: tuple[str, ...] = ()
    require_email_match: bool = True
    refresh_interval: Duration = timedelta(hours=6)
    timeout: Duration = timedelta(seconds=10)
    login_ttl: Duration = timedelta(minutes=10)

    @field_validator("issuer")
    @classmethod
    def _issuer(cls, value: str) -> str:
        require_http_url(value)
        parts = urlsplit(value)
        first = parts.path.strip("/").split("/", 1)[0].lower()
        if (parts.hostname or "").lower() in _ENTRA_HOSTS and (first in _MULTI_TENANT or "{" in value):
            raise ValueError(
                f"is Entra's multi-tenant endpoint `{first or value}`, whose tokens name each user's own tenant "
                "(use your tenant's issuer: https://login.microsoftonline.com/<tenant id>/v2.0)"
            )
        return value

    @field_validator("scopes")
    @classmethod
    def _scopes(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None and "openid" not in value:
            raise ValueError("must include openid")
        return value

    @field_validator("extra_auth_params")
    @classmethod
    def _params(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        reserved = sorted(set(value or {}) & RESERVED_AUTH_PARAMS)
        if reserved:
            raise ValueError(f"{', '.join(reserved)} is set by the bot itself (e.g. access_type, prompt, hd)")
        return value

    @field_validator("groups_claim", "email_claim")
    @classmethod
    def _claim(cls, value: str | None) -> str | None:
        if value is not None and not _CLAIM.fullmatch(value):
            raise ValueError("must be a claim name like groups, email or https://example.com/groups")
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

    @model_validator(mode="after")
    def _group_source(self) -> OidcConfig:
        if self.group_source == "google_directory" and self.google_directory is None:
            raise ValueError(
                "group_source google_directory needs oidc.google_directory (credentials_file, admin_email)"
            )
        return self

    # --- the values in effect: explicit keys, else the preset ------------------------------------------

    @property
    def preset(self) -> Preset:
        """The defaults of `provider`."""
        return PRESETS[self.provider]

    @property
    def wanted_scopes(self) -> tuple[str, ...]:
        """The preset's scopes (requested only where discovery lists them) unless `scopes` is set."""
        return self.scopes if self.scopes is not None else self.preset.scopes

    @property
    def effective_auth_params(self) -> dict[str, str]:
        """Extra authorization parameters: `extra_auth_params`, else the preset's."""
        return dict(self.extra_auth_params if self.extra_auth_params is not None else self.preset.extra_auth_params)

    @property
    def effective_groups_claim(self) -> str:
        """The claim holding groups."""
        return self.groups_claim or self.preset.groups_claim

    @property
    def effective_group_source(self) -> GroupSourceName:
        """Where groups come from; the Google preset without Directory credentials has no group source."""
        source = self.group_source or self.preset.group_source
        if source == "google_directory" and self.google_directory is None:
            return "none"
        return source

    @property
    def effective_group_format(self) -> GroupFormat:
        """`name` (each value a group) or `path` (Keycloak full paths, split the way Rancher splits them)."""
        return self.group_format or self.preset.group_format

    @property
    def effective_email_claim(self) -> str:
        """The claim holding the email matched against Slack."""
        return self.email_claim or self.preset.email_claim

    @property
    def effective_email_verified(self) -> EmailVerifiedPolicy:
        """How `email_verified` is judged: required true, refused only when false, or ignored."""
        return self.email_verified or self.preset.email_verified

    @property
    def issuer_forms(self) -> IssuerForms:
        """Whether `iss` may also come without its scheme (Google)."""
        return self.preset.issuer_forms
