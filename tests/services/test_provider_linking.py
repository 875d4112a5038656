"""Linking and refreshing on real providers' terms, through the wired bot and the dev IdP's personalities:
re-link needed, unmonitored links, the principal claim, the email_verified policy, and groups that are unknown,
empty, from Graph or from a display name (the providers' behaviour: accessbot_emulators/idp/personalities.py)."""

from __future__ import annotations

import copy
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from accessbot_emulators.idp.claims import entra_group_id
from accessbot_emulators.rancher import RancherEmulator
from accessbot_emulators.slack import SlackEmulator
from bot.core import audit_actions
from bot.core.errors import NotLinked
from bot.core.model import GrantState, LinkStatus
from bot.demo import botconfig
from bot.services.identity_sync import RefreshOutcome
from bot.services.linking import Failure
from bot.services.offboarding import LinkEnding, Offboarding
from bot.slack.notices import RELINK_ACTION
from tests.personas import ACCOUNTS, MANY_GROUPS, persona_server
from tests.provider_rig import ALICE, CAROL, Rig, Server, rig_for

__all__ = ["persona_server"]
SECURITY = botconfig.CHANNELS["security"]


@pytest.fixture
def env(persona_server: Server, slack: SlackEmulator, rancher: RancherEmulator, tmp_path: Path) -> dict[str, Any]:
    """What rig_for needs besides the personality."""
    return {"persona_server": persona_server, "slack": slack, "rancher": rancher, "tmp_path": tmp_path}


async def _grant(rig: Rig) -> str:
    grant = (
        await rig.bot.grants.requests.request(ALICE, "dev-eu/payments", "project-member", timedelta(hours=1))
    ).grant
    assert grant is not None
    return grant.id


def _action_ids(rig: Rig, user: str) -> set[str]:
    """The action ids of every button queued for a DM to `user`."""
    found: set[str] = set()
    for message in rig.bot.storage.outbox.due(2**62, limit=1000):
        for block in (message.payload.get("blocks") or []) if message.channel == user else []:
            found |= {str(e.get("action_id")) for e in block.get("elements", []) if isinstance(e, dict)}
    return found


# --- re-link needed ------------------------------------------------------------------------------------------


async def test_sign_in_frequency_asks_for_a_new_sign_in_and_keeps_the_grants(env: dict[str, Any]) -> None:
    """AADSTS70043: the link waits for a new sign-in; the user gets a DM with a Link button, security a post."""
    async with rig_for("entra", **env) as rig:
        assert (await rig.link()).ok
        grant = await _grant(rig)
        rig.idp.account_event("alice", "sign_in_frequency")
        assert await rig.bot.identity_sync.refresh_one(ALICE) is RefreshOutcome.RELINK
        assert (rig.status(), rig.state(grant)) == (LinkStatus.RELINK, GrantState.ACTIVE)
        assert any("sign in again" in t for t in rig.queued(ALICE))
        assert RELINK_ACTION in _action_ids(rig, ALICE)
        assert any("wants" in t and "sign in again" in t for t in rig.queued(SECURITY))
        info = rig.bot.linking.whoami(ALICE)
        assert info.relink_by == rig.clock.now() + 3600
        with pytest.raises(NotLinked, match="sign in again"):
            await rig.bot.grants.requests.request(ALICE, "dev-eu/checkout", "project-member", timedelta(hours=1))
        assert not rig.audit(audit_actions.USER_DEACTIVATED)


async def test_signing_in_again_restores_the_link_and_keeps_the_grants(env: dict[str, Any]) -> None:
    """After a new sign-in the link is active again; the grants were never touched."""
    async with rig_for("entra", **env) as rig:
        assert (await rig.link()).ok
        grant = await _grant(rig)
        rig.idp.account_event("alice", "mfa_required")
        assert await rig.bot.identity_sync.refresh_one(ALICE) is RefreshOutcome.RELINK
        relinked = await rig.link()
        assert relinked.ok
        assert relinked.relinked
        assert (rig.status(), rig.state(grant)) == (LinkStatus.ACTIVE, GrantState.ACTIVE)
        assert await rig.bot.identity_sync.refresh_one(ALICE) is RefreshOutcome.REFRESHED


async def test_no_new_sign_in_before_the_grace_ends_revokes_link_and_grants(env: dict[str, Any]) -> None:
    """oidc.relink_grace (1h): the refresh job then revokes the link and every grant, and says so."""
    async with rig_for("entra", **env) as rig:
        assert (await rig.link()).ok
        grant = await _grant(rig)
        rig.idp.account_event("alice", "sign_in_frequency")
        await rig.bot.identity_sync.refresh_one(ALICE)
        rig.clock.value += 3599
        assert (await rig.bot.identity_sync.refresh_all()).relinks_expired == 0
        rig.clock.value += 1
        assert (await rig.bot.identity_sync.refresh_all()).relinks_expired == 1
        assert (rig.status(), rig.state(grant)) == (LinkStatus.REVOKED, GrantState.REVOKED)
        assert rig.audit(audit_actions.LINK_RELINK_EXPIRED)
        assert any("did not sign in again" in t for t in rig.queued(SECURITY))


# --- refresh tokens, principals, email -------------------------------------------------------------------------


async def test_a_link_without_a_refresh_token_is_refused_by_default(env: dict[str, Any]) -> None:
    """Google without access_type=offline issues no refresh token: refused, plainly, and security is told why."""
    async with rig_for("google", **env, oidc={"extra_auth_params": {}}) as rig:
        result = await rig.link()
        assert result.failure is Failure.NO_REFRESH_TOKEN
        assert rig.bot.storage.links.get(ALICE) is None
        assert any("no refresh token" in t for t in rig.queued(SECURITY))


async def test_an_unmonitored_link_is_marked_when_refresh_tokens_are_optional(env: dict[str, Any]) -> None:
    """require_refresh_token false: linked, marked unmonitored in whoami, counted for /metrics and the digest."""
    oidc = {"extra_auth_params": {}, "require_refresh_token": False}
    async with rig_for("google", **env, oidc=oidc) as rig:
        assert (await rig.link()).ok
        assert not rig.bot.linking.whoami(ALICE).monitored
        assert rig.bot.storage.links.count_unmonitored() == 1
        assert any("unmonitored" in t for t in rig.queued(SECURITY))
        assert await rig.bot.identity_sync.refresh_one(ALICE) is RefreshOutcome.SKIPPED


async def test_a_missing_principal_claim_refuses_the_link(env: dict[str, Any]) -> None:
    """rancher.user_principal_claim oid on a provider without `oid`: nobody could be named in Rancher."""
    async with rig_for("okta", **env, rancher_settings={"user_principal_claim": "oid"}) as rig:
        result = await rig.link()
        assert (result.failure, result.reason) == (Failure.PRINCIPAL_MISSING, "oid")


async def test_entra_users_are_named_in_rancher_by_their_object_id(env: dict[str, Any]) -> None:
    """Rancher's azuread provider: azuread_user://<oid>, not the pairwise sub (pkg/auth/providers/azure)."""
    settings = {"auth_provider": "azuread", "user_principal_claim": "oid"}
    async with rig_for("entra", **env, rancher_settings=settings) as rig:
        assert (await rig.link()).ok
        identity = rig.bot.linking.identity(ALICE)
        oid = rig.idp.store.accounts["alice"].object_id
        assert rig.bot.deps.principals.of(identity).user_principal_id == f"azuread_user://{oid}"
        assert identity.subject != oid


async def test_keycloak_requires_a_verified_email(env: dict[str, Any]) -> None:
    """The keycloak preset requires email_verified true (an LDAP user without "Trust Email" is refused)."""
    accounts = copy.deepcopy(ACCOUNTS)
    accounts["accounts"]["alice"]["email_verified"] = False
    async with rig_for("keycloak", **env, accounts=accounts) as rig:
        assert (await rig.link()).failure is Failure.EMAIL_UNVERIFIED


async def test_authentik_links_although_its_default_mapping_says_unverified(env: dict[str, Any]) -> None:
    """authentik's default `email` mapping always says false; its preset ignores email_verified."""
    async with rig_for("authentik", **env) as rig:
        assert (await rig.link()).ok


# --- groups -------------------------------------------------------------------------------------------------------


async def test_groups_unknown_at_link_time_link_with_none_and_warn(env: dict[str, Any]) -> None:
    """Okta without the `groups` scope sends no groups claim: linked with no groups, security warned."""
    oidc = {"scopes": ["openid", "email", "profile", "offline_access"]}
    async with rig_for("okta", **env, oidc=oidc) as rig:
        assert (await rig.link()).ok
        assert rig.bot.linking.identity(ALICE).groups == ()
        assert any("could not say" in t for t in rig.queued(SECURITY))


async def test_a_missing_groups_claim_on_refresh_keeps_the_groups(env: dict[str, Any]) -> None:
    """Never "no groups": the groups stay, the grant stays, a warning goes out (once a day), the event is audited."""
    async with rig_for("entra", **env) as rig:
        assert (await rig.link()).ok
        grant = await _grant(rig)
        before = rig.bot.linking.identity(ALICE).groups
        for _ in range(2):
            rig.idp.set_next_id_token(claims={"groups": None})
            assert await rig.bot.identity_sync.refresh_one(ALICE) is RefreshOutcome.REFRESHED
        assert rig.bot.linking.identity(ALICE).groups == before
        assert rig.state(grant) is GrantState.ACTIVE
        assert len(rig.audit(audit_actions.GROUPS_UNKNOWN)) == 2
        assert sum("previous groups were kept" in t for t in rig.queued(SECURITY)) == 1


async def test_an_explicit_empty_answer_removes_every_group(env: dict[str, Any]) -> None:
    """An empty groups claim from the source that owns groups is an answer: the grant that needed one ends."""
    async with rig_for("entra", **env) as rig:
        assert (await rig.link()).ok
        grant = await _grant(rig)
        rig.idp.set_groups("alice", [])
        assert await rig.bot.identity_sync.refresh_one(ALICE) is RefreshOutcome.REFRESHED
        assert rig.bot.linking.identity(ALICE).groups == ()
        assert rig.state(grant) is GrantState.REVOKED


async def test_entra_overage_reads_the_groups_from_graph(env: dict[str, Any]) -> None:
    """Over 200 groups Entra sends an overage pointer; the entra preset asks Graph (transitiveMemberOf)."""
    async with rig_for("entra", **env) as rig:
        assert (await rig.link(CAROL, "carol")).ok
        identity = rig.bot.linking.identity(CAROL)
        assert len(identity.groups) == 1 + len(MANY_GROUPS)
        assert identity.names[entra_group_id("engineering")] == "engineering"


async def test_graph_always_gives_display_names_the_policy_can_match(env: dict[str, Any]) -> None:
    """graph.mode always: GUID groups are shown by name, and a rule naming `engineering` matches the GUID group."""
    async with rig_for("entra", **env, oidc={"graph": {"mode": "always"}}, policy_as="generic") as rig:
        assert (await rig.link()).ok
        identity = rig.bot.linking.identity(ALICE)
        assert identity.names == {entra_group_id("engineering"): "engineering", entra_group_id("sre"): "sre"}
        assert await _grant(rig)


async def test_graph_refusing_at_link_time_links_without_groups(env: dict[str, Any]) -> None:
    """Graph without GroupMember.Read.All: the groups cannot be told; the link is made, with a warning."""
    accounts = copy.deepcopy(ACCOUNTS)
    accounts["clients"][0]["graph_permissions"] = ["User.Read"]
    async with rig_for("entra", **env, accounts=accounts) as rig:
        assert (await rig.link(CAROL, "carol")).ok
        assert rig.bot.linking.identity(CAROL).groups == ()
        assert any("could not say" in t for t in rig.queued(SECURITY))


async def test_asking_a_revoked_link_to_sign_in_again_changes_nothing(env: dict[str, Any]) -> None:
    """The re-link move is a compare-and-set on an active link: an unlinked user is not asked, nothing is audited."""
    async with rig_for("entra", **env) as rig:
        assert (await rig.link()).ok
        identity = rig.bot.linking.identity(ALICE)
        await rig.bot.linking.unlink(ALICE)
        ending = LinkEnding(
            tx=rig.bot.storage.tx,
            links=rig.bot.storage.links,
            audit=rig.bot.audit,
            outbox=rig.bot.outbox,
            offboarding=Offboarding(rig.bot.grants.lifecycle),
            clock=rig.clock,
        )
        assert not ending.require_relink(identity, "AADSTS70043")
        assert rig.status() is LinkStatus.REVOKED
        assert not rig.audit(audit_actions.LINK_RELINK_REQUIRED)
