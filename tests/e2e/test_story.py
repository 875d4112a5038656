"""The whole story end to end: the dev IdP, the Rancher and Slack emulators and the bot, all over HTTP on loopback.

One module-scoped run drives the story with the demo console (signed slash commands, button clicks, the IdP login
form) while time-machine moves the clock; it records what each step left behind, and each test checks one fact.
"""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
import time_machine

from bot.adapters.store import open_storage
from bot.core.digest import Digest
from bot.core.model import Grant, GrantState, Identity, LinkStatus
from bot.core.storage import Storage
from bot.demo.console import Console
from bot.demo.stack import PEOPLE, Stack, running_stack
from bot.services.jobs.digest import build_period_digest
from bot.wiring import audit_keys

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
ALICE, BOB, CAROL = (PEOPLE[name][0] for name in ("alice", "bob", "carol"))
ALICE_RANCHER_ID = "u-x7xfihrhhs"
CAROL_RANCHER_ID = "u-mvd3xglko4"
PROD_PAYMENTS = "c-m-9hb3n5kp:p-j5c2l"
DEV_CHECKOUT = "c-7xk2p:p-r2d9w"

T = TypeVar("T")


@dataclass
class Story:
    """What each step of the story left behind, for the tests to check."""

    grant_label: str = ""
    login_page: str = ""
    alice_link: Identity | None = None
    alice_list: str = ""
    request_reply: str = ""
    prod_grant: str = ""
    pending_before_restart: Grant | None = None
    pending_after_restart: Grant | None = None
    grants_after_restart: str = ""
    active_grant: Grant | None = None
    approved_bindings: list[dict[str, Any]] = field(default_factory=list)
    alice_list_after_approval: str = ""
    bindings_while_down: list[dict[str, Any]] = field(default_factory=list)
    bindings_after_start: list[dict[str, Any]] = field(default_factory=list)
    expired_grant: Grant | None = None
    expired_dm: str = ""
    carol_grant: str = ""
    carol_bindings_before: list[dict[str, Any]] = field(default_factory=list)
    carol_bindings_after: list[dict[str, Any]] = field(default_factory=list)
    carol_grant_after: Grant | None = None
    carol_link_after: Identity | None = None
    digest: Digest | None = None
    verify: subprocess.CompletedProcess[str] | None = None


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 12.0) -> T:
    """Poll `probe` until it returns something truthy; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _identity(store: Storage, slack_user: str) -> Identity | None:
    record = store.links.get(slack_user)
    return record.identity if record is not None else None


@contextlib.contextmanager
def opened(stack: Stack) -> Iterator[Storage]:
    """A second connection to the bot's database, closed after use."""
    store = open_storage(stack.config.database.reveal(), migrate=False)
    try:
        yield store
    finally:
        store.database.close()


def grant_of(stack: Stack, grant_id: str) -> Grant | None:
    """A grant as the bot stored it."""
    with opened(stack) as store:
        return store.grants.get(grant_id)


def newest_grant(stack: Stack, slack_user: str) -> Grant:
    """The newest grant of a Slack user."""
    with opened(stack) as store:
        return store.grants.find(slack_user=slack_user, limit=1)[0]


def tagged(stack: Stack, grant_id: str) -> list[dict[str, Any]]:
    """Role bindings in the Rancher emulator labelled with `grant_id` by the bot."""
    label = stack.config.rancher.grant_label
    return [
        obj
        for kind in ("clusterRoleTemplateBinding", "projectRoleTemplateBinding")
        for obj in stack.rancher.objects(kind)
        if (obj.get("labels") or {}).get(label) == grant_id
    ]


def dm_text(stack: Stack, slack_user: str) -> str:
    """Everything the bot wrote to a user's DM channel."""
    channel = stack.slack.dm_channel(slack_user)
    return "\n".join(str(m.text or "") for m in stack.slack.messages(channel))


def line_with(text: str, *needles: str) -> str:
    """The first line of `text` holding every needle (an empty string when none does)."""
    return next((line for line in text.splitlines() if all(n in line for n in needles)), "")


def reply(shown: str) -> str:
    """Only the ephemeral reply out of what a command showed (channel posts and DMs left out)."""
    block = shown.split("┌ only visible to you", 1)[-1]
    return block.split("\n└", 1)[0]


def run(console: Console, line: str) -> str:
    """Run one console line (strict: a failure raises) and return what it showed."""
    console.run_line(line)
    return "\n".join(console.transcript)


def link(console: Console, name: str) -> str:
    """`/access link` then the IdP login form, as `name`; return the browser's final page."""
    run(console, f":as {name}")
    run(console, "/access link")
    return run(console, ":login")


def tell(story: Story, stack: Stack, console: Console, traveller: Any) -> None:
    """Drive the whole story, recording each step's outcome."""
    story.grant_label = stack.config.rancher.grant_label
    # alice links and lists what she can access.
    story.login_page = link(console, "alice")
    with opened(stack) as store:
        story.alice_link = _identity(store, ALICE)
    story.alice_list = reply(run(console, "/access list"))

    # A prod project role needs an approval from sre; the bot restarts while the request waits.
    request = "/access request prod-eu/payments project-member for 1h because INC-42 debugging"
    story.request_reply = reply(run(console, request))
    grant = newest_grant(stack, ALICE)
    story.prod_grant = grant.id
    story.pending_before_restart = grant
    stack.restart_bot()
    story.pending_after_restart = grant_of(stack, grant.id)
    story.grants_after_restart = reply(run(console, "/access grants"))

    # bob links and approves from the #approvals message: a tagged binding appears in Rancher.
    link(console, "bob")
    run(console, ":click-label Approve")
    story.approved_bindings = wait_for("the approved binding", lambda: tagged(stack, grant.id))
    story.active_grant = wait_for("the grant to be active", lambda: _in_state(stack, grant.id, GrantState.ACTIVE))
    run(console, ":as alice")
    story.alice_list_after_approval = reply(run(console, "/access list"))

    # The grant expires while the bot is down; the bot revokes it as soon as it starts again.
    stack.stop_bot()
    traveller.shift(timedelta(minutes=61))
    time.sleep(0.3)
    story.bindings_while_down = tagged(stack, grant.id)
    stack.start_bot()
    wait_for("the expired binding to go", lambda: not tagged(stack, grant.id))
    story.bindings_after_start = tagged(stack, grant.id)
    story.expired_grant = wait_for("the expired state", lambda: _in_state(stack, grant.id, GrantState.EXPIRED))
    story.expired_dm = wait_for("the expiry DM", lambda: _dm_with(stack, ALICE, f"`{grant.id}` expired"))

    # carol links and takes a dev grant; disabled at the IdP, she loses it at the next refresh.
    link(console, "carol")
    run(console, "/access request dev-eu/checkout project-member for 2h")
    carol = wait_for("carol's active grant", lambda: _active_of(stack, CAROL))
    story.carol_grant = carol.id
    story.carol_bindings_before = wait_for("carol's binding", lambda: tagged(stack, carol.id))
    run(console, ":disable carol")
    traveller.shift(timedelta(minutes=1))
    story.carol_grant_after = wait_for("carol's revocation", lambda: _in_state(stack, carol.id, GrantState.REVOKED))
    story.carol_bindings_after = tagged(stack, carol.id)
    with opened(stack) as store:
        story.carol_link_after = _identity(store, CAROL)


def _in_state(stack: Stack, grant_id: str, state: GrantState) -> Grant | None:
    grant = grant_of(stack, grant_id)
    return grant if grant is not None and grant.state is state else None


def _active_of(stack: Stack, slack_user: str) -> Grant | None:
    with opened(stack) as store:
        grants = store.grants.find(slack_user=slack_user, states=(GrantState.ACTIVE,), limit=1)
    return grants[0] if grants else None


def _dm_with(stack: Stack, slack_user: str, text: str) -> str | None:
    dms = dm_text(stack, slack_user)
    return dms if text in dms else None


@pytest.fixture(scope="module")
def story() -> Story:
    """Run the story once for the module (about 10 s) and hand over what it left behind."""
    told = Story()
    with (
        time_machine.travel(datetime.now(UTC), tick=True) as traveller,
        running_stack() as stack,
        contextlib.closing(Console(stack=stack, out=io.StringIO(), settle=0.3, strict=True)) as console,
    ):
        console.traveller = traveller
        start = int(time.time()) - 1
        tell(told, stack, console, traveller)
        with opened(stack) as store:
            told.digest = build_period_digest(store, start, int(time.time()) + 1, audit_keys(stack.config))
        told.verify = subprocess.run(
            [sys.executable, "-m", "bot", "--config", str(stack.config_path), "audit", "verify"],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
            check=False,
        )
    return told


def test_alice_links_her_slack_account_through_the_idp(story: Story) -> None:
    """Linking through the dev IdP's login form stores alice's subject and groups."""
    assert "now linked to Alice Archer" in story.login_page
    assert story.alice_link is not None
    assert story.alice_link.subject == "3f2a9c1e-5b7d-4e8a-9c0f-1a2b3c4d5e6f"
    assert set(story.alice_link.groups) == {"engineering", "devs", "payments-team"}


def test_alice_lists_her_standing_access_and_where_it_comes_from(story: Story) -> None:
    """`/access list` shows alice's Rancher bindings, direct and through her groups."""
    assert "*dev-eu*" in story.alice_list
    assert "via group payments-team" in line_with(story.alice_list, "payments", "Project Owner")
    assert "direct" in line_with(story.alice_list, "checkout", "Project Member")
    assert "grant g-" not in story.alice_list


def test_prod_request_waits_for_an_sre_approval(story: Story) -> None:
    """A project role on prod is recorded as requested and the approvers are asked."""
    assert f"Request `{story.prod_grant}`" in story.request_reply
    assert "needs 1 approval;" in story.request_reply
    assert story.pending_before_restart is not None
    assert story.pending_before_restart.state is GrantState.REQUESTED
    assert story.pending_before_restart.reason == "INC-42 debugging"


def test_pending_request_survives_a_bot_restart(story: Story) -> None:
    """After a restart between request and approval the stored request is unchanged and the new bot lists it."""
    assert story.pending_after_restart == story.pending_before_restart
    line = line_with(story.grants_after_restart, f"`{story.prod_grant}`")
    assert "prod-eu/payments" in line
    assert "waiting for approval" in line


def test_bob_approval_creates_a_binding_tagged_with_the_grant(story: Story) -> None:
    """bob's Approve click makes one project binding for alice, labelled with the grant id, and records bob."""
    assert len(story.approved_bindings) == 1
    binding = story.approved_bindings[0]
    assert binding["projectId"] == PROD_PAYMENTS
    assert binding["roleTemplateId"] == "project-member"
    assert ALICE_RANCHER_ID in (binding.get("userId"), binding.get("userPrincipalId"))
    assert binding["labels"][story.grant_label] == story.prod_grant
    assert story.active_grant is not None
    assert [(a.approver, a.decision) for a in story.active_grant.approvals] == [(BOB, "approve")]


def test_alice_sees_the_approved_grant_with_time_left(story: Story) -> None:
    """alice's `/access list` shows the grant on prod-eu/payments with the time it has left."""
    assert "*prod-eu*" in story.alice_list_after_approval
    line = line_with(story.alice_list_after_approval, f"grant {story.prod_grant}")
    assert "payments" in line
    assert "Project Member" in line
    assert "left" in line
    assert "59m" in line or "1h" in line


def test_grant_expiring_while_the_bot_is_down_is_revoked_when_it_starts(story: Story) -> None:
    """The binding outlives its grant only while the bot is stopped; the start-up sweep removes it."""
    assert len(story.bindings_while_down) == 1
    assert story.bindings_after_start == []
    assert story.expired_grant is not None
    assert story.expired_grant.state is GrantState.EXPIRED


def test_alice_is_told_her_grant_expired(story: Story) -> None:
    """The holder gets a DM saying the grant expired and its binding was removed."""
    assert f"`{story.prod_grant}` expired" in story.expired_dm
    assert "was removed" in story.expired_dm


def test_carol_disabled_at_the_idp_loses_her_grant_at_the_next_refresh(story: Story) -> None:
    """Disabling carol at the IdP revokes her link and her active grant, and removes the binding."""
    assert len(story.carol_bindings_before) == 1
    assert story.carol_bindings_before[0]["projectId"] == DEV_CHECKOUT
    assert CAROL_RANCHER_ID in (
        story.carol_bindings_before[0].get("userId"),
        story.carol_bindings_before[0].get("userPrincipalId"),
    )
    assert story.carol_bindings_after == []
    assert story.carol_grant_after is not None
    assert story.carol_grant_after.state is GrantState.REVOKED
    assert story.carol_link_after is not None
    assert story.carol_link_after.status is not LinkStatus.ACTIVE


def test_digest_counts_every_step_of_the_story(story: Story) -> None:
    """The period digest counts the links, requests, approval, activations, expiry and offboarding."""
    assert story.digest is not None
    counts = {key: story.digest.counts.get(key, 0) for key in EXPECTED_COUNTS}
    assert counts == EXPECTED_COUNTS
    assert story.digest.chain_ok


EXPECTED_COUNTS = {
    "links": 3,
    "grants_requested": 2,
    "approvals": 1,
    "grants_approved": 1,
    "self_service": 1,
    "grants_activated": 2,
    "grants_expired": 1,
    "deactivations": 1,
    "revoked_early": 1,
    "grants_failed": 0,
}


def test_audit_verify_cli_says_ok_after_the_story(story: Story) -> None:
    """`accessbot audit verify` exits 0 and reports an intact chain."""
    assert story.verify is not None
    assert story.verify.returncode == 0, story.verify.stdout + story.verify.stderr
    assert story.verify.stdout.startswith("OK")
