"""The link → refresh → group change → offboarding story against every dev IdP personality, through the wired bot
(bot.wiring.build: the real OIDC client, group sources, linking, identity sync and grants), the Rancher and Slack
emulators and SQLite. The providers' behaviour and its sources: accessbot_emulators/idp/personalities.py."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from accessbot_emulators.rancher import RancherEmulator
from accessbot_emulators.slack import SlackEmulator
from bot.core import audit_actions
from bot.core.model import GrantState, LinkStatus
from bot.services.identity_sync import RefreshOutcome
from tests.personas import NAMES, persona_server
from tests.provider_rig import ALICE, Server, group_names, rig_for

__all__ = ["persona_server"]


@pytest.mark.parametrize("name", NAMES)
async def test_link_refresh_group_change_and_offboarding_on_every_personality(
    name: str, persona_server: Server, slack: SlackEmulator, rancher: RancherEmulator, tmp_path: Path
) -> None:
    """Each provider: link, two grants, a quiet refresh, a removed group ends its grant, offboarding ends the rest."""
    named = group_names(name)
    async with rig_for(name, persona_server, slack, rancher, tmp_path) as rig:
        linked = await rig.link()
        assert linked.ok, (name, linked.failure, linked.reason)
        assert {named("engineering"), named("sre")} <= set(rig.bot.linking.identity(ALICE).policy_groups)
        requests = rig.bot.grants.requests
        dev = (await requests.request(ALICE, "dev-eu/payments", "project-member", timedelta(hours=1))).grant
        glass = (
            await requests.request(ALICE, "prod-eu", "cluster-owner", timedelta(minutes=30), "INC-1", "", True)
        ).grant
        assert (rig.state(dev.id), rig.state(glass.id)) == (GrantState.ACTIVE, GrantState.ACTIVE), name

        assert await rig.bot.identity_sync.refresh_one(ALICE) is RefreshOutcome.REFRESHED
        assert rig.state(glass.id) is GrantState.ACTIVE

        rig.idp.set_groups("alice", ["engineering"])  # removed from sre at the IdP
        assert await rig.bot.identity_sync.refresh_one(ALICE) is RefreshOutcome.REFRESHED
        assert rig.state(glass.id) is GrantState.REVOKED, name
        assert rig.state(dev.id) is GrantState.ACTIVE

        # Dex keeps no account state of its own: offboarding there is revoking the user's refresh tokens
        # (a user gone upstream answers HTTP 500: see test_dex_user_gone_upstream_is_retried_and_alerted).
        rig.idp.account_event("alice", "sessions_revoked" if name == "dex" else "disabled")
        assert await rig.bot.identity_sync.refresh_one(ALICE) is RefreshOutcome.REVOKED, name
        assert rig.status() is LinkStatus.REVOKED
        assert rig.state(dev.id) is GrantState.REVOKED
        assert rig.audit(audit_actions.USER_DEACTIVATED)
