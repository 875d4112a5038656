"""The provider's discovery document as the bot reads it, and which scopes the bot asks for from it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.core.errors import PermanentUpstreamError

SERVICE = "identity provider"
STANDARD_SCOPES = ("openid", "email", "profile")
"""OpenID Connect Core §5.4 scopes: what is requested from a wish list when discovery lists no scopes at all."""
_MAX_LISTED = 200


def _strings(value: object) -> tuple[str, ...] | None:
    """A discovery list of strings (bounded), or None when the provider does not publish it."""
    if not isinstance(value, list):
        return None
    return tuple(str(v)[:200] for v in value[:_MAX_LISTED] if isinstance(v, str))


def wants_post_auth(methods: Sequence[str] | None) -> bool:
    """True when discovery lists client_secret_post but not client_secret_basic (the default when unlisted)."""
    if not methods:
        return False
    return "client_secret_basic" not in methods and "client_secret_post" in methods


@dataclass(frozen=True)
class Metadata:
    """The parts of a discovery document (OpenID Connect Discovery 1.0 §3) the bot uses."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    revocation_endpoint: str | None
    scopes_supported: tuple[str, ...] | None = None
    signing_algs: tuple[str, ...] | None = None
    grant_types: tuple[str, ...] | None = None
    auth_methods: tuple[str, ...] | None = None
    code_challenge_methods: tuple[str, ...] | None = None

    @property
    def post_auth(self) -> bool:
        """Whether the token endpoint accepts only client_secret_post."""
        return wants_post_auth(self.auth_methods)


def parse_metadata(data: Mapping[str, Any]) -> Metadata:
    """The metadata in a discovery document; PermanentUpstreamError when a required endpoint is missing."""
    try:
        return Metadata(
            issuer=str(data["issuer"]),
            authorization_endpoint=str(data["authorization_endpoint"]),
            token_endpoint=str(data["token_endpoint"]),
            jwks_uri=str(data["jwks_uri"]),
            userinfo_endpoint=str(data["userinfo_endpoint"]) if data.get("userinfo_endpoint") else None,
            revocation_endpoint=str(data["revocation_endpoint"]) if data.get("revocation_endpoint") else None,
            scopes_supported=_strings(data.get("scopes_supported")),
            signing_algs=_strings(data.get("id_token_signing_alg_values_supported")),
            grant_types=_strings(data.get("grant_types_supported")),
            auth_methods=_strings(data.get("token_endpoint_auth_methods_supported")),
            code_challenge_methods=_strings(data.get("code_challenge_methods_supported")),
        )
    except KeyError as err:
        raise PermanentUpstreamError(SERVICE, f"discovery document lacks {err.args[0]}") from None


def choose_scopes(wanted: Sequence[str], supported: Sequence[str] | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(requested, dropped): `openid` first, then each wished scope the provider lists in `scopes_supported`.

    Providers refuse a whole sign-in for one scope they do not know (Entra AADSTS650053, Google invalid_scope,
    Keycloak "Invalid scopes", Dex "Unrecognized scope(s)"), so a scope is asked for only when listed. When the
    provider publishes no list, only the OpenID Connect standard scopes of the wish list are asked for.
    """
    allowed = set(supported) if supported is not None else set(STANDARD_SCOPES)
    requested: dict[str, None] = {"openid": None}
    dropped: list[str] = []
    for scope in wanted:
        if scope == "openid" or scope in requested:
            continue
        if scope in allowed:
            requested[scope] = None
        else:
            dropped.append(scope)
    return tuple(requested), tuple(dropped)
