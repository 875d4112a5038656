"""Reading what the provider said: claims into a VerifiedLogin, and a token endpoint's error body into a refusal."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from bot.core.model import VerifiedLogin
from bot.core.token_refusals import TokenRefusal

MAX_ERROR_BODY = 65_536
"""Bytes of a token endpoint's error answer that are parsed (the rest is ignored)."""
_KEPT_CLAIMS = 100


@dataclass(frozen=True)
class ClaimNames:
    """Which claims hold what (from `oidc.*` and `rancher.user_principal_claim`)."""

    groups: str = "groups"
    groups_from: Literal["id_token", "userinfo"] = "id_token"
    email: str = "email"
    principal: str = "sub"


def groups_value(value: object) -> tuple[str, ...] | None:
    """A groups claim as strings: a list, or one string as one group; absent or another type is None."""
    if isinstance(value, str):
        return (value,) if value else ()
    if isinstance(value, list):
        return tuple(dict.fromkeys(v for v in value if isinstance(v, str) and v))
    return None


def overage(claims: Mapping[str, Any], groups_claim: str) -> bool:
    """Whether the groups were left out because there are too many (Entra).

    https://learn.microsoft.com/entra/identity-platform/id-token-claims-reference: above the token's limit the
    `groups` claim is replaced by `_claim_names: {"groups": "src1"}` with a `_claim_sources` endpoint; `hasgroups`
    (implicit flow) says the same.
    """
    names = claims.get("_claim_names")
    return (isinstance(names, dict) and groups_claim in names) or claims.get("hasgroups") is True


def claim_flag(value: object) -> bool | None:
    """A boolean claim as IdPs send it: None when absent; True only for `true`, `1`, `"true"` or `"1"`.

    OIDC Core 1.0 section 5.1 types `email_verified` as a JSON boolean, but claim-mapping layers that pass user
    attributes through send `"true"`/`"false"` strings or 1/0. Anything else that is present counts as false: an
    unreadable flag must not pass the email guard.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value == 1
    if isinstance(value, str):
        return value.strip().lower() in {"true", "1"}
    return False


def _scalar(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return ""


def kept_claims(claims: Mapping[str, Any]) -> dict[str, object]:
    """The claims worth keeping for display (`oidc check --login`): JSON values, at most a hundred of them."""
    return {str(k)[:100]: v for k, v in list(claims.items())[:_KEPT_CLAIMS]}


def build_login(
    *,
    issuer: str,
    claims: Mapping[str, Any],
    names: ClaimNames,
    refresh_token: str | None,
    access_token_expires_at: int | None,
    userinfo_groups: tuple[str, ...] | None = None,
) -> VerifiedLogin:
    """The login a set of validated claims describes (groups None when the IdP did not say)."""
    over = overage(claims, names.groups)
    if names.groups_from == "userinfo":
        groups = userinfo_groups
    else:
        groups = None if over else groups_value(claims.get(names.groups))
    return VerifiedLogin(
        issuer=issuer,
        subject=str(claims["sub"]),
        email=_scalar(claims.get(names.email)),
        email_verified=claim_flag(claims.get("email_verified")),
        name=_scalar(claims.get("name")) or _scalar(claims.get("preferred_username")),
        groups=groups,
        refresh_token=refresh_token,
        access_token_expires_at=access_token_expires_at,
        principal_subject=_scalar(claims.get(names.principal)),
        groups_overage=over,
        claims=kept_claims(claims),
    )


def parse_refusal(status: int, body: bytes) -> TokenRefusal:
    """A token endpoint's error answer (RFC 6749 §5.2 plus Entra's `error_codes`/`suberror`), bounded."""
    data: object = None
    try:
        data = json.loads(body[:MAX_ERROR_BODY])
    except (ValueError, UnicodeDecodeError, RecursionError):
        data = None
    if not isinstance(data, dict):
        return TokenRefusal(error="", status=status)
    codes = data.get("error_codes")
    return TokenRefusal(
        error=str(data.get("error", ""))[:64],
        description=str(data.get("error_description", ""))[:512],
        codes=tuple(c for c in codes[:10] if isinstance(c, int) and not isinstance(c, bool))
        if isinstance(codes, list)
        else (),
        suberror=str(data.get("suberror", ""))[:64],
        status=status,
    )
