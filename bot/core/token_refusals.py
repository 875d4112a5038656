"""What a refused refresh means: the IdP wants a new sign-in, the account is gone, or a token was reused.

`classify` is the specification. A token endpoint refusal (RFC 6749 §5.2 `error`, `error_description`, and the
Entra extras `error_codes` and `suberror`) is read in this order:

1. `interaction_required`, `login_required`, `consent_required` (OpenID Connect Core §3.1.2.6) → REAUTH.
2. Entra AADSTS codes (from `error_codes`, else `AADSTSnnnn` in the description;
   https://learn.microsoft.com/entra/identity-platform/reference-error-codes):
   REAUTH for 50055 (password expired), 50076 (MFA required by a policy change or a new location), 50078 (MFA
   expired), 50079 (MFA registration required), 70043 (Conditional Access sign-in frequency), 700082 (refresh token
   expired through inactivity); DEACTIVATED for 50034 (user does not exist), 50057 (user disabled), 50173 (grant
   revoked: password reset or sessions revoked), 70008 (grant expired or revoked).
3. `invalid_grant` naming reuse ("reuse") → REUSE (the dev IdP's and RFC 9700 §4.14.2's rotation check).
4. Entra `suberror` basic_action, additional_action, user_password_expired, consent_required (MSAL's
   interaction-required sub-errors) → REAUTH.
5. Google's "Token has been expired or revoked." → UNCONFIRMED: Google says the same for a suspended or deleted
   account, a user revoking access, and the per-client limit of live refresh tokens
   (https://developers.google.com/identity/protocols/oauth2#expiration), so only the directory can tell.
6. Any other `invalid_grant` → DEACTIVATED (fail closed: Okta, Keycloak "User disabled", Auth0 "user is blocked").
7. Dex's `invalid_request` "Refresh token is invalid or has already been claimed by another client." and
   "Refresh token expired." (dex v2.45.1 `server/refreshhandlers.go`) → DEACTIVATED: Dex reports a dead refresh
   token as invalid_request.
8. Anything else is not about the grant (e.g. `invalid_client`: the bot's own credentials) → None.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class RefusalKind(StrEnum):
    """What a refused refresh means for the link."""

    REAUTH = "reauth"  # the IdP wants the user to sign in again (MFA, sign-in frequency, token limits)
    DEACTIVATED = "deactivated"  # the account is disabled or deleted, or its tokens were revoked
    REUSE = "reuse"  # a rotated refresh token was presented again
    UNCONFIRMED = "unconfirmed"  # the IdP cannot say which: ask the directory; without one, DEACTIVATED


@dataclass(frozen=True)
class TokenRefusal:
    """A token endpoint's error answer, bounded and parsed (RFC 6749 §5.2 plus Entra's extras)."""

    error: str
    description: str = ""
    codes: tuple[int, ...] = ()
    suberror: str = ""
    status: int = 400

    def summary(self) -> str:
        """`error: description` cut short, for logs and audit details."""
        return f"{self.error}: {self.description}"[:200] if self.description else self.error


REAUTH_ERRORS = frozenset({"interaction_required", "login_required", "consent_required"})
ENTRA_REAUTH = frozenset({50055, 50076, 50078, 50079, 70043, 700082})
ENTRA_DEACTIVATED = frozenset({50034, 50057, 50173, 70008})
REAUTH_SUBERRORS = frozenset({"basic_action", "additional_action", "user_password_expired", "consent_required"})
GOOGLE_AMBIGUOUS = "token has been expired or revoked"
DEX_DEAD_TOKEN = ("refresh token is invalid or has already been claimed", "refresh token expired")
_AADSTS = re.compile(r"AADSTS(\d{4,7})")


def entra_codes(refusal: TokenRefusal) -> tuple[int, ...]:
    """The AADSTS codes of a refusal: `error_codes`, else the ones named in the description."""
    if refusal.codes:
        return refusal.codes
    return tuple(int(code) for code in _AADSTS.findall(refusal.description[:512]))


def classify(refusal: TokenRefusal) -> RefusalKind | None:
    """What the refusal means for the link, or None when it is not about the user's grant (see module doc)."""
    error = refusal.error
    description = refusal.description.lower()
    if error in REAUTH_ERRORS:
        return RefusalKind.REAUTH
    if error == "invalid_grant":
        codes = set(entra_codes(refusal))
        if codes & ENTRA_REAUTH:
            return RefusalKind.REAUTH
        if codes & ENTRA_DEACTIVATED:
            return RefusalKind.DEACTIVATED
        if "reuse" in description:
            return RefusalKind.REUSE
        if refusal.suberror in REAUTH_SUBERRORS:
            return RefusalKind.REAUTH
        if GOOGLE_AMBIGUOUS in description:
            return RefusalKind.UNCONFIRMED
        return RefusalKind.DEACTIVATED
    if error == "invalid_request" and description.startswith(DEX_DEAD_TOKEN):
        return RefusalKind.DEACTIVATED
    return None
