"""RancherClient against the emulator playing Rancher as its source says: the key by name, users by principal,
one request per collection and field, version differences, terminating bindings, conflicts that are not ours."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest

from accessbot_emulators.rancher import EmulatorSettings, RancherEmulator, run_emulator
from bot.adapters.rancher import RancherClient
from bot.adapters.rancher.transport import MAX_QUERY_BYTES
from bot.core.errors import ConflictError, TransientUpstreamError
from bot.core.model import Deletion, RoleBinding, Scope
from bot.core.rancher_versions import parse_version

BOT = "u-yenqfdbhnr"
ADMIN = "user-b7k2p"
ALICE = "u-x7xfihrhhs"
CAROL = "u-mvd3xglko4"
ERIN = "u-r8t2w"
ADMIN_P = "genericoidc_user://5e4d3c2b-1a09-4f8e-9d7c-6b5a4f3e2d1c"  # fixture: the admin who enabled genericoidc
ERIN_P = "genericoidc_user://c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f"  # fixture: a user created through the API
LABEL = "accessbot.io/grant"
VERSIONS = ["v2.7.18", "v2.9.3", "v2.11.2", "v2.14.4", "v2.15.0"]


@pytest.fixture(scope="module")
def emulator() -> Iterator[RancherEmulator]:
    """One emulator for the module."""
    with run_emulator(settings=EmulatorSettings()) as emu:
        yield emu


@pytest.fixture(autouse=True)
def _fresh(emulator: RancherEmulator) -> Iterator[None]:
    emulator.configure(server_version="v2.14.4", fill_delay=0.0, finalizer_delay=0.0, ignored_filters=())
    emulator.reset()
    yield
    emulator.configure(server_version="v2.14.4")


@pytest.fixture
async def rancher(emulator: RancherEmulator) -> AsyncIterator[RancherClient]:
    """A client holding the bot's genericoidc admin key."""
    async with RancherClient(emulator.url, emulator.token_for(BOT), retries=0) as client:
        yield client


def paths(emulator: RancherEmulator) -> dict[str, int]:
    """Requests per `METHOD /path` since the last counter reset."""
    return dict(emulator.request_counts()["by_path"])


# --- rancher check ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
async def test_check_reads_the_key_by_name_on_every_version(emulator: RancherEmulator, version: str) -> None:
    """The key is read with GET /v3/tokens/<name> (an API key is never `current`, tokens/manager.go); OK on 2.9+."""
    emulator.configure(server_version=version)
    async with RancherClient(emulator.url, emulator.token_for(BOT), retries=0) as client:
        report = await client.check("genericoidc")
    assert (report.key_name, report.user_id, report.auth_provider) == ("token-b9t4n", BOT, "genericoidc")
    assert report.server_version == version
    assert report.is_admin
    assert report.admin_via.startswith("Admin (grb-p3z9c")
    assert "GET /v3/tokens/token-b9t4n" in paths(emulator)
    if parse_version(version) < (2, 9):  # genericoidc/ exists from v2.9.0
        assert not report.ok
        assert any("only from 2.9" in p for p in report.problems)
    else:
        assert report.ok, report.problems
        assert report.warnings == ()


async def test_check_warns_when_the_key_expires_within_14_days(emulator: RancherEmulator) -> None:
    """A key expiring in 5 days is usable but warned about; one expiring in 30 days is not."""
    now = datetime(2030, 1, 1, tzinfo=UTC)
    soon = (now + timedelta(days=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    emulator.add_token(name="token-s00n5", secret="s" * 54, userId=BOT, authProvider="genericoidc", expiresAt=soon)
    async with RancherClient(emulator.url, "token-s00n5:" + "s" * 54, retries=0) as client:
        report = await client.check("genericoidc", now=now)
        later = await client.check("genericoidc", now=now - timedelta(days=25))
    assert report.ok
    assert report.expires_at == soon
    assert any("expires in 5 day(s)" in w for w in report.warnings)
    assert not any("expires" in w for w in later.warnings)


async def test_check_finds_admin_through_a_group_grb_to_a_custom_admin_role(emulator: RancherEmulator) -> None:
    """Carol's key is admin only through group ops-admins → Platform Admin (*/*/* + nonResourceURLs *)."""
    emulator.add_token(
        name="token-c4r0l", secret="c" * 54, userId=CAROL, authProvider="genericoidc",
        groupPrincipals=["genericoidc_group://ops-admins"],
    )  # fmt: skip
    async with RancherClient(emulator.url, "token-c4r0l:" + "c" * 54, retries=0) as client:
        report = await client.check("genericoidc")
    assert report.is_admin
    assert report.admin_via == "Platform Admin (grb-q2z8d, held by group genericoidc_group://ops-admins)"


async def test_check_of_a_non_admin_key_warns_about_escalation(emulator: RancherEmulator) -> None:
    """Alice's key holds no admin-like role: usable (exit 0) but warned that Rancher will refuse (422)."""
    async with RancherClient(emulator.url, emulator.token_for(ALICE), retries=0) as client:
        report = await client.check("genericoidc")
    assert report.ok
    assert not report.is_admin
    assert any("422 escalation" in w for w in report.warnings)


async def test_check_says_what_the_version_implies(emulator: RancherEmulator) -> None:
    """On 2.13 both duplicate kinds are accepted and GRBs name user principals."""
    emulator.configure(server_version="v2.13.3")
    async with RancherClient(emulator.url, emulator.token_for(BOT), retries=0) as client:
        report = await client.check("genericoidc")
    assert any("duplicate cluster and project bindings are accepted" in line for line in report.implications)
    assert any("user principal" in line for line in report.implications)


# --- users by principal --------------------------------------------------------------------------------------


async def test_a_user_whose_id_is_not_the_derived_one_is_found_by_principal(
    rancher: RancherClient, emulator: RancherEmulator
) -> None:
    """The admin who enabled the provider keeps `user-…`, API users have random ids (usermanager.go); found anyway."""
    admin = await rancher.find_user(ADMIN_P)
    erin = await rancher.find_user(ERIN_P)
    assert admin is not None
    assert admin.id == ADMIN
    assert erin is not None
    assert erin.id == ERIN
    assert paths(emulator)["GET /v3/users"] == 1  # one list of users, then the cached index
    assert await rancher.find_user("genericoidc_user://0d9c8b7a-6e5f-4d3c-2b1a-9f8e7d6c5b4a") is None
    assert paths(emulator)["GET /v3/users"] == 1
    await rancher.find_user(ERIN_P, fresh=True)
    assert paths(emulator)["GET /v3/users"] == 2


async def test_the_derived_id_is_used_first_without_listing_users(
    rancher: RancherClient, emulator: RancherEmulator
) -> None:
    """A user whose id is the derived one costs one GET by id and no list."""
    alice = await rancher.find_user("genericoidc_user://3f2a9c1e-5b7d-4e8a-9c0f-1a2b3c4d5e6f")
    assert alice is not None
    assert alice.id == ALICE
    assert "GET /v3/users" not in paths(emulator)


# --- listing ------------------------------------------------------------------------------------------------------


async def test_bindings_cost_one_request_per_collection_and_field_whatever_the_groups(
    rancher: RancherClient, emulator: RancherEmulator
) -> None:
    """3 groups or 60: the same 9 list requests (every filtered list is a full LIST server-side, proxy_store.go)."""
    counts = []
    for n in (3, 60):
        emulator.reset_counters()
        groups = [f"genericoidc_group://team-{i:03d}" for i in range(n)]
        await rancher.list_bindings(user_ids=[ALICE], user_principal_ids=["x_user://a"], group_principal_ids=groups)
        counts.append(rancher.list_requests)
        lists = {p: c for p, c in paths(emulator).items() if "rolebindings" in p or "roletemplatebindings" in p}
        assert sum(lists.values()) == 9
    assert counts[1] - counts[0] == 9


@pytest.mark.parametrize(("version", "requests"), [("v2.10.6", 8), ("v2.11.2", 9)])
async def test_grb_user_principal_is_asked_only_from_2_11(
    emulator: RancherEmulator, version: str, requests: int
) -> None:
    """Before 2.11 GRBs have no userPrincipalId (authz_types.go), the filter would be ignored: it is not sent."""
    emulator.configure(server_version=version)
    async with RancherClient(emulator.url, emulator.token_for(BOT), retries=0) as client:
        await client.features()
        emulator.reset_counters()
        found = await client.list_bindings(
            user_ids=[ALICE], user_principal_ids=["x_user://a"], group_principal_ids=["genericoidc_group://sre"]
        )
    assert sum(paths(emulator).values()) == requests
    assert all(b.user_id == ALICE or b.group_principal_id == "genericoidc_group://sre" for b in found)


async def test_long_group_lists_are_split_under_the_url_limit(
    rancher: RancherClient, emulator: RancherEmulator
) -> None:
    """400 long group ids go out in several `_in` requests, each query under MAX_QUERY_BYTES (ingress-nginx 8 KiB)."""
    groups = [f"genericoidc_group://{'x' * 60}-{i:04d}" for i in range(400)]
    seen: list[str] = []
    emulator.reset_counters()
    await rancher.list_bindings(group_principal_ids=groups)
    for path in paths(emulator):
        seen.append(path)
    assert rancher.list_requests > 3
    assert all(len(urlsplit(p).query) < MAX_QUERY_BYTES for p in seen)


async def test_role_templates_and_global_roles_carry_rules_and_inheritance(rancher: RancherClient) -> None:
    """roleTemplateIds and rules are decoded (role_data.go built-ins; fixture custom roles)."""
    templates = {t.id: t for t in await rancher.list_role_templates()}
    assert templates["project-lead"].inherits == ("project-member", "workloads-view")
    assert templates["cluster-owner"].rules[0].verbs == ("*",)
    roles = {g.id: g for g in await rancher.list_global_roles()}
    assert roles["admin"].builtin
    assert roles["platform-admin"].rules[1].non_resource_urls == ("*",)


# --- writes -------------------------------------------------------------------------------------------------------


async def test_a_duplicate_is_adopted_only_when_its_label_value_is_this_grant(
    rancher: RancherClient, emulator: RancherEmulator
) -> None:
    """A 409 Conflict (webhook 0.10+) on a binding labelled for ANOTHER grant is a conflict, never adopted."""
    emulator.add_binding(
        "crtb", name="accessbot-g-41", clusterId="c-7xk2p", roleTemplateId="nodes-view", userId=ALICE,
        labels={LABEL: "g-41"},
    )  # fmt: skip
    with pytest.raises(ConflictError, match="not made by the bot"):
        await rancher.create_binding(
            name="accessbot-g-42", cluster_id="c-7xk2p", project_id=None, role_id="nodes-view", user_id=ALICE,
            user_principal_id=None, labels={LABEL: "g-42"}, annotations={},
        )  # fmt: skip


async def test_a_same_named_binding_being_deleted_is_retried_not_adopted(
    rancher: RancherClient, emulator: RancherEmulator
) -> None:
    """AlreadyExists on a `removed` binding (finalizers pending) is transient: the create is retried later."""
    emulator.configure(finalizer_delay=3600.0)
    kwargs = {
        "name": "accessbot-g-43", "cluster_id": "c-7xk2p", "project_id": None, "role_id": "nodes-view",
        "user_id": ALICE, "user_principal_id": None, "labels": {LABEL: "g-43"}, "annotations": {},
    }  # fmt: skip
    made = await rancher.create_binding(**kwargs)  # type: ignore[arg-type]
    assert await rancher.delete_binding(made) is Deletion.TERMINATING
    with pytest.raises(TransientUpstreamError, match="still being deleted"):
        await rancher.create_binding(**kwargs)  # type: ignore[arg-type]


async def test_a_terminating_binding_is_flagged_and_read_back(
    rancher: RancherClient, emulator: RancherEmulator
) -> None:
    """DELETE 200 with `removed` is terminating (norman delete.go); lists and GET show it until it is purged."""
    emulator.configure(finalizer_delay=3600.0)
    binding = RoleBinding(id="c-7xk2p:crtb-g4l7s", scope=Scope.CLUSTER, role_id="cluster-member")
    assert await rancher.delete_binding(binding) is Deletion.TERMINATING
    again = await rancher.get_binding(binding)
    assert again is not None
    assert again.terminating
    listed = [b for b in await rancher.list_target_bindings("c-7xk2p", None) if b.id == binding.id]
    assert [b.terminating for b in listed] == [True]
    live = await rancher.list_bindings(user_ids=["u-kn3kwqn2hg"])
    assert binding.id not in {b.id for b in live}


# --- hostile answers -----------------------------------------------------------------------------------------


def test_malformed_rules_and_inheritance_are_skipped_not_crashed_on() -> None:
    """Rules that are not lists of objects, ids that are not lists: ignored, the rest still decoded."""
    from bot.adapters.rancher.payloads import global_role_of, role_template_of

    odd = role_template_of({"id": "x", "rules": "*", "roleTemplateIds": {"a": 1}})
    assert (odd.rules, odd.inherits) == ((), ())
    mixed = global_role_of({"id": "g", "rules": [7, None, {"verbs": "*", "apiGroups": ["*"]}, {"verbs": ["*"]}]})
    assert [r.verbs for r in mixed.rules] == [(), ("*",)]


def test_huge_rule_lists_and_group_lists_are_handled_in_linear_time() -> None:
    """Hostile sizes: 200,000 rules decoded and 50,000 group ids chunked within budget (best of 3)."""
    from bot.adapters.rancher.payloads import role_template_of
    from bot.adapters.rancher.transport import Transport

    rules = [{"apiGroups": ["*"], "resources": ["pods"], "verbs": ["get"]}] * 200_000
    transport = Transport("http://127.0.0.1:9", "token-abcde:x")
    groups = [f"genericoidc_group://g-{i:06d}" for i in range(50_000)]
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        assert len(role_template_of({"id": "big", "rules": rules}).rules) == 200_000
        assert sum(len(c) for c in transport.chunks("groupPrincipalId", groups)) == 50_000
        best = min(best, time.perf_counter() - started)
    assert best < 2.0
