"""The offboarding tables of docs/providers/*.md, one row per test id: what happens at the IdP, and what the bot
does at the next refresh (the providers' answers and their sources: accessbot_emulators/idp/personalities.py)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from accessbot_emulators.rancher import RancherEmulator
from accessbot_emulators.slack import SlackEmulator
from bot.core.model import GrantState, LinkStatus
from bot.demo import botconfig
from bot.services.identity_sync import RefreshOutcome
from tests.personas import persona_server
from tests.provider_rig import ALICE, Server, rig_for

__all__ = ["persona_server"]

REVOKED, RELINK, REFRESHED, RETRY = (
    RefreshOutcome.REVOKED,
    RefreshOutcome.RELINK,
    RefreshOutcome.REFRESHED,
    RefreshOutcome.RETRY,
)
TABLE: list[tuple[str, str, RefreshOutcome]] = [
    # Entra: reference-error-codes (AADSTS50057 disabled, 50034 deleted, 50173 revoked by a password reset,
    # 50079 MFA registration after an MFA reset, 70043 sign-in frequency, 50076 MFA required)
    ("entra", "disabled", REVOKED),
    ("entra", "deleted", REVOKED),
    ("entra", "password_reset", REVOKED),
    ("entra", "mfa_reset", RELINK),
    ("entra", "mfa_required", RELINK),
    ("entra", "sign_in_frequency", RELINK),
    # Google: one answer for every cause (oauth2#expiration); the Directory says which (users.get)
    ("google", "disabled", REVOKED),
    ("google", "deleted", REVOKED),
    ("google", "token_limit", RELINK),
    ("google", "sessions_revoked", RELINK),
    ("google", "password_reset", REFRESHED),  # ends only refresh tokens with Gmail scopes
    ("google", "mfa_reset", REFRESHED),  # not documented to end refresh tokens
    # Okta: invalid_grant for a deactivated, suspended or deleted user; resets are not documented to end tokens
    ("okta", "disabled", REVOKED),
    ("okta", "deleted", REVOKED),
    ("okta", "password_reset", REFRESHED),
    ("okta", "mfa_reset", REFRESHED),
    # Keycloak TokenManager: "User disabled", "Invalid refresh token", "Session not active"
    ("keycloak", "disabled", REVOKED),
    ("keycloak", "deleted", REVOKED),
    ("keycloak", "sessions_revoked", REVOKED),
    ("keycloak", "password_reset", REFRESHED),
    ("keycloak", "mfa_reset", REFRESHED),
    # Auth0: 403 "user is blocked"; a deleted user's token is unknown
    ("auth0", "disabled", REVOKED),
    ("auth0", "deleted", REVOKED),
    ("auth0", "password_reset", REFRESHED),
    ("auth0", "mfa_reset", REFRESHED),
    # Dex: a user gone upstream is HTTP 500 (retried, alerted); a revoked refresh token is 400 invalid_request
    ("dex", "disabled", RETRY),
    ("dex", "deleted", RETRY),
    ("dex", "sessions_revoked", REVOKED),
    ("dex", "password_reset", REFRESHED),
    ("dex", "mfa_reset", REFRESHED),
    # authentik: invalid_grant for a deactivated or deleted user
    ("authentik", "disabled", REVOKED),
    ("authentik", "deleted", REVOKED),
    ("authentik", "password_reset", REFRESHED),
    ("authentik", "mfa_reset", REFRESHED),
]


@pytest.mark.parametrize(("name", "event", "outcome"), TABLE, ids=[f"{n}-{e}" for n, e, _ in TABLE])
async def test_offboarding_table(
    name: str,
    event: str,
    outcome: RefreshOutcome,
    persona_server: Server,
    slack: SlackEmulator,
    rancher: RancherEmulator,
    tmp_path: Path,
) -> None:
    """An event at the IdP, then a refresh: the link and the grant end as the provider page's table says."""
    async with rig_for(name, persona_server, slack, rancher, tmp_path) as rig:
        assert (await rig.link()).ok
        grant = (
            await rig.bot.grants.requests.request(ALICE, "dev-eu/payments", "project-member", timedelta(hours=1))
        ).grant
        assert grant is not None
        rig.idp.account_event("alice", event)
        assert await rig.bot.identity_sync.refresh_one(ALICE) is outcome
        expected: dict[RefreshOutcome, tuple[LinkStatus, GrantState]] = {
            REVOKED: (LinkStatus.REVOKED, GrantState.REVOKED),
            RELINK: (LinkStatus.RELINK, GrantState.ACTIVE),  # grants kept for oidc.relink_grace
            REFRESHED: (LinkStatus.ACTIVE, GrantState.ACTIVE),
            RETRY: (LinkStatus.ACTIVE, GrantState.ACTIVE),  # nothing revoked; the security channel is told
        }
        assert (rig.status(), rig.state(grant.id)) == expected[outcome]
        if outcome is RETRY:
            assert any("failed" in t for t in rig.queued(botconfig.CHANNELS["security"]))


async def test_google_without_a_directory_fails_closed_on_the_ambiguous_answer(
    persona_server: Server, slack: SlackEmulator, rancher: RancherEmulator, tmp_path: Path
) -> None:
    """Without the Directory nobody can say a dead Google token is only the token limit: the link is revoked."""
    oidc: dict[str, Any] = {"google_directory": None}
    async with rig_for("google", persona_server, slack, rancher, tmp_path, oidc=oidc) as rig:
        assert (await rig.link()).ok
        rig.idp.account_event("alice", "token_limit")
        assert await rig.bot.identity_sync.refresh_one(ALICE) is REVOKED
