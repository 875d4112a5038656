"""`oidc:` the OpenID Connect provider users link with, and how its tokens are checked."""

from __future__ import annotations

from datetime import timedelta

from pydantic import SecretStr, field_validator

from bot.config.base import Duration, FrozenModel, require_http_url


class OidcConfig(FrozenModel):
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
        require_http_url(value)
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
