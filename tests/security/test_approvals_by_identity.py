"""Approvals belong to people (IdP issuer + subject), not to Slack accounts: issue 10, item 5.

Everything goes through the real bot on loopback: links are made by the whole sign-in with the dev IdP (`/access
link` → /oauth/start → IdP login form → /oauth/callback), votes are Slack-signed `block_actions` clicks. The dev IdP's
Alice has two Slack accounts with her email (SLACK_ALICE and SLACK_ALICE_TWIN), so she can move her link between them
as any user can, by signing in again from the other account.

Sources the emulators follow here: a person is the pair (`iss`, `sub`) — "the only Claims that an RP can rely upon as
a stable identifier for the End-User" (OpenID Connect Core 1.0, section 5.7); a new ID token carries the groups the
IdP holds at that moment (the dev IdP's `set_groups`, as Keycloak's group-membership mapper and Okta's groups claim
do); a click arrives as a signed `block_actions` payload and is answered at its `response_url`
(docs.slack.dev/reference/interaction-payloads/block_actions-payload,
docs.slack.dev/interactivity/handling-user-interaction).
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from accessbot_emulators.rancher import RancherEmulator
from accessbot_emulators.slack import block_actions_payload, interaction_body
from bot.core import audit_actions
from bot.core.model import Grant, GrantState
from bot.slack import grant_blocks as gb
from tests import factories
from tests.conftest import APPROVALS, BOT_KEY, SLACK_ALICE, SLACK_ALICE_TWIN, SLACK_BOB, RunningBot, RunningIdP
from tests.slack.test_identity import sign_in

MakeBot = Callable[..., contextlib.AbstractContextManager[RunningBot]]
CAROL = "U0CAROL001"  # a second approver, linked through the storage port (the dev IdP has no third sre account)
POLICY = {
    "request_ttl": "1h",
    "rules": [
        {
            "name": "prod-two-approvers",
            "groups": ["engineering"],
            "projects": ["prod-eu/checkout"],
            "roles": ["project-member"],
            "max_duration": "4h",
            "approval": {"groups": ["sre"], "count": 2},
        },
        {
            "name": "prod-one-approver",  # Alice's group sre owns staging-eu: no grant is needed there (issue 11)
            "groups": ["engineering"],
            "projects": ["prod-eu/payments"],
            "roles": ["project-member"],
            "max_duration": "4h",
            "approval": {"groups": ["sre"], "count": 1},
        },
    ],
}


@pytest.fixture
def abot(make_bot: MakeBot, idp: RunningIdP, rancher: RancherEmulator) -> Iterator[RunningBot]:
    """A bot on the dev IdP and the Rancher emulator, with one two-approver and one one-approver rule."""
    rancher.reset()
    with make_bot(
        oidc_issuer=idp.url, rancher_url=rancher.url, rancher_token=BOT_KEY, overrides={"policy": POLICY}
    ) as running:
        yield running


async def link(bot: RunningBot, slack_user: str, username: str) -> None:
    """Link a Slack account to a dev-IdP account through the whole sign-in over HTTP."""
    async with httpx.AsyncClient(timeout=5) as browser:
        _, page = await sign_in(bot, browser, slack_user, username)
    assert page.status_code == 200, page.text


def click(bot: RunningBot, user: str, grant_id: str, action: str = gb.APPROVE) -> Any:
    """Click Approve (or Deny) on a request's card as `user`; return what Slack was answered at response_url."""
    key = uuid.uuid4().hex[:10]
    payload = block_actions_payload(
        user, action, grant_id, response_url=bot.slack.response_url(key), channel_id=APPROVALS
    )
    assert bot.post_signed(interaction_body(payload)).status_code == 200
    return bot.slack.wait_for(lambda: (bot.slack.responses(key) or [None])[-1])


def grant_of(bot: RunningBot, slack_user: str) -> Grant:
    """The one grant a Slack account asked for, read through a second connection."""
    store = bot.store()
    try:
        (grant,) = store.grants.find(slack_user=slack_user)
        return grant
    finally:
        store.database.close()


def request(bot: RunningBot, slack_user: str, target: str) -> Grant:
    """`/access request TARGET project-member …` as `slack_user`; the request waits for approvers."""
    reply = bot.ask(slack_user, f"request {target} project-member for 1h because release")
    assert "approval" in reply.text, reply.text
    grant = grant_of(bot, slack_user)
    assert grant.state is GrantState.REQUESTED
    return grant


async def test_one_person_cannot_vote_twice_by_moving_the_link(abot: RunningBot) -> None:
    """Alice approves, moves her link to her second Slack account and clicks again: one vote, still pending."""
    await link(abot, SLACK_BOB, "bob")
    await link(abot, SLACK_ALICE, "alice")
    grant = request(abot, SLACK_BOB, "prod-eu/checkout")
    first = click(abot, SLACK_ALICE, grant.id)
    assert first.replace_original, first.text
    await link(abot, SLACK_ALICE_TWIN, "alice")  # the link moves: the same issuer and subject, another Slack account
    again = click(abot, SLACK_ALICE_TWIN, grant.id)
    assert not again.replace_original
    assert "already decided" in (again.text or "")
    after = grant_of(abot, SLACK_BOB)
    assert after.state is GrantState.REQUESTED
    assert [(a.approver, a.subject) for a in after.approvals] == [(SLACK_ALICE, "sub-alice")]


async def test_the_twin_account_cannot_approve_its_own_persons_request(abot: RunningBot, idp: RunningIdP) -> None:
    """A request still open when its person's link sits on a twin account cannot be approved from that twin.

    Moving a link withdraws the old account's requests (next test); this is the second wall: even with the request
    still open (the gap the old code had, set up here through the storage port), self-approval is compared by
    subject, not by Slack account.
    """
    await link(abot, SLACK_ALICE, "alice")
    grant = request(abot, SLACK_ALICE, "prod-eu/payments")
    store = abot.store()
    try:
        store.links.revoke(SLACK_ALICE, int(time.time()), "moved (the gap)")
        factories.link(
            store.links, SLACK_ALICE_TWIN, "sub-alice", ["engineering", "sre"], now=int(time.time()), issuer=idp.url
        )
    finally:
        store.database.close()
    answer = click(abot, SLACK_ALICE_TWIN, grant.id)
    assert "cannot approve your own request" in (answer.text or "")
    after = grant_of(abot, SLACK_ALICE)
    assert after.state is GrantState.REQUESTED
    assert after.approvals == ()


@pytest.mark.parametrize("lapse", ["unlinked", "left the approver group"])
async def test_an_earlier_approval_that_lapsed_is_not_counted(abot: RunningBot, idp: RunningIdP, lapse: str) -> None:
    """Alice approves, then is unlinked or leaves `sre`; Carol's approval is then the only one that counts."""
    await link(abot, SLACK_BOB, "bob")
    await link(abot, SLACK_ALICE, "alice")
    store = abot.store()
    try:
        factories.link(store.links, CAROL, "sub-carol", ["sre"], now=int(time.time()), issuer=idp.url)
    finally:
        store.database.close()
    grant = request(abot, SLACK_BOB, "prod-eu/checkout")
    click(abot, SLACK_ALICE, grant.id)
    if lapse == "unlinked":
        assert "unlinked" in abot.ask(SLACK_ALICE, "unlink").text.lower()
    else:
        idp.idp.set_groups("alice", ["engineering"])  # the IdP drops her from sre; signing in again brings it over
        await link(abot, SLACK_ALICE, "alice")
    card = click(abot, CAROL, grant.id)
    after = grant_of(abot, SLACK_BOB)
    assert after.state is GrantState.REQUESTED
    shown = json.dumps(card.blocks)
    assert "1/2 approvals" in shown, shown
    assert "no longer counts" in shown
    (last,) = [e for e in abot.audit(audit_actions.GRANT_APPROVED) if e.actor == CAROL]
    assert (last.details["approvals"], last.details["lapsed"], last.details["final"]) == (1, 1, False)


async def test_moving_a_link_withdraws_the_old_accounts_requests_in_the_same_transaction(abot: RunningBot) -> None:
    """Alice's open request is withdrawn before her link lands on the twin account: the audit shows no gap."""
    await link(abot, SLACK_ALICE, "alice")
    grant = request(abot, SLACK_ALICE, "prod-eu/payments")
    await link(abot, SLACK_ALICE_TWIN, "alice")
    assert grant_of(abot, SLACK_ALICE).state is GrantState.WITHDRAWN  # already, with nothing left to wait for
    store = abot.store()
    try:
        events = list(store.audit.events())
    finally:
        store.database.close()
    withdrawn = next(
        e for e in events if e.action == audit_actions.GRANT_WITHDRAWN and e.details.get("grant_id") == grant.id
    )
    twin_linked = next(e for e in events if e.action == audit_actions.LINK_REPLACED and e.target == SLACK_ALICE_TWIN)
    assert withdrawn.id < twin_linked.id
    answer = click(abot, SLACK_ALICE_TWIN, grant.id)
    assert "already withdrawn" in (answer.text or "")
