"""Grants against Rancher as its source says it behaves: standing access as Rancher widens it, binding by the real
user, refusals ending `failed` in plain words, transient failures retried until the activation timeout."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from accessbot_emulators.rancher import EmulatorSettings, RancherEmulator, run_emulator
from bot.adapters.rancher import RancherClient
from bot.adapters.store import open_storage
from bot.core import audit_actions
from bot.core.model import GrantState
from bot.core.policy import Policy, Rule
from bot.core.storage import Storage
from bot.services.grants import GrantServices
from bot.services.jobs.activations import ActivationRetries
from tests import factories
from tests.conftest import BOT_KEY, FakeClock

LOCAL_KEY = "token-x7k2m:ngq2cd9wfpxcvjcdrrdkdwrc9xfk22xcxxqckcwgmrgwfxmw94hfxx"  # local admin (user-b7k2p)
ALICE_SUB = "3f2a9c1e-5b7d-4e8a-9c0f-1a2b3c4d5e6f"
BOB_SUB = "8c1d7e22-0a4b-4c9e-8f3d-2b5a6c7d8e9f"
DAVE_SUB = "0d9c8b7a-6e5f-4d3c-2b1a-9f8e7d6c5b4a"  # never logged in to Rancher
ADMIN_SUB = "5e4d3c2b-1a09-4f8e-9d7c-6b5a4f3e2d1c"  # the admin who enabled genericoidc: user-b7k2p, not derived
ERIN_SUB = "c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f"  # a user created through the API: u-r8t2w, not derived
LABEL = "accessbot.io/grant"
CHANNELS = {"grants": "CGRANTS001", "approvals": "CAPPROVE01", "security": "CSECURITY1", "digest": None}
POLICY = Policy(
    rules=(
        Rule(
            name="self-service",
            groups=("engineering",),
            roles=("project-member", "cluster-member", "nodes-view"),
            max_duration=timedelta(hours=8),
            default_duration=timedelta(hours=1),
            clusters=("*",),
            projects=("*/*",),
        ),
    )
)


@dataclass
class World:
    """The grant use cases on one key, a store, the emulator and the activation retry job."""

    grants: GrantServices
    store: Storage
    rancher: RancherEmulator
    clock: FakeClock
    retries: ActivationRetries

    def link(self, slack_user: str, subject: str, groups: list[str]) -> None:
        """Store an identity link."""
        factories.link(self.store.links, slack_user, subject, groups, now=self.clock.now())

    def tagged(self, grant_id: str) -> list[dict[str, Any]]:
        """Emulator bindings carrying the grant's tag."""
        kinds = ("clusterRoleTemplateBinding", "projectRoleTemplateBinding")
        return [b for k in kinds for b in self.rancher.objects(k) if (b.get("labels") or {}).get(LABEL) == grant_id]

    def security(self, prefix: str) -> list[str]:
        """Keys of queued security-channel messages starting with `prefix`."""
        return factories.queued_keys(self.store, CHANNELS["security"], prefix)


@pytest.fixture(scope="module")
def emulator() -> Iterator[RancherEmulator]:
    """One emulator for the module."""
    with run_emulator(settings=EmulatorSettings()) as emu:
        yield emu


@pytest.fixture(params=[BOT_KEY], ids=["genericoidc-key"])
def key(request: pytest.FixtureRequest) -> str:
    """The API key the bot holds (tests that need the local key override this)."""
    return str(request.param)


@pytest.fixture
async def world(emulator: RancherEmulator, tmp_path: Path, key: str) -> AsyncIterator[World]:
    """A fresh store and emulator, Alice, Bob (sre), Dave and the bootstrap admin linked."""
    emulator.configure(server_version="v2.14.4", failure_rate=0.0, finalizer_delay=0.0)
    emulator.reset()
    store = open_storage(tmp_path / "bot.db")
    clock = FakeClock()
    client = RancherClient(emulator.url, key, retries=0, timeout=5)
    built = factories.build_grant_world(store, rancher=client, clock=clock, policy=POLICY, channels=CHANNELS)
    w = World(
        built.grants, store, emulator, clock, ActivationRetries(grants=store.grants, lifecycle=built.grants.lifecycle)
    )
    w.link("U0ALICE001", ALICE_SUB, ["engineering"])
    w.link("U0BOB00001", BOB_SUB, ["engineering", "sre"])
    w.link("U0DAVE0001", DAVE_SUB, ["engineering"])
    w.link("U0ADMIN001", ADMIN_SUB, ["engineering"])
    w.link("U0ERIN0001", ERIN_SUB, ["engineering"])
    yield w
    await client.aclose()
    store.database.close()


# --- standing access, as Rancher widens it ---------------------------------------------------------------------


async def test_an_owner_like_cluster_role_covers_a_project_request_and_is_named(world: World) -> None:
    """Bob's group sre holds cluster-owner on staging-eu (*/*/*, role_data.go): a project role there is covered."""
    outcome = await world.grants.requests.request("U0BOB00001", "staging-eu/payments", "project-member")
    assert outcome.status == "covered"
    assert "Cluster Owner on staging-eu via group sre" in outcome.message
    assert "covers every project of the cluster; binding c-m-4q8zt2wd:crtb-h6m3p" in outcome.message
    assert world.store.grants.find(slack_user="U0BOB00001") == []


async def test_a_role_that_inherits_the_requested_one_covers_it(world: World) -> None:
    """A standing project-lead binding (roleTemplateIds: project-member) covers a project-member request."""
    world.rancher.add_binding(
        "prtb", name="prtb-lead1", projectId="c-7xk2p:p-4mz8q", roleTemplateId="project-lead", userId="u-x7xfihrhhs"
    )
    outcome = await world.grants.requests.request("U0ALICE001", "dev-eu/payments", "project-member")
    assert outcome.status == "covered"
    assert "Project Lead on dev-eu/payments (it includes that role; binding c-7xk2p-p-4mz8q:prtb-lead1)" in (
        outcome.message
    )


async def test_an_admin_like_global_role_held_by_a_group_covers_everything(world: World) -> None:
    """Group ops-admins → Platform Admin (*/*/* + nonResourceURLs *, pkg/rbac/common.go): nothing to grant."""
    world.link("U0ALICE001", ALICE_SUB, ["engineering", "ops-admins"])
    outcome = await world.grants.requests.request("U0ALICE001", "prod-eu", "cluster-member")
    assert outcome.status == "covered"
    assert "Platform Admin everywhere (global role) via group ops-admins" in outcome.message


# --- the real user id ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", [LOCAL_KEY], ids=["local-key"])
async def test_a_user_whose_id_is_not_derived_is_bound_by_that_id(world: World) -> None:
    """Erin's user was created through the API (u-r8t2w, usermanager.go derives ids only for new principals): she
    is bound by that id; a local key could not bind her principal (local_auth_provider.go: 500)."""
    outcome = await world.grants.requests.request("U0ERIN0001", "dev-eu/payments", "project-member")
    assert outcome.status == "active", outcome.message
    (binding,) = world.tagged(outcome.grant.id)  # type: ignore[union-attr]
    assert binding["userId"] == "u-r8t2w"


async def test_the_bootstrap_admin_found_by_principal_needs_no_grant(world: World) -> None:
    """The admin who enabled genericoidc keeps user-b7k2p (not the derived id): found, and Admin covers it all."""
    outcome = await world.grants.requests.request("U0ADMIN001", "dev-eu/payments", "project-member")
    assert outcome.status == "covered"
    assert "Admin everywhere (global role) (an admin global role covers everything; binding grb-k8m2v)" in (
        outcome.message
    )


# --- refusals --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", [LOCAL_KEY], ids=["local-key"])
async def test_a_principal_the_key_cannot_resolve_fails_in_plain_words(world: World) -> None:
    """Dave never logged in; the local key answers 500 user…not found: the grant fails, Dave is told, audited."""
    outcome = await world.grants.requests.request("U0DAVE0001", "dev-eu/payments", "project-member")
    grant = outcome.grant
    assert grant is not None
    assert (outcome.status, grant.state) == ("failed", GrantState.FAILED)
    assert "you have never logged in to Rancher" in grant.failure
    assert world.tagged(grant.id) == []
    (event,) = [e for e in world.store.audit.events() if e.action == audit_actions.GRANT_FAILED]
    assert "not found" in str(event.details["rancher"])
    assert factories.queued_keys(world.store, "U0DAVE0001", f"dm:{grant.id}:failed")


@pytest.mark.parametrize("version", ["v2.11.2", "v2.12.1"])
async def test_a_project_deleted_before_the_binding_fails_the_grant(world: World, version: str) -> None:
    """Unknown project: 404 up to 2.11, 500 from 2.12 (scoped/store.go); both end `failed`, never stuck."""
    world.rancher.configure(server_version=version)
    await world.grants.directory.resolve_target("dev-eu/payments")  # the name is cached, as in production
    world.rancher.remove_object("project", "c-7xk2p:p-4mz8q")
    outcome = await world.grants.requests.request("U0ALICE001", "dev-eu/payments", "project-member")
    assert outcome.grant is not None
    assert outcome.grant.state is GrantState.FAILED
    assert outcome.grant.failure == "dev-eu/payments no longer exists in Rancher"


async def test_a_role_template_deleted_before_the_binding_fails_the_grant(world: World) -> None:
    """500 "Error getting role template" (roletemplatebinding/validator.go) is a refusal, in plain words."""
    await world.grants.directory.catalog()  # role names are cached, as in production
    world.rancher.remove_object("roleTemplate", "nodes-view")
    outcome = await world.grants.requests.request("U0ALICE001", "dev-eu", "nodes-view")
    assert outcome.grant is not None
    assert outcome.grant.state is GrantState.FAILED
    assert outcome.grant.failure == "the role nodes-view does not exist in Rancher"


# --- transient failures ----------------------------------------------------------------------------------------


async def test_a_transient_failure_is_retried_with_backoff_until_active(world: World) -> None:
    """A 503 on create leaves the grant activating with a retry scheduled; the job makes it active later."""
    world.rancher.fail_next("roletemplatebindings", 503, count=1, method="POST")
    outcome = await world.grants.requests.request("U0ALICE001", "dev-eu/payments", "project-member")
    grant = outcome.grant
    assert grant is not None
    assert grant.state is GrantState.ACTIVATING
    assert grant.attempts == 1
    assert world.clock.now() < grant.next_attempt_at <= world.clock.now() + 5
    assert (await world.retries.run(world.clock.now())).tried == 0  # not due yet
    world.clock.value = grant.next_attempt_at
    result = await world.retries.run(world.clock.now())
    assert (result.tried, result.activated) == (1, 1)
    done = world.store.grants.get(grant.id)
    assert done is not None
    assert (done.state, done.attempts, done.failure) == (GrantState.ACTIVE, 0, "")
    assert len(world.tagged(grant.id)) == 1


async def test_failing_past_the_activation_timeout_fails_the_grant_with_one_alert(world: World) -> None:
    """Rancher answering 503 for more than 10 minutes: failed, the requester told, one security alert."""
    world.rancher.fail_next("roletemplatebindings", 503, count=10_000, method="POST")
    outcome = await world.grants.requests.request("U0ALICE001", "dev-eu/payments", "project-member")
    grant = outcome.grant
    assert grant is not None
    start = world.clock.now()
    for step in range(1, 25):
        world.clock.value = start + 30 * step
        await world.retries.run(world.clock.now())
    final = world.store.grants.get(grant.id)
    assert final is not None
    assert final.state is GrantState.FAILED
    assert final.failure.startswith("Rancher did not create the binding within 10m")
    assert world.security("activation-abandoned:") == [f"activation-abandoned:{grant.id}"]
    assert factories.queued_keys(world.store, "U0ALICE001", f"dm:{grant.id}:failed")
    assert world.tagged(grant.id) == []
    world.clock.value += 3600
    await world.retries.run(world.clock.now())
    assert world.security("activation-abandoned:") == [f"activation-abandoned:{grant.id}"]


async def test_revoking_a_grant_rancher_keeps_failing_ends_it_at_once(world: World) -> None:
    """A revoke while the activation is being retried wins: the grant fails now, the retry job never activates it."""
    world.rancher.fail_next("roletemplatebindings", 503, count=2, method="POST")
    outcome = await world.grants.requests.request("U0ALICE001", "dev-eu/payments", "project-member")
    assert outcome.grant is not None
    ended = await world.grants.lifecycle.revoke_by("U0ALICE001", outcome.grant.id)
    assert ended.state is GrantState.FAILED
    assert ended.failure == "revoked by the holder before Rancher created the binding"
    world.clock.value += 3600
    assert (await world.retries.run(world.clock.now())).tried == 0
    assert world.tagged(outcome.grant.id) == []
