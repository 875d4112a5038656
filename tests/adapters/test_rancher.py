"""RancherClient against the Rancher emulator over HTTP: pagination, re-checks, retries, errors, secrecy."""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator, Iterator

import pytest

from accessbot_emulators.rancher import EmulatorSettings, RancherEmulator, run_emulator
from bot.adapters.rancher import RancherClient
from bot.core.errors import ConflictError, PermanentUpstreamError, TransientUpstreamError, UpstreamError
from bot.core.model import Deletion, Scope

BOT = "u-yenqfdbhnr"
ADMIN = "user-b7k2p"
ALICE = "u-x7xfihrhhs"
ALICE_P = "genericoidc_user://3f2a9c1e-5b7d-4e8a-9c0f-1a2b3c4d5e6f"
GRANT_LABEL = "accessbot.io/grant"


@pytest.fixture(scope="module")
def emulator() -> Iterator[RancherEmulator]:
    """One emulator for the module with a page size of 2."""
    with run_emulator(settings=EmulatorSettings(page_size=2)) as emu:
        yield emu


@pytest.fixture(autouse=True)
def _fresh(emulator: RancherEmulator) -> None:
    emulator.configure(page_size=2, latency=0.0, failure_rate=0.0, server_version="v2.14.4", ignored_filters=())
    emulator.configure(fill_delay=0.0, finalizer_delay=0.0, advertised_url=None)
    emulator.reset()


@pytest.fixture
async def rancher(emulator: RancherEmulator) -> AsyncIterator[RancherClient]:
    """A client holding the bot's genericoidc admin key, fast retries."""
    async with RancherClient(emulator.url, emulator.token_for(BOT), retries=3, backoff=0.01) as client:
        yield client


async def test_pagination_at_page_size_two_returns_everything_once(
    rancher: RancherClient, emulator: RancherEmulator
) -> None:
    """Following pagination.next at limit 2 yields each project and binding exactly once."""
    projects = await rancher.list_projects()
    assert sorted(p.id for p in projects) == sorted(p["id"] for p in emulator.objects("project"))
    assert len({p.id for p in projects}) == len(projects) == 14
    bindings = await rancher.list_target_bindings("c-7xk2p", None)
    assert len({b.id for b in bindings}) == len(bindings) == 3
    assert emulator.request_counts()["by_path"]["GET /v3/projects"] == 7


async def test_pagination_links_naming_another_origin_are_followed_on_ours(
    rancher: RancherClient, emulator: RancherEmulator
) -> None:
    """Behind a proxy Rancher's links name another host; the client keeps its own origin (the key goes nowhere else)."""
    emulator.configure(advertised_url="https://rancher.internal.invalid")
    projects = await rancher.list_projects()
    assert len({p.id for p in projects}) == len(projects) == 14
    assert emulator.request_counts()["by_path"]["GET /v3/projects"] == 7


async def test_list_bindings_covers_user_principal_and_groups(rancher: RancherClient) -> None:
    """Bindings held by user id, user principal or group principals all come back, with both PRTB id styles."""
    found = await rancher.list_bindings(
        user_ids=[ALICE], user_principal_ids=[ALICE_P], group_principal_ids=["genericoidc_group://devs"]
    )
    ids = {b.id for b in found}
    assert {"p-r2d9w:prtb-7fw2d", "p-j5c2l:prtb-b5w3c", "c-m-9hb3n5kp-p-w7g4s:prtb-9qz4t"} <= ids
    assert {"c-7xk2p:crtb-x2v9k", "c-m-9hb3n5kp:crtb-v8f2z", "grb-w2j6t"} <= ids
    prtb = next(b for b in found if b.id == "p-r2d9w:prtb-7fw2d")
    assert (prtb.scope, prtb.cluster_id, prtb.project_id) == (Scope.PROJECT, "c-7xk2p", "c-7xk2p:p-r2d9w")


async def test_ignored_filter_key_does_not_widen_the_answer(rancher: RancherClient, emulator: RancherEmulator) -> None:
    """When Rancher ignores a filter and returns everything, the re-check drops what was not asked for."""
    emulator.configure(ignored_filters=("userPrincipalId",))
    found = await rancher.list_bindings(user_principal_ids=[ALICE_P])
    assert found
    assert all(b.user_principal_id == ALICE_P for b in found)
    everything = len(emulator.objects("clusterRoleTemplateBinding")) + len(
        emulator.objects("projectRoleTemplateBinding")
    )
    assert len(found) < everything


@pytest.mark.parametrize(
    ("status", "method", "error_type"),
    [
        (403, "GET", PermanentUpstreamError),
        (404, "GET", PermanentUpstreamError),
        (422, "GET", PermanentUpstreamError),
        (429, "GET", TransientUpstreamError),
        (500, "GET", TransientUpstreamError),
        (503, "GET", TransientUpstreamError),
        (500, "POST", PermanentUpstreamError),
        (409, "POST", ConflictError),
    ],
)
async def test_http_failures_map_to_error_types(
    emulator: RancherEmulator, status: int, method: str, error_type: type[UpstreamError]
) -> None:
    """Each HTTP failure becomes the right typed error carrying status and code."""
    emulator.fail_next("/v3/", status, count=10)
    async with RancherClient(emulator.url, emulator.token_for(BOT), retries=1, backoff=0.001) as client:
        call = client.list_clusters() if method == "GET" else emulator_create(client)
        with pytest.raises(error_type) as caught:
            await call
    assert caught.value.status == status
    assert caught.value.code
    assert caught.value.service == "Rancher"


async def emulator_create(client: RancherClient) -> None:
    """Create one CRTB for alice on dev-eu."""
    await client.create_binding(
        name="crtb-test01",
        cluster_id="c-7xk2p",
        project_id=None,
        role_id="nodes-view",
        user_id=ALICE,
        user_principal_id=None,
        labels={GRANT_LABEL: "g-1"},
        annotations={},
    )


async def test_retries_on_503_then_succeeds(rancher: RancherClient, emulator: RancherEmulator) -> None:
    """Two 503s followed by success: the client retries and returns the data."""
    emulator.fail_next("/v3/clusters", 503, count=2)
    clusters = await rancher.list_clusters()
    assert {c.name for c in clusters} == {"local", "dev-eu", "staging-eu", "prod-eu"}
    assert emulator.request_counts()["by_path"]["GET /v3/clusters"] == 2 + 2


async def test_post_is_not_retried_on_500(rancher: RancherClient, emulator: RancherEmulator) -> None:
    """A 500 on create is Rancher's validator speaking; it is raised at once with Rancher's message."""
    with pytest.raises(PermanentUpstreamError, match="role template") as caught:
        await rancher.create_binding(
            name="crtb-bad01",
            cluster_id="c-7xk2p",
            project_id=None,
            role_id="no-such-role",
            user_id=ALICE,
            user_principal_id=None,
            labels={},
            annotations={},
        )
    assert caught.value.code == "ServerError"
    assert emulator.request_counts()["by_path"]["POST /v3/clusterroletemplatebindings"] == 1


async def test_post_retried_after_503_lands_once(rancher: RancherClient, emulator: RancherEmulator) -> None:
    """A 503 on create is retried; the deterministic name keeps it to one binding."""
    emulator.fail_next("/v3/clusterroletemplatebindings", 503, count=1, method="POST")
    await emulator_create(rancher)
    made = [b for b in emulator.objects("clusterRoleTemplateBinding") if b["name"] == "crtb-test01"]
    assert len(made) == 1


async def test_repeated_create_recognises_409_already_exists(rancher: RancherClient) -> None:
    """Creating the same named binding twice returns the existing one instead of failing."""
    first = await rancher.create_binding(
        name="crtb-twice",
        cluster_id="c-7xk2p",
        project_id=None,
        role_id="nodes-view",
        user_id=ALICE,
        user_principal_id=None,
        labels={GRANT_LABEL: "g-7"},
        annotations={},
    )
    second = await rancher.create_binding(
        name="crtb-twice",
        cluster_id="c-7xk2p",
        project_id=None,
        role_id="nodes-view",
        user_id=ALICE,
        user_principal_id=None,
        labels={GRANT_LABEL: "g-7"},
        annotations={},
    )
    assert first.id == second.id == "c-7xk2p:crtb-twice"
    assert second.labels[GRANT_LABEL] == "g-7"


async def test_same_name_for_another_subject_is_a_conflict(rancher: RancherClient) -> None:
    """A name already used for a different subject raises ConflictError, never returns someone else's binding."""
    await emulator_create(rancher)
    with pytest.raises(ConflictError, match="another role or subject"):
        await rancher.create_binding(
            name="crtb-test01",
            cluster_id="c-7xk2p",
            project_id=None,
            role_id="nodes-view",
            user_id="u-kn3kwqn2hg",
            user_principal_id=None,
            labels={},
            annotations={},
        )


async def test_duplicate_conflict_returns_our_labelled_binding(
    rancher: RancherClient, emulator: RancherEmulator
) -> None:
    """On 2.14 a duplicate under another name (409 Conflict) is adopted only if it carries our label."""
    emulator.add_binding(
        "crtb",
        name="crtb-ours1",
        clusterId="c-7xk2p",
        roleTemplateId="nodes-view",
        userId=ALICE,
        labels={GRANT_LABEL: "g-9"},
    )
    adopted = await rancher.create_binding(
        name="crtb-other",
        cluster_id="c-7xk2p",
        project_id=None,
        role_id="nodes-view",
        user_id=ALICE,
        user_principal_id=None,
        labels={GRANT_LABEL: "g-9"},
        annotations={},
    )
    assert adopted.id == "c-7xk2p:crtb-ours1"
    with pytest.raises(ConflictError, match="not made by the bot"):
        await rancher.create_binding(
            name="crtb-mine1",
            cluster_id="c-7xk2p",
            project_id=None,
            role_id="cluster-member",
            user_id="u-kn3kwqn2hg",
            user_principal_id=None,
            labels={GRANT_LABEL: "g-10"},
            annotations={},
        )


async def test_local_key_binding_an_idp_principal_is_refused(emulator: RancherEmulator) -> None:
    """The reference §4 caveat surfaces as a permanent error with Rancher's message."""
    async with RancherClient(emulator.url, emulator.token_for(ADMIN), retries=0) as client:
        with pytest.raises(PermanentUpstreamError, match="not found") as caught:
            await client.create_binding(
                name="crtb-idp01",
                cluster_id="c-7xk2p",
                project_id=None,
                role_id="nodes-view",
                user_id=None,
                user_principal_id=ALICE_P,
                labels={},
                annotations={},
            )
    assert caught.value.status == 500


async def test_delete_then_delete_again(rancher: RancherClient) -> None:
    """Deleting says gone (204); deleting again says it was already gone (404: nothing was deleted)."""
    made = await rancher.create_binding(
        name="prtb-del01",
        cluster_id="c-7xk2p",
        project_id="c-7xk2p:p-r2d9w",
        role_id="read-only",
        user_id=ALICE,
        user_principal_id=None,
        labels={},
        annotations={},
    )
    assert made.id == "p-r2d9w:prtb-del01"
    assert await rancher.delete_binding(made) is Deletion.GONE
    assert await rancher.delete_binding(made) is Deletion.ALREADY_GONE


async def test_users_me_and_unknown_user(rancher: RancherClient) -> None:
    """me() is the key's user; get_user of a never-seen id is None."""
    me = await rancher.me()
    assert me.id == BOT
    assert await rancher.get_user("u-khfcip2n77") is None
    alice = await rancher.get_user(ALICE)
    assert alice is not None
    assert alice.principal_ids == (ALICE_P, f"local://{ALICE}")


async def test_names_are_cached(rancher: RancherClient, emulator: RancherEmulator) -> None:
    """Role templates are read once within the cache TTL."""
    await rancher.list_role_templates()
    await rancher.list_role_templates()
    pages = emulator.request_counts()["by_path"]["GET /v3/roletemplates"]
    assert pages == 8  # 16 role templates at 2 a page, read once


async def test_api_key_never_appears(emulator: RancherEmulator, caplog: pytest.LogCaptureFixture) -> None:
    """The key is absent from repr, str, error texts and log lines."""
    secret = emulator.token_for(BOT).split(":", 1)[1]
    caplog.set_level(logging.DEBUG)
    client = RancherClient(emulator.url, emulator.token_for(BOT) + "x", retries=1, backoff=0.001, verify_tls=False)
    try:
        assert secret not in repr(client)
        assert secret not in str(client)
        with pytest.raises(PermanentUpstreamError) as caught:
            await client.list_clusters()
        emulator.fail_next("/v3/", 503, count=1)
        report = await client.check()
    finally:
        await client.aclose()
    assert caught.value.status == 401
    for text in (str(caught.value), repr(caught.value), caught.value.message, repr(report), caplog.text):
        assert secret not in text
    assert "TLS verification is OFF" in caplog.text


async def test_rancher_down_is_transient_with_a_clear_message() -> None:
    """Connection refused becomes TransientUpstreamError naming the URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    async with RancherClient(url, "token-abcde:secret", retries=1, backoff=0.001) as client:
        with pytest.raises(TransientUpstreamError) as caught:
            await client.list_clusters()
    assert str(caught.value) == f"Rancher: cannot connect to {url} (is Rancher up?)"


async def test_check_reports_key_provider_and_warnings(emulator: RancherEmulator) -> None:
    """check() names the key's user, provider and version, and warns about a local key with IdP principals."""
    async with RancherClient(emulator.url, emulator.token_for(BOT)) as client:
        good = await client.check("genericoidc")
    assert good.ok
    assert (good.user_id, good.auth_provider, good.server_version, good.is_admin) == (
        BOT,
        "genericoidc",
        "v2.14.4",
        True,
    )
    assert good.warnings == ()
    async with RancherClient(emulator.url, emulator.token_for(ADMIN)) as client:
        local = await client.check("genericoidc")
    assert local.auth_provider == "local"
    assert any("local provider" in w for w in local.warnings)


async def test_check_when_rancher_is_down() -> None:
    """check() reports unreachable with the reason instead of raising."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with RancherClient(f"http://127.0.0.1:{port}", "token-abcde:secret", retries=0) as client:
        report = await client.check()
    assert not report.ok
    assert not report.reachable
    assert "cannot connect" in report.problems[0]


async def test_labelled_bindings_are_found_across_both_kinds(rancher: RancherClient, emulator: RancherEmulator) -> None:
    """Bindings carrying the grant label are found among CRTBs and PRTBs; unlabelled ones are not."""
    emulator.add_binding(
        "prtb",
        name="prtb-lab01",
        projectId="c-m-9hb3n5kp:p-w7g4s",
        roleTemplateId="read-only",
        userId=ALICE,
        labels={GRANT_LABEL: "g-2"},
    )
    found = await rancher.list_labelled_bindings(GRANT_LABEL)
    assert sorted((b.id, b.labels[GRANT_LABEL]) for b in found) == [
        ("c-m-9hb3n5kp-p-w7g4s:prtb-lab01", "g-2"),
        ("c-m-9hb3n5kp:crtb-accessbot-g0192", "g-0192"),
    ]
