"""AccessService (and `who`) against the Rancher emulator over HTTP, through the real RancherClient."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from accessbot_emulators.rancher import EmulatorSettings, RancherEmulator, run_emulator
from bot.adapters.rancher import RancherClient
from bot.adapters.store import open_storage
from bot.core.errors import NotFound, TransientUpstreamError
from bot.core.model import Grant, GrantState, Target
from bot.core.policy import Policy
from bot.core.principals import PrincipalMapping, principal_set
from bot.core.storage import Storage
from bot.services.access import AccessService
from bot.services.grants import GrantQueries
from tests import factories
from tests.conftest import FakeClock

NOW = 1_800_000_000
LABEL = "accessbot.io/grant"
BOT = "u-yenqfdbhnr"
ALICE_SUB = "3f2a9c1e-5b7d-4e8a-9c0f-1a2b3c4d5e6f"
BOB_SUB = "8c1d7e22-0a4b-4c9e-8f3d-2b5a6c7d8e9f"
DAVE_SUB = "0d9c8b7a-6e5f-4d3c-2b1a-9f8e7d6c5b4a"
G0192 = Grant(
    id="g-0192",
    slack_user="U1",
    subject=ALICE_SUB,
    target=Target("c-m-9hb3n5kp"),
    role_id="cluster-member",
    duration_s=7200,
    rule="prod-read",
    state=GrantState.ACTIVE,
    requested_at=NOW - 3600,
    expires_at=NOW + 3600,
)


@pytest.fixture(scope="module")
def emulator() -> Iterator[RancherEmulator]:
    """One emulator for the module, page size 2."""
    with run_emulator(settings=EmulatorSettings(page_size=2)) as emu:
        yield emu


@pytest.fixture(autouse=True)
def _fresh(emulator: RancherEmulator) -> None:
    emulator.reset()


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[Storage]:
    """A fresh database."""
    store = open_storage(tmp_path / "bot.db")
    yield store
    store.database.close()


def _service(client: RancherClient, storage: Storage) -> AccessService:
    return AccessService(
        rancher=client,
        grant_label=LABEL,
        links=storage.links,
        grants=storage.grants,
        principals=PrincipalMapping(),
        clock=FakeClock(NOW),
    )


@pytest.fixture
async def service(emulator: RancherEmulator, storage: Storage) -> AsyncIterator[AccessService]:
    """An AccessService on a real RancherClient holding the bot's key."""
    async with RancherClient(emulator.url, emulator.token_for(BOT), retries=1, backoff=0.01) as client:
        yield _service(client, storage)


@pytest.fixture
async def queries(emulator: RancherEmulator, storage: Storage) -> AsyncIterator[GrantQueries]:
    """The grant queries (`who`) on a real RancherClient, asked by an admin."""
    async with RancherClient(emulator.url, emulator.token_for(BOT), retries=1, backoff=0.01) as client:
        world = factories.build_grant_world(
            storage, rancher=client, clock=FakeClock(NOW), policy=Policy(), channels={}, admins=frozenset({"UADMIN"})
        )
        yield world.grants.queries


def lines(report_rights: object) -> list[tuple[str, str, str]]:
    """(where, role, source) per right."""
    return [(r.where, r.role_name, r.source_text) for r in report_rights]  # type: ignore[attr-defined]


async def test_direct_group_and_grant_rights_with_both_prtb_id_styles(service: AccessService) -> None:
    """Alice sees direct, group and grant rights on clusters and projects, old- and new-style PRTBs alike."""
    alice = principal_set("genericoidc", ALICE_SUB, ["devs", "payments-team"])
    report = await service.describe(alice, [G0192], NOW)
    assert report.user_known
    assert report.user is not None
    assert report.user.name == "Alice Archer"
    assert lines(report.rights) == [
        ("global", "Standard User", "direct"),
        ("dev-eu", "Cluster Member", "direct"),
        ("dev-eu/checkout", "Project Member", "direct"),  # p-r2d9w:prtb-7fw2d (old style)
        ("dev-eu/payments", "Project Owner", "via group payments-team"),  # c-7xk2p-p-4mz8q:prtb-2kd8m (new style)
        ("prod-eu", "Cluster Member", "grant g-0192 · 1h left"),
        ("prod-eu", "View All Projects", "via group devs"),
        ("prod-eu/payload-api", "Read-only", "via group devs"),
        ("prod-eu/payments", "View Workloads", "direct"),  # p-j5c2l:prtb-b5w3c via userPrincipalId
    ]
    assert report.names["c-m-9hb3n5kp"] == "prod-eu"


async def test_global_role_inherited_cluster_roles(service: AccessService) -> None:
    """An sre member gets cluster-member everywhere through the Platform Observer global role."""
    bob = principal_set("genericoidc", BOB_SUB, ["sre"])
    report = await service.describe(bob, [], NOW)
    assert ("global", "Platform Observer", "via group sre") in lines(report.rights)
    inherited = [r for r in report.rights if r.source_text == "via global role Platform Observer (group sre)"]
    assert sorted(r.where for r in inherited) == ["dev-eu", "prod-eu", "staging-eu"]
    assert ("staging-eu", "Cluster Owner", "via group sre") in lines(report.rights)


async def test_admin_sees_everything(service: AccessService) -> None:
    """The bot's own admin user is reported as a global admin."""
    pset = principal_set("genericoidc", "e7f1a2b3-4c5d-4e6f-8a9b-0c1d2e3f4a5b", ["platform"])
    report = await service.describe(pset, [], NOW)
    assert report.is_admin
    assert report.rights[0].role_name == "Admin"


async def test_user_unknown_to_rancher(service: AccessService) -> None:
    """Someone who never logged in to Rancher has no user yet but still sees group rights."""
    dave = principal_set("genericoidc", DAVE_SUB, ["devs"])
    report = await service.describe(dave, [], NOW)
    assert not report.user_known
    assert report.principals.user_id is None
    assert lines(report.rights) == [
        ("prod-eu", "View All Projects", "via group devs"),
        ("prod-eu/payload-api", "Read-only", "via group devs"),
    ]


async def test_filter_by_cluster_and_project(service: AccessService) -> None:
    """`prod-eu` and `dev-eu/payments` narrow the answer; an unknown cluster is NotFound."""
    alice = principal_set("genericoidc", ALICE_SUB, ["devs", "payments-team"])
    prod = await service.describe(alice, [G0192], NOW, "prod-eu")
    assert {r.cluster_name for r in prod.rights} == {"prod-eu"}
    assert len(prod.rights) == 4
    payments = await service.describe(alice, [], NOW, "dev-eu/payments")
    assert lines(payments.rights) == [
        ("dev-eu", "Cluster Member", "direct"),  # a cluster role applies in every project of its cluster
        ("dev-eu/payments", "Project Owner", "via group payments-team"),
    ]
    with pytest.raises(NotFound):
        await service.describe(alice, [], NOW, "mars")


async def test_request_count_does_not_grow_with_the_estate(service: AccessService, emulator: RancherEmulator) -> None:
    """With names cached, an answer costs the same number of Rancher requests after the estate grows."""
    alice = principal_set("genericoidc", ALICE_SUB, ["devs", "payments-team"])
    await service.describe(alice, [], NOW)
    emulator.reset_counters()
    await service.describe(alice, [], NOW)
    before = emulator.request_counts()["total"]
    for i in range(30):
        emulator.add_cluster(f"c-m-grow{i:04d}", f"grow-{i}")
        emulator.add_binding(
            "crtb",
            name=f"crtb-grow{i:03d}",
            clusterId=f"c-m-grow{i:04d}",
            roleTemplateId="cluster-member",
            userId="u-kn3kwqn2hg",
        )
    emulator.reset_counters()
    await service.describe(alice, [], NOW)
    assert emulator.request_counts()["total"] == before <= 12


async def test_who_lists_holders_of_a_project(queries: GrantQueries) -> None:
    """`who dev-eu/payments` names the group holding Project Owner."""
    report = await queries.who("UADMIN", "dev-eu/payments")
    assert report.where == "dev-eu/payments"
    assert [(h.subject, h.kind, h.role_name, h.source_text) for h in report.holders] == [
        ("payments-team", "group", "Project Owner", "direct")
    ]
    cluster = await queries.who("UADMIN", "c-m-9hb3n5kp")
    assert ("Alice Archer", "user", "Cluster Member", "grant g-0192") in [
        (h.subject, h.kind, h.role_name, h.source_text) for h in cluster.holders
    ]


async def test_rancher_down_raises_upstream_error(storage: Storage) -> None:
    """When Rancher does not answer, describe raises a TransientUpstreamError with a clear message."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with RancherClient(f"http://127.0.0.1:{port}", "token-abcde:x", retries=0) as client:
        with pytest.raises(TransientUpstreamError, match="cannot connect"):
            await _service(client, storage).describe(principal_set("genericoidc", ALICE_SUB, []), [], NOW)


async def test_user_that_does_not_answer_to_the_principal_is_not_trusted(
    service: AccessService, emulator: RancherEmulator
) -> None:
    """If the derived id belongs to a user without our principal, its direct bindings are not ours."""
    eve = principal_set("genericoidc", "eve-subject", [])
    assert eve.user_id is not None
    emulator.add_user(id=eve.user_id, name="Someone else", principalIds=[f"local://{eve.user_id}"])
    emulator.add_binding(
        "crtb", name="crtb-eve01", clusterId="c-7xk2p", roleTemplateId="cluster-owner", userId=eve.user_id
    )
    report = await service.describe(eve, [], NOW)
    assert not report.user_known
    assert report.rights == ()


ADMIN_SUB = "5e4d3c2b-1a09-4f8e-9d7c-6b5a4f3e2d1c"  # fixture: the admin who enabled genericoidc keeps user-b7k2p
ERIN_SUB = "c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f"  # fixture: u-r8t2w, created through the API; restricted-admin


async def test_the_admin_who_enabled_the_provider_is_found_by_principal(service: AccessService) -> None:
    """user-b7k2p is not the derived id (usermanager.go SetPrincipalOnCurrentUser): still found, and an admin."""
    report = await service.describe(principal_set("genericoidc", ADMIN_SUB, []), [], NOW)
    assert report.user is not None
    assert report.user.id == "user-b7k2p"
    assert report.is_admin
    assert ("local", "Cluster Owner", "direct") in lines(report.rights)  # a userId binding, found by the real id


async def test_an_admin_equivalent_role_held_by_a_group_is_everything(service: AccessService) -> None:
    """ops-admins → Platform Admin (*/*/* + nonResourceURLs *; pkg/rbac/common.go IsAdminGlobalRole)."""
    report = await service.describe(principal_set("genericoidc", ALICE_SUB, ["ops-admins"]), [], NOW)
    assert report.is_admin
    assert report.rights[0].role_name == "Platform Admin"
    assert report.rights[0].source_text == "via group ops-admins"


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("v2.7.18", "everything-but-local"),  # globalrole_handler.go@v2.7.0: cluster-admin downstream
        ("v2.9.3", "crtbs"),  # restrictedadminrbac/cluster.go@v2.9.0: a cluster-owner CRTB per downstream cluster
        ("v2.14.4", "nothing"),  # gone in 2.11 (role_data.go@v2.11.0)
    ],
)
async def test_restricted_admin_by_version(
    emulator: RancherEmulator, storage: Storage, version: str, expected: str
) -> None:
    """Erin's restricted-admin: everything but local on 2.7, attributed CRTBs on 2.8-2.10, nothing from 2.11."""
    emulator.configure(server_version=version)
    try:
        async with RancherClient(emulator.url, emulator.token_for(BOT), retries=0) as client:
            report = await _service(client, storage).describe(principal_set("genericoidc", ERIN_SUB, []), [], NOW)
    finally:
        emulator.configure(server_version="v2.14.4")
    restricted = [r for r in report.rights if "Restricted Admin" in (r.role_name, r.source.global_role)]
    if expected == "everything-but-local":
        assert [(r.everything, r.downstream_only) for r in restricted] == [(True, True)]
    elif expected == "crtbs":
        assert sorted(r.where for r in restricted if r.scope.value == "cluster") == ["dev-eu", "prod-eu", "staging-eu"]
        assert all(r.source_text == "via global role Restricted Admin" and r.all_projects for r in restricted[1:])
    else:
        assert restricted == []


async def test_inherited_roles_are_named_in_the_answer(service: AccessService, emulator: RancherEmulator) -> None:
    """A project-lead binding names Project Member and View Workloads (roleTemplateIds, authz_types.go)."""
    emulator.add_binding(
        "prtb", name="prtb-lead2", projectId="c-7xk2p:p-4mz8q", roleTemplateId="project-lead", userId="u-x7xfihrhhs"
    )
    report = await service.describe(principal_set("genericoidc", ALICE_SUB, []), [], NOW, "dev-eu/payments")
    lead = next(r for r in report.rights if r.role_id == "project-lead")
    assert lead.includes == ("Project Member", "View Workloads")
    assert report.groups_as_of == "login"  # genericoidc never refreshes groups (genericoidc_provider.go)


async def test_fifty_groups_cost_no_more_rancher_requests_than_three(
    service: AccessService, emulator: RancherEmulator
) -> None:
    """Each collection is asked once per subject field however many groups (filtered lists are full LISTs)."""
    few = principal_set("genericoidc", ALICE_SUB, ["devs", "payments-team", "sre"])
    many = principal_set("genericoidc", ALICE_SUB, [f"team-{i:02d}" for i in range(50)])
    emulator.configure(page_size=1000)  # one page each, so only the number of queries counts
    try:
        await service.describe(few, [], NOW)  # names cached
        counts = []
        for pset in (few, many):
            emulator.reset_counters()
            await service.describe(pset, [], NOW)
            counts.append(emulator.request_counts()["total"])
    finally:
        emulator.configure(page_size=2)
    assert counts[0] == counts[1] == 10  # user by id + 9 binding queries


async def test_full_group_paths_are_split_as_rancher_splits_them(emulator: RancherEmulator, storage: Storage) -> None:
    """rancher.group_format full_path: `/org/sre` gives groups org and sre (oidc_provider.go full_group_path)."""
    factories.link(storage.links, "U0BOB00001", BOB_SUB, ["/org/sre"], now=NOW)
    async with RancherClient(emulator.url, emulator.token_for(BOT), retries=0) as client:
        service = AccessService(
            rancher=client,
            grant_label=LABEL,
            links=storage.links,
            grants=storage.grants,
            principals=PrincipalMapping(full_group_paths=True),
            clock=FakeClock(NOW),
        )
        report = await service.report("U0BOB00001")
    assert report.principals.group_principal_ids == ("genericoidc_group://org", "genericoidc_group://sre")
    assert ("staging-eu", "Cluster Owner", "via group sre") in lines(report.rights)


def test_group_format_comes_from_the_configuration(tmp_path: Path) -> None:
    """`rancher.group_format: full_path` turns on path splitting in the principal mapping."""
    from bot import wiring
    from bot.demo import botconfig

    config = botconfig.make_config(
        database=tmp_path / "c.db", public_url="https://bot.example.com", slack_api_url="https://slack.com/api/",
        oidc_issuer="https://idp.example.com", rancher_url="https://rancher.example.com",
        rancher_token="token-abcde:x", overrides={"rancher": {"group_format": "full_path"}},
    )  # fmt: skip
    assert wiring.principal_mapping(config).full_group_paths


async def test_who_names_a_linked_person_whose_rancher_id_is_not_derived(
    queries: GrantQueries, storage: Storage
) -> None:
    """`who local`: the bootstrap admin (user-b7k2p holds the linked principal) is shown with their Slack user."""
    factories.link(storage.links, "U0ADMIN001", ADMIN_SUB, [], now=NOW)
    report = await queries.who("UADMIN", "local")
    owner = next(h for h in report.holders if h.user_id == "user-b7k2p")
    assert owner.slack_user == "U0ADMIN001"
