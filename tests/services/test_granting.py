"""The grant use cases against the Rancher emulator over HTTP and a real SQLite store."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from accessbot_emulators.rancher import RancherEmulator, run_emulator
from bot.adapters.rancher import RancherClient
from bot.adapters.store import open_storage
from bot.core import audit_actions
from bot.core.errors import NotAllowed, NotLinked, UserError
from bot.core.model import AuditEvent, GrantState
from bot.core.policy import ApprovalRule, Policy, Rule
from bot.core.storage import Storage
from bot.services.grants import GrantServices
from tests import factories
from tests.conftest import BOT_KEY, FakeClock

ALICE_SUB = "3f2a9c1e-5b7d-4e8a-9c0f-1a2b3c4d5e6f"  # u-x7xfihrhhs in the fixture
BOB_SUB = "8c1d7e22-0a4b-4c9e-8f3d-2b5a6c7d8e9f"  # u-kn3kwqn2hg
CAROL_SUB = "b4e9f0a1-7c2d-4e5f-9a8b-3c4d5e6f7a8b"  # u-mvd3xglko4
DAVE_SUB = "0d9c8b7a-6e5f-4d3c-2b1a-9f8e7d6c5b4a"  # no Rancher user yet
LABEL = "accessbot.io/grant"
CHANNELS = {"grants": "CGRANTS001", "approvals": "CAPPROVE01", "security": "CSECURITY1", "digest": None}

POLICY = Policy(
    rules=(
        Rule(
            name="dev-self-service",
            groups=("engineering",),
            roles=("project-member", "cluster-member"),
            max_duration=timedelta(hours=8),
            default_duration=timedelta(hours=1),
            clusters=("dev-*",),
            projects=("dev-*/*",),
            max_extensions=1,
        ),
        Rule(
            name="prod-with-approval",
            groups=("engineering",),
            roles=("project-member",),
            max_duration=timedelta(hours=4),
            default_duration=timedelta(hours=1),
            projects=("prod-*/*",),
            approval=ApprovalRule(groups=("sre",), count=1),
            require_reason=True,
            max_extensions=1,
        ),
        Rule(
            name="staging-two-approvers",
            groups=("engineering",),
            roles=("project-member",),
            max_duration=timedelta(hours=4),
            default_duration=timedelta(hours=1),
            projects=("staging-*/*",),
            approval=ApprovalRule(groups=("sre",), count=2),
        ),
        Rule(
            name="prod-break-glass",
            groups=("sre",),
            roles=("cluster-owner",),
            max_duration=timedelta(hours=1),
            default_duration=timedelta(minutes=30),
            clusters=("prod-*",),
            approval=ApprovalRule(groups=("sre",), count=1),
            require_reason=True,
            break_glass=True,
        ),
    )
)


@dataclass
class World:
    """The grant use cases under test and the real parts around them."""

    grants: GrantServices
    store: Storage
    rancher: RancherEmulator
    clock: FakeClock

    def link(self, slack_user: str, subject: str, groups: list[str]) -> None:
        """Store an identity link (test setup: the identity helper owns linking)."""
        factories.link(self.store.links, slack_user, subject, groups, now=self.clock.now())

    def tagged(self, grant_id: str) -> list[dict[str, Any]]:
        """Emulator bindings carrying the grant's tag."""
        out = []
        for kind in ("clusterRoleTemplateBinding", "projectRoleTemplateBinding"):
            out += [b for b in self.rancher.objects(kind) if (b.get("labels") or {}).get(LABEL) == grant_id]
        return out

    def audit(self, action: str) -> list[AuditEvent]:
        """Audit events of one action."""
        return [e for e in self.store.audit.events() if e.action == action]


@pytest.fixture(scope="module")
def emulator() -> Iterator[RancherEmulator]:
    """One Rancher emulator for this module (reset per test)."""
    with run_emulator() as emu:
        yield emu


@pytest.fixture
async def world(emulator: RancherEmulator, tmp_path: Path) -> AsyncIterator[World]:
    """A fresh store, a reset emulator and the use cases wired to both."""
    emulator.reset()
    emulator.configure(latency=0.0)
    store = open_storage(tmp_path / "bot.db")
    clock = FakeClock()
    client = RancherClient(emulator.url, BOT_KEY, retries=0, timeout=5)
    built = factories.build_grant_world(
        store, rancher=client, clock=clock, policy=POLICY, channels=CHANNELS, admins=frozenset({"UADMIN0001"})
    )
    w = World(built.grants, store, emulator, clock)
    w.link("U0ALICE001", ALICE_SUB, ["engineering"])
    w.link("U0BOB00001", BOB_SUB, ["sre", "engineering"])
    w.link("U0CAROL001", CAROL_SUB, ["sre"])
    w.link("U0DAVE0001", DAVE_SUB, ["engineering"])
    yield w
    await client.aclose()
    store.database.close()


async def test_self_service_grant_creates_one_tagged_binding(world: World) -> None:
    """A self-service request becomes active at once with exactly one binding tagged with the grant id."""
    outcome = await world.grants.requests.request("U0ALICE001", "dev-eu/payments", "project-member", timedelta(hours=2))
    assert outcome.status == "active", outcome.message
    grant = outcome.grant
    assert grant is not None
    assert grant.state is GrantState.ACTIVE
    bindings = world.tagged(grant.id)
    assert len(bindings) == 1
    b = bindings[0]
    assert b["name"] == f"accessbot-{grant.id}"
    assert b["projectId"] == "c-7xk2p:p-4mz8q"
    assert b["roleTemplateId"] == "project-member"
    assert b["userId"] == "u-x7xfihrhhs"
    assert b["annotations"]["accessbot.io/slack-user"] == "U0ALICE001"
    assert grant.expires_at == grant.activated_at + 7200
    assert grant.binding_id == b["id"]
    assert [e.to_state for e in world.store.grants.history(grant.id)] == ["requested", "activating", "active"]
    assert len(world.audit(audit_actions.GRANT_ACTIVATING)) == 1


async def test_user_without_rancher_user_is_bound_by_principal(world: World) -> None:
    """A user who never logged in to Rancher is bound by user principal id."""
    outcome = await world.grants.requests.request("U0DAVE0001", "dev-eu", "cluster-member", timedelta(hours=1))
    assert outcome.status == "active", outcome.message
    (binding,) = world.tagged(outcome.grant.id)  # type: ignore[union-attr]
    assert binding["userPrincipalId"] == f"genericoidc_user://{DAVE_SUB}"


async def test_standing_access_is_reported_not_duplicated(world: World) -> None:
    """A request already covered by a standing binding creates no grant and no binding."""
    outcome = await world.grants.requests.request("U0ALICE001", "dev-eu", "cluster-member", timedelta(hours=1))
    assert outcome.status == "covered"
    assert outcome.covering
    assert outcome.covering[0].id.endswith("crtb-x2v9k")
    assert world.store.grants.find(slack_user="U0ALICE001") == []


async def test_denied_request_explains_why(world: World) -> None:
    """A request no rule allows is refused naming the closest rule and the reason, audited as grant.refused."""
    world.link("U0ERIN0001", DAVE_SUB + "-erin", ["marketing"])
    outcome = await world.grants.requests.request("U0ERIN0001", "dev-eu/payments", "project-member")
    assert outcome.status == "denied"
    assert "dev-self-service" in outcome.message
    assert "not in group engineering" in outcome.message
    assert world.audit(audit_actions.GRANT_REFUSED)[-1].outcome == "denied"
    assert world.audit(audit_actions.GRANT_DENIED) == []


async def test_request_over_the_maximum_names_the_limit(world: World) -> None:
    """Asking for 12h under an 8h rule is refused with the 8h maximum named."""
    outcome = await world.grants.requests.request(
        "U0ALICE001", "dev-eu/payments", "project-member", timedelta(hours=12)
    )
    assert outcome.status == "denied"
    assert "12h is over the 8h maximum of rule dev-self-service" in outcome.message


async def test_approval_flow_with_a_second_linked_user(world: World) -> None:
    """A prod request waits for an SRE; Bob's approval activates it and updates the approvals message."""
    outcome = await world.grants.requests.request(
        "U0ALICE001", "prod-eu/checkout", "project-member", timedelta(hours=1), "INC-42 debugging"
    )
    assert outcome.status == "pending"
    grant = outcome.grant
    assert grant is not None
    assert world.tagged(grant.id) == []
    assert world.store.outbox.get(f"approval:{grant.id}:post") is not None
    world.clock.value += 900  # Bob decides a quarter of an hour later
    decided = await world.grants.approvals.decide(grant.id, "U0BOB00001", "approve")
    assert decided.status == "approved"
    assert decided.grant.state is GrantState.ACTIVE
    assert decided.grant.activated_at == grant.requested_at + 900
    assert decided.grant.expires_at == grant.requested_at + 900 + 3600  # time starts at activation
    assert len(world.tagged(grant.id)) == 1
    update = world.store.outbox.get(f"approval:{grant.id}:approved:1")
    assert update is not None
    assert update.kind == "update"
    assert world.store.outbox.get(f"dm:{grant.id}:approved") is not None


async def test_self_approval_is_refused(world: World) -> None:
    """Bob (an SRE) cannot approve his own request when the rule forbids self-approval."""
    outcome = await world.grants.requests.request("U0BOB00001", "prod-eu/checkout", "project-member", reason="deploy")
    assert outcome.grant is not None
    with pytest.raises(NotAllowed, match="cannot approve your own request"):
        await world.grants.approvals.decide(outcome.grant.id, "U0BOB00001", "approve")
    assert world.grants.directory.get(outcome.grant.id).state is GrantState.REQUESTED


async def test_two_approver_rule_needs_two_distinct_people(world: World) -> None:
    """count=2 stays requested after one approval and after a repeat click, then activates on the second person."""
    outcome = await world.grants.requests.request("U0ALICE001", "staging-eu/payments", "project-member")
    gid = outcome.grant.id  # type: ignore[union-attr]
    first = await world.grants.approvals.decide(gid, "U0BOB00001", "approve")
    assert first.status == "recorded"
    again = await world.grants.approvals.decide(gid, "U0BOB00001", "approve")
    assert again.status == "unchanged"
    assert world.grants.directory.get(gid).state is GrantState.REQUESTED
    second = await world.grants.approvals.decide(gid, "U0CAROL001", "approve")
    assert second.status == "approved"
    assert second.grant.state is GrantState.ACTIVE
    assert len(world.tagged(gid)) == 1
    assert len(world.audit(audit_actions.GRANT_APPROVED)) == 2


async def test_deny_ends_the_request_and_a_late_approve_changes_nothing(world: World) -> None:
    """A denial closes the request; a later approval click is a no-op and no binding appears."""
    outcome = await world.grants.requests.request("U0ALICE001", "prod-eu/checkout", "project-member", reason="look")
    gid = outcome.grant.id  # type: ignore[union-attr]
    denied = await world.grants.approvals.decide(gid, "U0CAROL001", "deny", "not now")
    assert denied.status == "denied"
    late = await world.grants.approvals.decide(gid, "U0BOB00001", "approve")
    assert late.status == "unchanged"
    assert world.grants.directory.get(gid).state is GrantState.DENIED
    assert world.tagged(gid) == []


async def test_extend_within_and_beyond_the_caps(world: World) -> None:
    """One extension within max_duration works; a second (max_extensions=1) and one past the max are refused."""
    outcome = await world.grants.requests.request("U0ALICE001", "dev-eu/payments", "project-member", timedelta(hours=2))
    gid = outcome.grant.id  # type: ignore[union-attr]
    with pytest.raises(UserError, match="over the 8h maximum"):
        await world.grants.extensions.extend("U0ALICE001", gid, timedelta(hours=7))
    extended = await world.grants.extensions.extend("U0ALICE001", gid, timedelta(hours=1))
    assert extended.status == "extended"
    assert extended.grant.expires_at == extended.grant.activated_at + 3 * 3600  # type: ignore[operator]
    with pytest.raises(UserError, match="already extended once"):
        await world.grants.extensions.extend("U0ALICE001", gid, timedelta(minutes=30))
    with pytest.raises(NotAllowed):
        await world.grants.extensions.extend("U0BOB00001", gid, timedelta(minutes=30))


async def test_extension_needs_reapproval_when_the_rule_needs_approval(world: World) -> None:
    """Extending an approved grant waits for an approver, then adds the time once."""
    outcome = await world.grants.requests.request("U0ALICE001", "prod-eu/checkout", "project-member", reason="INC-1")
    gid = outcome.grant.id  # type: ignore[union-attr]
    await world.grants.approvals.decide(gid, "U0BOB00001", "approve")
    before = world.grants.directory.get(gid).expires_at
    pending = await world.grants.extensions.extend("U0ALICE001", gid, timedelta(minutes=30))
    assert pending.status == "pending"
    assert world.grants.directory.get(gid).expires_at == before
    done = await world.grants.extensions.decide_extension(f"{gid}:0", "U0CAROL001", "approve")
    assert done.status == "extended"
    again = await world.grants.extensions.decide_extension(f"{gid}:0", "U0BOB00001", "approve")
    assert again.status == "unchanged"
    assert world.grants.directory.get(gid).expires_at == before + 1800  # type: ignore[operator]


async def test_early_revoke_deletes_the_binding(world: World) -> None:
    """The holder's revoke deletes the tagged binding and ends the grant as revoked."""
    outcome = await world.grants.requests.request("U0ALICE001", "dev-eu/payments", "project-member")
    gid = outcome.grant.id  # type: ignore[union-attr]
    with pytest.raises(NotAllowed):
        await world.grants.lifecycle.revoke_by("U0DAVE0001", gid)
    grant = await world.grants.lifecycle.revoke_by("U0ALICE001", gid)
    assert grant.state is GrantState.REVOKED
    assert [b for b in world.tagged(gid) if not b.get("removed")] == []
    assert world.audit(audit_actions.GRANT_REVOKED)[-1].details


async def test_rancher_failure_during_activation_is_finished_later(world: World) -> None:
    """A 503 on create leaves the grant activating with no untracked binding; finish_activation completes it."""
    world.rancher.fail_next("roletemplatebindings", 503, count=1, method="POST")
    outcome = await world.grants.requests.request("U0ALICE001", "dev-eu/payments", "project-member")
    grant = outcome.grant
    assert outcome.status == "activating"
    assert grant is not None
    assert grant.state is GrantState.ACTIVATING
    assert world.tagged(grant.id) == []
    done = await world.grants.lifecycle.finish_activation(grant)
    assert done.state is GrantState.ACTIVE
    assert len(world.tagged(grant.id)) == 1
    again = await world.grants.lifecycle.finish_activation(done)
    assert again == done


async def test_finish_activation_adopts_a_binding_made_before_a_crash(world: World) -> None:
    """When the binding was created but the grant not marked active, finishing adopts it instead of making another."""
    world.rancher.fail_next("roletemplatebindings", 503, count=1, method="POST")
    outcome = await world.grants.requests.request("U0ALICE001", "dev-eu/payments", "project-member")
    grant = outcome.grant
    assert grant is not None
    made = world.rancher.add_binding(
        "prtb",
        name=f"accessbot-{grant.id}",
        projectId="c-7xk2p:p-4mz8q",
        roleTemplateId="project-member",
        userId="u-x7xfihrhhs",
        labels={LABEL: grant.id},
    )
    done = await world.grants.lifecycle.finish_activation(grant)
    assert done.binding_id == made["id"]
    assert len(world.tagged(grant.id)) == 1


async def test_break_glass_is_announced_with_approver_mentions(world: World) -> None:
    """A break-glass request activates at once and is posted to approvals and security mentioning linked SREs."""
    outcome = await world.grants.requests.request(
        "U0BOB00001", "prod-eu", "cluster-owner", timedelta(minutes=30), "prod down", break_glass=True
    )
    assert outcome.status == "active", outcome.message
    for channel in ("approvals", "security"):
        msg = world.store.outbox.get(f"breakglass:{outcome.grant.id}:{channel}")  # type: ignore[union-attr]
        assert msg is not None
        assert "<@U0BOB00001>" in str(msg.payload["text"])
        assert "<@U0CAROL001>" in str(msg.payload["text"])
        assert "<@U0ALICE001>" not in str(msg.payload["text"])


async def test_offboarding_revokes_grants_and_closes_requests(world: World) -> None:
    """revoke_all_for_user revokes active grants and withdraws pending requests (its own outcome, not a denial)."""
    active = await world.grants.requests.request("U0ALICE001", "dev-eu/payments", "project-member")
    pending = await world.grants.requests.request("U0ALICE001", "prod-eu/checkout", "project-member", reason="x")
    n = await world.grants.lifecycle.revoke_all_for_user("U0ALICE001", reason="offboarded")
    assert n == 2
    assert world.grants.directory.get(active.grant.id).state is GrantState.REVOKED  # type: ignore[union-attr]
    assert world.grants.directory.get(pending.grant.id).state is GrantState.WITHDRAWN  # type: ignore[union-attr]
    actions = [e.action for e in world.store.audit.events()]
    assert "grant.withdrawn" in actions
    assert "grant.denied" not in actions


async def test_removed_group_revokes_grants_that_depended_on_it(world: World) -> None:
    """Grants obtained through a group the user lost are revoked; others stay."""
    outcome = await world.grants.requests.request("U0ALICE001", "dev-eu/payments", "project-member")
    assert await world.grants.lifecycle.revoke_for_removed_groups("U0ALICE001", ["sre"]) == 0
    world.link("U0ALICE001", ALICE_SUB, [])
    assert await world.grants.lifecycle.revoke_for_removed_groups("U0ALICE001", ["engineering"]) == 1
    assert world.grants.directory.get(outcome.grant.id).state is GrantState.REVOKED  # type: ignore[union-attr]


async def test_undecided_request_expires(world: World) -> None:
    """A request nobody decided becomes expired_request after request_ttl and the approvals message says so."""
    outcome = await world.grants.requests.request("U0ALICE001", "prod-eu/checkout", "project-member", reason="x")
    gid = outcome.grant.id  # type: ignore[union-attr]
    assert await world.grants.approvals.expire_requests(world.clock.now() + 3599) == 0
    assert await world.grants.approvals.expire_requests(world.clock.now() + 3600) == 1
    assert world.grants.directory.get(gid).state is GrantState.EXPIRED_REQUEST
    assert world.store.outbox.get(f"approval:{gid}:expired_request:0") is not None


async def test_expiry_warning_is_sent_once(world: World) -> None:
    """warn_expiring DMs the holder once within the lead time."""
    outcome = await world.grants.requests.request("U0ALICE001", "dev-eu/payments", "project-member", timedelta(hours=1))
    expires = outcome.grant.expires_at  # type: ignore[union-attr]
    assert await world.grants.lifecycle.warn_expiring(expires - 601, 600) == 0
    assert await world.grants.lifecycle.warn_expiring(expires - 600, 600) == 1
    assert await world.grants.lifecycle.warn_expiring(expires - 300, 600) == 0


async def test_interrupted_activation_of_an_offboarded_user_fails_and_leaves_no_binding(world: World) -> None:
    """finish_activation marks FAILED (and removes a half-made binding) when the requester is no longer linked."""
    world.rancher.fail_next("roletemplatebindings", 503, count=1, method="POST")
    outcome = await world.grants.requests.request("U0ALICE001", "dev-eu/payments", "project-member")
    grant = outcome.grant
    assert grant is not None
    world.rancher.add_binding(
        "prtb",
        name=f"accessbot-{grant.id}",
        projectId="c-7xk2p:p-4mz8q",
        roleTemplateId="project-member",
        userId="u-x7xfihrhhs",
        labels={LABEL: grant.id},
    )
    world.store.links.revoke("U0ALICE001", world.clock.now(), "test")
    done = await world.grants.lifecycle.finish_activation(grant)
    assert done.state is GrantState.FAILED
    assert "no longer linked" in done.failure
    assert [b for b in world.tagged(grant.id) if not b.get("removed")] == []


async def test_concurrent_identical_requests_make_one_grant(world: World) -> None:
    """Two identical requests racing each other create one grant and one binding; the other is told it exists."""
    import asyncio

    first, second = await asyncio.gather(
        world.grants.requests.request("U0ALICE001", "dev-eu/payments", "project-member"),
        world.grants.requests.request("U0ALICE001", "dev-eu/payments", "project-member"),
    )
    assert sorted([first.status, second.status]) == ["active", "duplicate"]
    (grant,) = world.store.grants.find(slack_user="U0ALICE001")
    assert len(world.tagged(grant.id)) == 1


async def test_unlinked_approver_is_refused(world: World) -> None:
    """Someone without an active link cannot approve, even when named as admin."""
    outcome = await world.grants.requests.request("U0ALICE001", "prod-eu/checkout", "project-member", reason="x")
    with pytest.raises(NotLinked):
        await world.grants.approvals.decide(outcome.grant.id, "UADMIN0001", "approve")  # type: ignore[union-attr]
    world.store.links.revoke("U0BOB00001", world.clock.now(), "test")
    with pytest.raises(NotLinked):
        await world.grants.approvals.decide(outcome.grant.id, "U0BOB00001", "approve")  # type: ignore[union-attr]
    assert world.grants.directory.get(outcome.grant.id).state is GrantState.REQUESTED  # type: ignore[union-attr]


async def test_an_extension_names_the_target_in_its_audit_event_and_messages(world: World) -> None:
    """After `extend`, the audit target and the grants-channel edit read names (dev-eu/payments), not ids."""
    outcome = await world.grants.requests.request("U0ALICE001", "dev-eu/payments", "project-member", timedelta(hours=2))
    gid = outcome.grant.id  # type: ignore[union-attr]
    await world.grants.extensions.extend("U0ALICE001", gid, timedelta(hours=1))
    (event,) = [e for e in world.store.audit.events() if e.action == "grant.extended"]
    assert event.target == "dev-eu/payments"
    edit = world.store.outbox.get(f"grant:{gid}:active:1:0")
    assert edit is not None
    assert "dev-eu/payments" in str(edit.payload["text"])
    assert "c-7xk2p" not in str(edit.payload["text"])


async def test_a_too_long_ticket_is_refused_with_its_limit(world: World) -> None:
    """A 65-character ticket is refused naming the 64-character limit; nothing is stored."""
    with pytest.raises(UserError, match=r"65 characters long \(at most 64\)"):
        await world.grants.requests.request("U0ALICE001", "dev-eu/payments", "project-member", ticket="T" * 65)
    assert world.store.grants.find(slack_user="U0ALICE001") == []
