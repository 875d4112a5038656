"""The OpenID Connect adapter: the client (client.py), discovery and scopes, ID-token checks, claims, and the
provider check behind `accessbot oidc check` (check.py)."""

from bot.adapters.oidc.claims import ClaimNames
from bot.adapters.oidc.client import OidcClient, code_challenge

__all__ = ["ClaimNames", "OidcClient", "code_challenge"]
