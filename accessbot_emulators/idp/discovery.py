"""What the dev IdP advertises (its discovery document) and which requested scopes its personality refuses."""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc6749 import scope_to_list

from accessbot_emulators.idp.personalities import Personality, Refusal

CLAIMS_SUPPORTED = [
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "at_hash",
    "email",
    "email_verified",
    "name",
    "preferred_username",
    "groups",
]


def discovery_document(issuer: str, personality: Personality, auth_methods: list[str]) -> dict[str, Any]:
    """OpenID Connect Discovery 1.0 §3 metadata; the endpoints live under the issuer, as the bot expects."""
    base = issuer.rstrip("/")
    grants = ["authorization_code", "refresh_token"]
    if personality.graph:
        grants.append("client_credentials")
    claims = list(CLAIMS_SUPPORTED)
    if personality.name == "entra":
        claims += ["oid", "tid"]
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{base}/authorize",
        "token_endpoint": f"{base}/token",
        "jwks_uri": f"{base}/jwks",
        "userinfo_endpoint": f"{base}/userinfo",
        "revocation_endpoint": f"{base}/revoke",
        "scopes_supported": list(personality.scopes_supported),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": grants,
        "subject_types_supported": ["pairwise" if personality.pairwise_sub else "public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "claims_supported": claims,
    }


def scope_refusal(personality: Personality, scope: str | None) -> Refusal | None:
    """The personality's refusal of an authorization request asking for scopes it does not know, if any."""
    requested = scope_to_list(scope or "") or []
    unknown = [s for s in requested if s not in personality.scopes_supported]
    if not unknown or personality.unknown_scope is None:
        return None
    template = personality.unknown_scope
    text = template.description.format(scope=unknown[0], scopes=" ".join(requested))
    return Refusal(template.status, template.error, text, template.codes)
