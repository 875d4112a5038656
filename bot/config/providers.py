"""`oidc.provider` presets: the scopes, authorization parameters, claims, group source and email policy per IdP.

A preset only supplies defaults: every explicit `oidc.*` key wins over it. The scopes of a preset are a wish
list: without an explicit `oidc.scopes`, the bot requests only the ones the provider's discovery document lists in
`scopes_supported` (plus `openid`), because most providers refuse the whole sign-in for one unknown scope.

Each row cites where the behaviour it works around is documented:

- generic: OpenID Connect Core 1.0 §5.4 (`email`, `profile`), §11 (`offline_access`); `groups` is a convention.
- okta: https://developer.okta.com/docs/guides/refresh-tokens/main/ (a refresh token only with `offline_access`);
  https://developer.okta.com/docs/guides/customize-tokens-groups-claim/main/ (the `groups` scope and claim must be
  configured; a custom authorization server refuses scopes it does not have).
- entra: https://learn.microsoft.com/entra/identity-platform/scopes-oidc (openid, email, profile, offline_access;
  `groups` is not a scope: AADSTS650053); https://learn.microsoft.com/entra/identity-platform/id-token-claims-reference
  (`groups` holds object ids, no `email_verified`, over 200 groups the claim is replaced by `_claim_names`);
  groups then come from Microsoft Graph.
- google: https://developers.google.com/identity/protocols/oauth2/web-server#offline (`access_type=offline`, and
  `prompt=consent` to get a refresh token again); https://developers.google.com/identity/openid-connect/openid-connect
  (scopes openid, email, profile; `iss` is `https://accounts.google.com` or `accounts.google.com`; no groups claim:
  groups come from the Admin SDK Directory API, as Rancher's own googleoauth provider reads them).
- keycloak: https://www.keycloak.org/docs/latest/server_admin/#_offline-access (`offline_access`);
  https://www.keycloak.org/docs/latest/server_admin/#_protocol-mappers (Group Membership mapper, "Full group path"
  on by default gives `/parent/child`); unknown scopes are refused ("Invalid scopes: …",
  keycloak `AuthorizationEndpointChecker.java`).
- auth0: https://auth0.com/docs/secure/tokens/refresh-tokens/get-refresh-tokens (`offline_access` with "Allow
  Offline Access"); https://auth0.com/docs/secure/tokens/json-web-tokens/create-custom-claims (groups only through an
  Action, as a namespaced custom claim).
- dex: https://dexidp.io/docs/custom-scopes-claims-clients/ (openid, email, profile, groups, offline_access; unknown
  scopes are refused: dex `server/oauth2.go` "Unrecognized scope(s)").
- authentik: https://docs.goauthentik.io/add-secure-apps/providers/oauth2/create-oauth2-provider (a refresh token only
  with `offline_access`); authentik `blueprints/system/providers-oauth2.yaml` (the default `email` mapping always
  says `"email_verified": False`; `groups` comes with the `profile` scope).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

Provider = Literal["generic", "okta", "entra", "google", "keycloak", "auth0", "dex", "authentik"]
GroupSourceName = Literal["id_token", "userinfo", "graph", "google_directory", "none"]
GroupFormat = Literal["name", "path"]
EmailVerifiedPolicy = Literal["required", "if_present", "ignore"]
IssuerForms = Literal["exact", "scheme_optional"]

PROVIDERS: tuple[Provider, ...] = ("generic", "okta", "entra", "google", "keycloak", "auth0", "dex", "authentik")
AUTH0_GROUPS_CLAIM = "https://accessbot.io/groups"
"""The namespaced claim docs/providers/auth0.md's Action writes the user's groups into."""


def _params(**values: str) -> Mapping[str, str]:
    return MappingProxyType(dict(values))


@dataclass(frozen=True)
class Preset:
    """The defaults one provider needs (see the module docstring for the sources)."""

    scopes: tuple[str, ...]
    groups_claim: str = "groups"
    group_source: GroupSourceName = "id_token"
    group_format: GroupFormat = "name"
    email_claim: str = "email"
    email_verified: EmailVerifiedPolicy = "if_present"
    extra_auth_params: Mapping[str, str] = field(default_factory=_params)
    issuer_forms: IssuerForms = "exact"


_STANDARD = ("openid", "email", "profile")
PRESETS: Mapping[Provider, Preset] = MappingProxyType(
    {
        "generic": Preset(scopes=(*_STANDARD, "groups", "offline_access")),
        "okta": Preset(scopes=(*_STANDARD, "groups", "offline_access")),
        "entra": Preset(scopes=(*_STANDARD, "offline_access"), group_source="graph", email_verified="ignore"),
        "google": Preset(
            scopes=_STANDARD,
            group_source="google_directory",
            email_verified="required",
            extra_auth_params=_params(access_type="offline", prompt="consent"),
            issuer_forms="scheme_optional",
        ),
        "keycloak": Preset(
            scopes=(*_STANDARD, "groups", "offline_access"), group_format="path", email_verified="required"
        ),
        "auth0": Preset(
            scopes=(*_STANDARD, "offline_access"), groups_claim=AUTH0_GROUPS_CLAIM, email_verified="required"
        ),
        "dex": Preset(scopes=(*_STANDARD, "groups", "offline_access")),
        "authentik": Preset(scopes=(*_STANDARD, "offline_access"), email_verified="ignore"),
    }
)
"""Every provider's defaults."""

RESERVED_AUTH_PARAMS = frozenset(
    {
        "response_type",
        "client_id",
        "redirect_uri",
        "scope",
        "state",
        "nonce",
        "code_challenge",
        "code_challenge_method",
    }
)
"""Authorization parameters the bot sets itself; `oidc.extra_auth_params` may not override them."""
