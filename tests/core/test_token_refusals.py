"""What a refused refresh means (core.token_refusals.classify), one row per documented provider answer."""

from __future__ import annotations

import pytest

from bot.core.token_refusals import RefusalKind, TokenRefusal, classify, entra_codes

R = RefusalKind


@pytest.mark.parametrize(
    ("refusal", "kind"),
    [
        # https://learn.microsoft.com/entra/identity-platform/reference-error-codes
        (TokenRefusal("invalid_grant", "AADSTS50076: Due to a configuration change …", (50076,)), R.REAUTH),
        (TokenRefusal("invalid_grant", "AADSTS50079: … required to use multifactor …", (50079,)), R.REAUTH),
        (
            TokenRefusal(
                "invalid_grant",
                "AADSTS70043: The refresh token has expired or is invalid due to sign-in "
                "frequency checks by conditional access.",
            ),
            R.REAUTH,
        ),
        (TokenRefusal("invalid_grant", "AADSTS700082: The refresh token has expired due to inactivity."), R.REAUTH),
        (TokenRefusal("invalid_grant", "AADSTS50057: The user account is disabled.", (50057,)), R.DEACTIVATED),
        (TokenRefusal("invalid_grant", "AADSTS50034: The user account does not exist.", (50034,)), R.DEACTIVATED),
        (
            TokenRefusal("invalid_grant", "AADSTS50173: The provided grant has expired due to it being revoked"),
            R.DEACTIVATED,
        ),
        (TokenRefusal("invalid_grant", "AADSTS9999999: something new", suberror="basic_action"), R.REAUTH),
        # OpenID Connect Core §3.1.2.6
        (TokenRefusal("interaction_required"), R.REAUTH),
        (TokenRefusal("login_required"), R.REAUTH),
        # https://developers.google.com/identity/protocols/oauth2#expiration: one answer for many causes
        (TokenRefusal("invalid_grant", "Token has been expired or revoked."), R.UNCONFIRMED),
        # keycloak TokenManager.validateToken; auth0 (auth0-spa-js#1525); okta
        (TokenRefusal("invalid_grant", "User disabled"), R.DEACTIVATED),
        (TokenRefusal("invalid_grant", "user is blocked", status=403), R.DEACTIVATED),
        (TokenRefusal("invalid_grant", "The refresh token is invalid or expired."), R.DEACTIVATED),
        (TokenRefusal("invalid_grant"), R.DEACTIVATED),
        (TokenRefusal("invalid_grant", "Refresh token reuse detected; the token family is revoked."), R.REUSE),
        # dex v2.45.1 server/refreshhandlers.go answers a dead refresh token with invalid_request
        (
            TokenRefusal("invalid_request", "Refresh token is invalid or has already been claimed by another client."),
            R.DEACTIVATED,
        ),
        (TokenRefusal("invalid_request", "Refresh token expired."), R.DEACTIVATED),
        (TokenRefusal("invalid_request", "Missing refresh token."), None),
        (TokenRefusal("invalid_client", "Client authentication failed"), None),
        (TokenRefusal("server_error"), None),
    ],
)
def test_refusal_is_classified_as_documented(refusal: TokenRefusal, kind: RefusalKind | None) -> None:
    """Each documented provider answer maps to what it means for the link."""
    assert classify(refusal) == kind


def test_entra_codes_come_from_error_codes_before_the_description() -> None:
    """`error_codes` wins; without it the AADSTS numbers in the description are read."""
    assert entra_codes(TokenRefusal("invalid_grant", "AADSTS50076: x", (50079,))) == (50079,)
    assert entra_codes(TokenRefusal("invalid_grant", "AADSTS50076: x; also AADSTS70043")) == (50076, 70043)


def test_a_reauth_code_wins_when_entra_names_both_kinds() -> None:
    """When Entra names both kinds, a new sign-in is what the user can do, so REAUTH is chosen."""
    assert classify(TokenRefusal("invalid_grant", "", (50057, 50076))) is R.REAUTH


def test_hostile_description_is_classified_in_linear_time() -> None:
    """A megabyte of AADSTS-looking text is read only up to its first 512 characters."""
    refusal = TokenRefusal("invalid_grant", "AADSTS" * 200_000)
    assert classify(refusal) is R.DEACTIVATED
    assert len(refusal.summary()) <= 200
