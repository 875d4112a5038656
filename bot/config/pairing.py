"""Which identity provider pairs with which Rancher auth provider: the claim each one names users by.

The bot builds the Rancher principal of a user from one ID-token claim (`rancher.user_principal_claim`). Rancher
builds it from its own auth provider (rancher/rancher v2.15.0):

| Rancher auth provider | user principal (source file under `pkg/auth/providers/`) | claim the bot needs |
|---|---|---|
| genericoidc, keycloakoidc, cognito | `<name>_user://<sub>` (`oidc/oidc_provider.go`) | `sub` |
| azuread | `azuread_user://<object id>` (`azure/clients/ms_graph_client.go`) | `oid` |
| googleoauth | `googleoauth_user://<account id>` (`googleoauth/goauth_provider.go`) | `sub` (that id) |
| okta, ping, adfs, keycloak, shibboleth (SAML) | `<name>_user://<UID>` (`saml/saml_client.go`) | Rancher's UID field |
| github, githubapp | `github_user://<numeric GitHub id>` | none in OIDC |
| activedirectory, openldap, freeipa | `<name>_user://<distinguished name>` | none (unless the IdP maps the DN) |
| local | `local://u-…` | none: IdP users are not local users |

`problems` are pairings that cannot work (the configuration is refused); `warnings` are pairings that work only
when something outside the bot is set up the same way (printed by `check-config`, logged at start).
"""

from __future__ import annotations

from bot.config.oidc import OidcConfig
from bot.config.rancher import RancherConfig

SAML_PROVIDERS = frozenset({"okta", "ping", "adfs", "keycloak", "shibboleth"})
NO_OIDC_CLAIM = frozenset({"github", "githubapp", "activedirectory", "openldap", "freeipa"})


def problems(oidc: OidcConfig, rancher: RancherConfig) -> list[str]:
    """Pairings known to break, as `field.path: what is wrong (what is expected)`."""
    out: list[str] = []
    provider, claim = rancher.auth_provider, rancher.user_principal_claim
    if provider == "local":
        out.append(
            "rancher.auth_provider: local cannot name IdP users (use the auth provider your users log in to "
            "Rancher with, e.g. genericoidc, azuread or keycloakoidc)"
        )
    if provider == "azuread":
        if oidc.provider != "entra":
            out.append(
                f"rancher.auth_provider: azuread needs Entra ID object ids, which the {oidc.provider} provider "
                "does not issue (set oidc.provider: entra)"
            )
        if claim != "oid":
            out.append(
                f"rancher.user_principal_claim: `{claim}` does not name azuread users; Rancher's azuread provider "
                "uses the object id, azuread_user://<oid> (set user_principal_claim: oid)"
            )
    if provider == "googleoauth" and oidc.provider != "google":
        out.append(
            f"rancher.auth_provider: googleoauth names users by their Google account id, which the "
            f"{oidc.provider} provider does not issue (set oidc.provider: google)"
        )
    if provider == "googleoauth" and claim != "sub":
        out.append(
            f"rancher.user_principal_claim: `{claim}` does not name googleoauth users; Google's sub is the account "
            "id Rancher uses (set user_principal_claim: sub)"
        )
    return out


def warnings(oidc: OidcConfig, rancher: RancherConfig) -> list[str]:
    """Pairings that depend on setup outside the bot, and preset choices worth knowing."""
    out: list[str] = []
    provider, claim = rancher.auth_provider, rancher.user_principal_claim
    if oidc.provider == "entra" and provider in {"genericoidc", "keycloakoidc", "cognito"} and claim == "sub":
        out.append(
            "Entra's sub is different for every app registration: genericoidc principals match only when Rancher "
            "signs in through the same app registration as the bot (else use auth_provider azuread, claim oid)"
        )
    if provider in SAML_PROVIDERS and claim == "sub" and rancher.user_principal_template is None:
        out.append(
            f"Rancher's {provider} provider is SAML and names users by its UID attribute: set "
            "rancher.user_principal_claim to the claim carrying the same value (e.g. email or preferred_username)"
        )
    if provider in NO_OIDC_CLAIM and rancher.user_principal_template is None:
        out.append(
            f"Rancher's {provider} provider names users by ids no OIDC claim carries; grants bind by principal "
            "only if user_principal_claim names a claim your IdP fills with that id"
        )
    if oidc.provider == "google" and oidc.google_directory is None and oidc.group_source is None:
        out.append("Google ID tokens carry no groups: without oidc.google_directory every linked user has no groups")
    if not oidc.require_refresh_token:
        out.append(
            "oidc.require_refresh_token is false: links without a refresh token are never re-checked, so a user "
            "disabled at the IdP keeps their link (they are marked unmonitored)"
        )
    return out
