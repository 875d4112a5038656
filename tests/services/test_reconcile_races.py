"""Reconciliation on a consistent view: the sweep and the reconciler interleaved on purpose, terminating bindings,
each collection listed once, and repairs bound the same way as first activations."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from accessbot_emulators.rancher import RancherEmulator, run_emulator
from accessbot_emulators.slack import SlackEmulator
from bot.adapters.rancher import RancherClient
from bot.adapters.store import open_storage
from bot.core import audit_actions as A
from bot.core.model import Grant, GrantChange, GrantState, RoleBinding
from tests import factories
from tests.conftest import FakeClock
from tests.services.test_jobs import PAYMENTS, JobSettings, World, make_world, with_settings

LOCAL_KEY = "token-x7k2m:ngq2cd9wfpxcvjcdrrdkdwrc9xfk22xcxxqckcwgmrgwfxmw94hfxx"
ERIN_SUB = "c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f"  # fixture: user u-r8t2w, created through the API


class PausingRancher:
    """The real client; `list_all_bindings` returns its listing only once `resume` is set (the reconciler's first
    read), so the sweep can run in between, as it may in production (two jobs of one scheduler)."""

    def __init__(self, inner: RancherClient) -> None:
        self._inner = inner
        self.listed = asyncio.Event()
        self.resume = asyncio.Event()
        self.pause = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def list_all_bindings(self) -> Sequence[RoleBinding]:
        """List through the real client, then wait while paused."""
        found = await self._inner.list_all_bindings()
        if self.pause:
            self.listed.set()
            await self.resume.wait()
        return found


@pytest.fixture(scope="module")
def emulator() -> Iterator[RancherEmulator]:
    """One Rancher emulator for this module (reset per test)."""
    with run_emulator() as emu:
        yield emu


@pytest.fixture
async def world(emulator: RancherEmulator, slack: SlackEmulator, tmp_path: Path) -> AsyncIterator[World]:
    """The jobs wired to a pausable client (the demo estate's tagged orphan removed)."""
    emulator.configure(server_version="v2.14.4", latency=0.0, failure_rate=0.0, finalizer_delay=0.0)
    emulator.reset()
    emulator.remove_binding("c-m-9hb3n5kp:crtb-accessbot-g0192")
    slack.reset()
    path = tmp_path / "bot.db"
    store = open_storage(path)
    w, clients = make_world(store, emulator, slack, FakeClock(), JobSettings(), db_path=path, wrap=PausingRancher)
    yield w
    for client in clients:
        await client.aclose()
    store.database.close()


def orphan_reports(world: World) -> tuple[int, int]:
    """(audit rows, security posts) of deleted orphans."""
    return len(world.audit_rows(A.DRIFT_ORPHAN_DELETED)), len(world.security_posts("orphan:"))


async def test_the_sweeps_own_deletion_is_never_reported_as_an_orphan(world: World) -> None:
    """Reconcile lists the binding, the sweep expires the grant and deletes it, then reconcile plans: nothing reported.

    Before the fix this posted ":broom: Deleted a binding … no live grant owns" and counted drift in the digest.
    """
    grant = world.active_grant(expires_in=60)
    pausing: PausingRancher = world.client
    pausing.pause = True
    world.clock.value += 61
    reconcile = asyncio.create_task(world.jobs.reconcile(world.clock.now()))
    await asyncio.wait_for(pausing.listed.wait(), 5)
    swept = await world.jobs.expire_grants(world.clock.now())
    assert swept.revoked == 1
    assert world.state(grant.id) is GrantState.EXPIRED
    pausing.resume.set()
    result = await asyncio.wait_for(reconcile, 5)
    assert result.orphans_deleted == 0
    assert orphan_reports(world) == (0, 0)
    assert world.audit_rows(A.DRIFT_MISSING_BINDING) == []


async def test_a_grant_claimed_by_the_sweep_after_the_listing_is_not_reported_missing(world: World) -> None:
    """The binding vanished (sweep) after reconcile read the grants as active: re-read first, nothing reported."""
    grant = world.active_grant(expires_in=60)
    pausing: PausingRancher = world.client
    pausing.pause = True
    reconcile = asyncio.create_task(world.jobs.reconcile(world.clock.now() + 61))
    await asyncio.wait_for(pausing.listed.wait(), 5)
    world.clock.value += 61
    assert grant.binding_id is not None
    world.rancher.remove_binding(grant.binding_id)  # the listing above still holds it
    await world.jobs.expire_grants(world.clock.now())
    pausing.resume.set()
    result = await asyncio.wait_for(reconcile, 5)
    assert (result.missing, result.orphans_deleted) == (0, 0)
    assert world.audit_rows(A.DRIFT_MISSING_BINDING) == []


async def test_a_terminating_binding_keeps_the_grant_revoking_until_it_is_gone(world: World) -> None:
    """DELETE 200 with `removed` (finalizers wait downstream) is not "revoked": the grant stays revoking."""
    world.rancher.configure(finalizer_delay=0.5)
    grant = world.active_grant(expires_in=10)
    world.clock.value += 11
    first = await world.jobs.expire_grants(world.clock.now())
    assert (first.claimed, first.revoked) == (1, 0)
    pending = world.grant(grant.id)
    assert pending.state is GrantState.REVOKING
    assert "finalizers" in pending.failure
    reconciled = await world.jobs.reconcile(world.clock.now())
    assert (reconciled.orphans_deleted, reconciled.missing) == (0, 0)
    await asyncio.sleep(0.6)  # the emulator's finalizers run on its own (wall) clock
    world.clock.value = pending.next_attempt_at
    second = await world.jobs.expire_grants(world.clock.now())
    assert second.revoked == 1
    assert world.state(grant.id) is GrantState.EXPIRED
    assert world.tagged(grant.id) == []


async def test_a_binding_terminating_for_long_raises_one_alert(world: World) -> None:
    """A finalizer that never finishes (downstream cluster unreachable): one overdue alert, grant still revoking."""
    world.rancher.configure(finalizer_delay=3600.0)
    grant = world.active_grant(expires_in=10)
    for step in (11, 60, 140, 300, 600):
        world.clock.value = world.grant(grant.id).requested_at + 600 + step
        await world.jobs.expire_grants(world.clock.now())
    assert world.state(grant.id) is GrantState.REVOKING
    assert world.security_posts(f"overdue:{grant.id}") == [f"overdue:{grant.id}"]


async def test_an_early_revocation_that_stays_terminating_is_alerted_too(world: World) -> None:
    """An early revoke (expiry far off) whose binding keeps terminating is alerted `overdue_alert_after` later."""
    world.rancher.configure(finalizer_delay=3600.0)
    grant = world.active_grant(expires_in=3600)
    ended = await world.grants.lifecycle.revoke(grant.id, actor="U0ALICE001", reason="done")
    assert ended.state is GrantState.REVOKING
    world.clock.value += 121
    await world.jobs.expire_grants(world.clock.now())
    assert world.security_posts(f"overdue:{grant.id}") == [f"overdue:{grant.id}"]
    (row,) = world.audit_rows(A.GRANT_REVOCATION_OVERDUE)
    assert "after the revocation began" in row.reason


async def test_a_binding_deleted_outside_the_bot_is_missing_even_while_terminating(world: World) -> None:
    """Someone deleted an active grant's binding in Rancher; it is still `removed`: that is drift, reported once."""
    world.rancher.configure(finalizer_delay=3600.0)
    grant = world.active_grant(expires_in=3600)
    assert grant.binding_id is not None
    await world.client.delete_binding(RoleBinding(id=grant.binding_id, scope=grant.target.scope, role_id="x"))
    result = await world.jobs.reconcile(world.clock.now())
    assert result.missing == 1
    assert len(world.audit_rows(A.DRIFT_MISSING_BINDING)) == 1


async def test_a_real_orphan_is_still_deleted_and_reported(world: World) -> None:
    """A tagged binding of an expired grant that is still live (a lost delete): deleted and reported once."""
    grant = world.active_grant(expires_in=-30)
    world.store.grants.update(grant.id, [GrantState.ACTIVE], GrantChange(state=GrantState.EXPIRED), world.clock.now())
    result = await world.jobs.reconcile(world.clock.now())
    assert result.orphans_deleted == 1
    assert orphan_reports(world) == (1, 1)


async def test_reconcile_lists_each_collection_once(world: World) -> None:
    """With the untagged report on, CRTBs and PRTBs are each listed once per run (not once per cluster/project)."""
    w = with_settings(world, report_untagged=True)
    w.rancher.reset_counters()
    await w.jobs.reconcile(w.clock.now())
    by_path = w.rancher.request_counts()["by_path"]
    assert by_path["GET /v3/clusterroletemplatebindings"] == 1
    assert by_path["GET /v3/projectroletemplatebindings"] == 1


async def test_repair_binds_by_the_real_user_id_like_a_first_activation(
    emulator: RancherEmulator, slack: SlackEmulator, tmp_path: Path
) -> None:
    """With a local key, repairing Erin's grant (API-created user u-r8t2w, not the derived id) binds by userId.

    Binding her principal would fail with that key (local_auth_provider.go: 500); the repair goes through the
    same Bindings.ensure as a first activation, which finds the user by principal.
    """
    emulator.reset()
    path = tmp_path / "bot.db"
    store = open_storage(path)
    w, clients = make_world(
        store, emulator, slack, FakeClock(), JobSettings(repair_drift=True), db_path=path, key=LOCAL_KEY
    )
    now = w.clock.now()
    factories.link(store.links, "U0ERIN0001", ERIN_SUB, ["engineering"], now=now)
    grant = factories.grant(
        store,
        Grant(
            id="", slack_user="U0ERIN0001", subject=ERIN_SUB, target=PAYMENTS, role_id="project-member",
            duration_s=7200, rule="dev-self-service", state=GrantState.ACTIVE, requested_at=now - 900,
            activated_at=now - 900, expires_at=now + 6300, binding_name="accessbot-erin",
            user_principal_id=f"genericoidc_user://{ERIN_SUB}",
        ),
        now=now - 900,
    )  # fmt: skip
    result = await w.jobs.reconcile(now)
    assert (result.missing, result.repaired) == (1, 1)
    (binding,) = w.tagged(grant.id)
    assert binding["userId"] == "u-r8t2w"
    for client in clients:
        await client.aclose()
    store.database.close()
