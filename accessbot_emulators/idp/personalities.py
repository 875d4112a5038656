"""How each real identity provider behaves, as data the dev IdP follows (`accessbot dev-idp --personality NAME`).

Every behaviour cites where it is documented (a vendor page, or the provider's own source at a tag). Where a
vendor documents nothing, the row says so and the emulator keeps refresh tokens valid (the bot must then not
rely on it). `generic` is the original dev IdP: every scope known, refresh tokens always, rotation with reuse
detection.

Account events (`DevIdP.account_event`) and what a refresh of a token issued before the event answers:
disabled, deleted, password_reset, mfa_reset, mfa_required, sign_in_frequency, inactivity, sessions_revoked,
token_limit. `None` means the event leaves refresh tokens valid.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

EVENTS = (
    "disabled",
    "deleted",
    "password_reset",
    "mfa_reset",
    "mfa_required",
    "sign_in_frequency",
    "inactivity",
    "sessions_revoked",
    "token_limit",
)
"""Account events a test or the demo can cause, in the order a refresh checks them."""


@dataclass(frozen=True)
class Refusal:
    """A token endpoint's error answer (RFC 6749 §5.2, plus Entra's `error_codes`)."""

    status: int
    error: str
    description: str = ""
    codes: tuple[int, ...] = ()

    def body(self) -> dict[str, Any]:
        """The JSON body as the provider sends it."""
        out: dict[str, Any] = {"error": self.error}
        if self.description:
            out["error_description"] = self.description
        if self.codes:
            out["error_codes"] = list(self.codes)
            out["trace_id"] = "00000000-0000-0000-0000-000000000000"
            out["correlation_id"] = "00000000-0000-0000-0000-000000000000"
        return out


def _refusals(**values: Refusal | None) -> Mapping[str, Refusal | None]:
    return MappingProxyType({event: values.get(event) for event in EVENTS})


def _entra(code: int, text: str) -> Refusal:
    # https://learn.microsoft.com/entra/identity-platform/reference-error-codes: the description starts with the
    # AADSTS code and the body carries `error_codes`.
    return Refusal(400, "invalid_grant", f"AADSTS{code}: {text}", (code,))


# The original dev IdP: one refusal for every event (RFC 6749 §5.2 invalid_grant).
_DEAD = Refusal(400, "invalid_grant", "The account is disabled.")
GENERIC_REFUSALS = _refusals(
    disabled=_DEAD, deleted=_DEAD, sessions_revoked=Refusal(400, "invalid_grant", "Refresh token was revoked.")
)


def _generic_refusals() -> Mapping[str, Refusal | None]:
    return GENERIC_REFUSALS


@dataclass(frozen=True)
class Personality:
    """One provider's documented behaviour (see each instance for the sources)."""

    name: str
    issuer_path: str = ""
    scopes_supported: tuple[str, ...] = ("openid", "email", "profile", "groups", "offline_access")
    unknown_scope: Refusal | None = None  # None: unknown scopes are dropped silently
    unknown_scope_page: bool = False  # True: the refusal is an error page, not a redirect (Google)
    issues_refresh: Literal["always", "offline_access", "access_type"] = "always"
    rotates: bool = True
    reuse_detection: bool = True
    reuse_refusal: Refusal | None = None  # None: reuse revokes the whole token family (RFC 9700 §4.14.2)
    groups_claim: str = "groups"
    groups_scope: str | None = None  # the scope that must be granted for the groups claim (None: always sent)
    group_format: Literal["names", "guids", "paths", "none"] = "names"
    overage_limit: int | None = None
    userinfo_groups: bool = True
    email_verified: Literal["account", "absent", "false"] = "account"
    pairwise_sub: bool = False
    iss_without_scheme: bool = False
    session_max: int | None = None  # seconds an online (non-offline_access) refresh token lives
    refusals: Mapping[str, Refusal | None] = field(default_factory=_generic_refusals)
    graph: bool = False
    directory: bool = False


GENERIC = Personality(
    "generic",
    # authlib's AuthorizationServer.validate_requested_scope: unknown scopes → invalid_scope (RFC 6749 §4.1.2.1).
    unknown_scope=Refusal(400, "invalid_scope", "The requested scope is invalid, unknown, or malformed."),
)

ENTRA_TENANT = "6f1c2d3e-4b5a-4c7d-8e9f-0a1b2c3d4e5f"
ENTRA = Personality(
    "entra",
    issuer_path=f"/{ENTRA_TENANT}/v2.0",
    # https://learn.microsoft.com/entra/identity-platform/scopes-oidc: the OIDC scopes are openid, email, profile
    # and offline_access; `groups` is no scope (reference check row 20: AADSTS650053).
    scopes_supported=("openid", "profile", "email", "offline_access"),
    unknown_scope=Refusal(
        400,
        "invalid_client",
        "AADSTS650053: The application 'accessbot' asked for scope '{scope}' that doesn't exist on the resource "
        "'00000003-0000-0000-c000-000000000000'.",
    ),
    # scopes-oidc: "offline_access … your app receives refresh tokens"; refresh-tokens: "Refresh tokens replace
    # themselves with a fresh token upon every use" (the old one is not revoked).
    issues_refresh="offline_access",
    rotates=True,
    reuse_detection=False,
    # id-token-claims-reference: `groups` holds object ids; over 200 (JWT) the claim is replaced by
    # `_claim_names`/`_claim_sources` (how-to-connect-fed-group-claims: "limited to … 200 for JWT").
    group_format="guids",
    overage_limit=200,
    userinfo_groups=False,  # userinfo returns sub, name, family_name, given_name, picture, email only
    email_verified="absent",  # not in id-token-claims-reference
    pairwise_sub=True,  # id-token-claims-reference: `sub` is "unique to a particular application ID"; `oid` is not
    refusals=_refusals(
        disabled=_entra(50057, "The user account is disabled."),
        deleted=_entra(50034, "The user account does not exist in the directory."),
        password_reset=_entra(
            50173, "The provided grant has expired due to it being revoked, a fresh auth token is needed."
        ),
        sessions_revoked=_entra(
            50173, "The provided grant has expired due to it being revoked, a fresh auth token is needed."
        ),
        mfa_reset=_entra(50079, "Due to a configuration change made by your administrator, you must enroll in MFA."),
        mfa_required=_entra(50076, "Due to a configuration change made by your administrator, you must use MFA."),
        sign_in_frequency=_entra(
            70043,
            "The refresh token has expired or is invalid due to sign-in frequency checks by conditional access.",
        ),
        inactivity=_entra(700082, "The refresh token has expired due to inactivity."),
    ),
    graph=True,
)

_GOOGLE_DEAD = Refusal(400, "invalid_grant", "Token has been expired or revoked.")
GOOGLE = Personality(
    "google",
    # https://accounts.google.com/.well-known/openid-configuration lists openid, email, profile;
    # reference check row 20: `offline_access` → invalid_scope, shown on a Google error page.
    scopes_supported=("openid", "email", "profile"),
    unknown_scope=Refusal(
        400,
        "invalid_scope",
        "Some requested scopes were invalid. {{valid=[openid, email, profile], invalid=[{scope}]}}",
    ),
    unknown_scope_page=True,
    # https://developers.google.com/identity/protocols/oauth2/web-server#offline: a refresh token only with
    # access_type=offline, and after the first consent only with prompt=consent; refreshing returns no new one.
    issues_refresh="access_type",
    rotates=False,
    reuse_detection=False,
    # https://developers.google.com/identity/openid-connect/openid-connect: no groups claim; `iss` is
    # "accounts.google.com or https://accounts.google.com"; `email_verified` always present.
    group_format="none",
    userinfo_groups=False,
    iss_without_scheme=True,
    # https://developers.google.com/identity/protocols/oauth2#expiration: revoked access, the live-token limit
    # per client, password change (Gmail scopes only) end a refresh token; every one answers the same.
    refusals=_refusals(
        disabled=_GOOGLE_DEAD, deleted=_GOOGLE_DEAD, sessions_revoked=_GOOGLE_DEAD, token_limit=_GOOGLE_DEAD
    ),
    directory=True,
)

OKTA = Personality(
    "okta",
    issuer_path="/oauth2/default",
    # https://developer.okta.com/docs/guides/customize-tokens-groups-claim/main/: a custom authorization server
    # knows only the scopes configured on it; reference check row 20 (okta-express-sample#6) for the message.
    scopes_supported=("openid", "email", "profile", "address", "phone", "offline_access", "groups"),
    unknown_scope=Refusal(
        400, "invalid_scope", "One or more scopes are not configured for the authorization server resource."
    ),
    # https://developer.okta.com/docs/guides/refresh-tokens/main/: a refresh token with `offline_access`;
    # rotation is an app setting ("Use persistent token" or "Rotate token after every use").
    issues_refresh="offline_access",
    rotates=False,
    reuse_detection=False,
    groups_scope="groups",
    refusals=_refusals(
        # https://developer.okta.com/docs/reference/api/oidc/: invalid_grant "The refresh token is invalid or
        # expired." for a deactivated, suspended or deleted user's token, and for tokens an admin revoked.
        disabled=Refusal(400, "invalid_grant", "The refresh token is invalid or expired."),
        deleted=Refusal(400, "invalid_grant", "The refresh token is invalid or expired."),
        sessions_revoked=Refusal(400, "invalid_grant", "The refresh token is invalid or expired."),
    ),
)

KEYCLOAK = Personality(
    "keycloak",
    issuer_path="/realms/accessbot",
    # A realm's default client scopes; there is no `groups` scope unless an admin adds one, and the Group
    # Membership mapper sits on the client's dedicated scope. keycloak AuthorizationEndpointChecker.java:
    # "Invalid scopes: " + scope.
    scopes_supported=(
        "openid",
        "offline_access",
        "profile",
        "email",
        "address",
        "phone",
        "roles",
        "web-origins",
        "acr",
        "basic",
        "microprofile-jwt",
        "organization",
    ),
    unknown_scope=Refusal(400, "invalid_scope", "Invalid scopes: {scopes}"),
    # https://www.keycloak.org/docs/latest/server_admin/#_offline-access: offline tokens with `offline_access`;
    # other refresh tokens end with the SSO session (SSO Session Max 10 hours, #_timeouts). A new refresh token
    # comes with every refresh; the old one stays valid unless "Revoke Refresh Token" is on (off by default).
    issues_refresh="always",
    session_max=36_000,
    rotates=True,
    reuse_detection=False,
    group_format="paths",  # Group Membership mapper, "Full group path" on by default: /eng/platform
    refusals=_refusals(
        # keycloak TokenManager.validateToken: INVALID_GRANT "User disabled", "Invalid refresh token" (unknown
        # user), "Session not active".
        disabled=Refusal(400, "invalid_grant", "User disabled"),
        deleted=Refusal(400, "invalid_grant", "Invalid refresh token"),
        sessions_revoked=Refusal(400, "invalid_grant", "Session not active"),
    ),
)

AUTH0_GROUPS = "https://accessbot.io/groups"
AUTH0 = Personality(
    "auth0",
    issuer_path="/",  # https://auth0.com/docs/secure/tokens/id-tokens/id-token-structure: iss ends with "/"
    scopes_supported=(
        "openid",
        "profile",
        "offline_access",
        "name",
        "given_name",
        "family_name",
        "nickname",
        "email",
        "email_verified",
        "picture",
        "created_at",
        "identities",
        "phone",
        "address",
    ),
    # https://auth0.com/docs/secure/tokens/refresh-tokens/get-refresh-tokens: `offline_access` plus "Allow
    # Offline Access"; rotation is off unless enabled (…/refresh-token-rotation).
    issues_refresh="offline_access",
    rotates=False,
    reuse_detection=False,
    # https://auth0.com/docs/secure/tokens/json-web-tokens/create-custom-claims: groups only through an Action,
    # as a (namespaced) custom claim.
    groups_claim=AUTH0_GROUPS,
    userinfo_groups=False,
    refusals=_refusals(
        # Blocked users: 403 invalid_grant "user is blocked" (auth0/auth0-spa-js#1525, Feb 2026); a deleted user's
        # or revoked refresh token: invalid_grant "Unknown or invalid refresh token."
        disabled=Refusal(403, "invalid_grant", "user is blocked"),
        deleted=Refusal(403, "invalid_grant", "Unknown or invalid refresh token."),
        sessions_revoked=Refusal(403, "invalid_grant", "Unknown or invalid refresh token."),
    ),
)

DEX = Personality(
    "dex",
    issuer_path="/dex",
    # dex v2.45.1 server/oauth2.go: openid, email, profile, groups, offline_access (plus federated:id and
    # audience scopes); anything else: invalid_scope "Unrecognized scope(s) %q".
    scopes_supported=("openid", "email", "groups", "profile", "offline_access"),
    unknown_scope=Refusal(400, "invalid_scope", 'Unrecognized scope(s) ["{scope}"]'),
    # server/handlers.go: a refresh token only with offline_access and a connector that can refresh;
    # server/refreshhandlers.go: rotation on by default, a claimed token reused → 400 invalid_request.
    issues_refresh="offline_access",
    rotates=True,
    reuse_detection=True,
    reuse_refusal=Refusal(
        400, "invalid_request", "Refresh token is invalid or has already been claimed by another client."
    ),
    groups_scope="groups",
    refusals=_refusals(
        # refreshhandlers.go refreshWithConnector: when the connector refuses (user gone upstream) Dex answers
        # HTTP 500 invalid_request without a description; a revoked token is 400 invalid_request.
        disabled=Refusal(500, "invalid_request"),
        deleted=Refusal(500, "invalid_request"),
        sessions_revoked=Refusal(
            400, "invalid_request", "Refresh token is invalid or has already been claimed by another client."
        ),
    ),
)

_AUTHENTIK_GRANT = (
    "The provided authorization grant or refresh token is invalid, expired, revoked, does not match the "
    "redirection URI used in the authorization request, or was issued to another client"
)
AUTHENTIK = Personality(
    "authentik",
    issuer_path="/application/o/accessbot/",
    # blueprints/system/providers-oauth2.yaml: openid, email, profile, entitlements, offline_access; the authorize
    # view reduces other scopes to the overlap ("Application requested scopes not configured, setting to overlap").
    scopes_supported=("openid", "email", "profile", "entitlements", "offline_access"),
    # providers/oauth2/views/token.py: a refresh token only when offline_access was granted; a used refresh
    # token is revoked ("Revoked refresh token was used").
    issues_refresh="offline_access",
    rotates=True,
    reuse_detection=True,
    reuse_refusal=Refusal(400, "invalid_grant", _AUTHENTIK_GRANT),
    groups_scope="profile",  # the default `profile` mapping returns `groups`
    email_verified="false",  # the default `email` mapping returns "email_verified": False
    refusals=_refusals(
        disabled=Refusal(400, "invalid_grant", _AUTHENTIK_GRANT),
        deleted=Refusal(400, "invalid_grant", _AUTHENTIK_GRANT),
        sessions_revoked=Refusal(400, "invalid_grant", _AUTHENTIK_GRANT),
    ),
)

PERSONALITIES: Mapping[str, Personality] = MappingProxyType(
    {p.name: p for p in (GENERIC, ENTRA, GOOGLE, OKTA, KEYCLOAK, AUTH0, DEX, AUTHENTIK)}
)
"""Every personality by name."""
