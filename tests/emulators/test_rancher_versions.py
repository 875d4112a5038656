"""The Rancher emulator per version (2.7-2.15): each behaviour that differs, tested against the source it comes from."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from accessbot_emulators.rancher import EmulatorSettings, RancherEmulator, main, run_emulator
from accessbot_emulators.rancher.profiles import BEHAVIOURS, SUPPORTED, parse_version, profile_for

BOT = "u-yenqfdbhnr"  # genericoidc key, global admin
ADMIN = "user-b7k2p"  # local key, global admin
ALICE = "u-x7xfihrhhs"
CAROL = "u-mvd3xglko4"
ERIN = "u-r8t2w"
DAVE_P = "genericoidc_user://0d9c8b7a-6e5f-4d3c-2b1a-9f8e7d6c5b4a"
VERSIONS = ["v2.7.18", "v2.8.9", "v2.9.3", "v2.10.6", "v2.11.2", "v2.12.1", "v2.13.3", "v2.14.4", "v2.15.0"]
CLUSTERS = ("c-7xk2p", "c-m-4q8zt2wd", "c-m-9hb3n5kp")  # the non-local clusters of the demo estate


@pytest.fixture(scope="module")
def emulator() -> Iterator[RancherEmulator]:
    """One emulator for the module; each test picks the version it plays."""
    with run_emulator(settings=EmulatorSettings()) as emu:
        yield emu


@pytest.fixture(params=VERSIONS)
def version(request: pytest.FixtureRequest, emulator: RancherEmulator) -> Iterator[tuple[int, int]]:
    """The emulator re-seeded as one Rancher version; yields (major, minor)."""
    emulator.configure(server_version=request.param, fill_delay=0.0, finalizer_delay=0.0, page_size=1000)
    emulator.reset()
    yield parse_version(request.param)
    emulator.configure(server_version="v2.14.4")


def http(emulator: RancherEmulator, user: str = BOT) -> httpx.Client:
    """A client holding the first key of `user`."""
    return httpx.Client(
        base_url=emulator.url,
        headers={"Authorization": f"Bearer {emulator.token_for(user)}", "Accept": "application/json"},
    )


def create(emulator: RancherEmulator, user: str, kind: str, body: dict[str, Any]) -> httpx.Response:
    """POST one binding as `user`."""
    with http(emulator, user) as client:
        return client.post(f"/v3/{kind}roletemplatebindings", json=body)


def test_every_behaviour_names_its_source() -> None:
    """Each row of the version table cites a path at a tag and says what differs."""
    for behaviour in BEHAVIOURS:
        assert "@v" in behaviour.source, behaviour.name
        assert behaviour.what
    assert tuple(f"2.{m}" for m in range(7, 16)) == SUPPORTED
    with pytest.raises(ValueError, match=r"2\.7 to 2\.15"):
        profile_for("v2.6.14")


def test_api_key_is_never_current_and_the_token_list_ignores_filters(
    emulator: RancherEmulator, version: tuple[int, int]
) -> None:
    """`current` is false for a derived key and `?current=true` filters nothing (tokens/manager.go, api.go)."""
    emulator.add_token(name="token-z9k2x", secret="s" * 54, userId=BOT, authProvider="genericoidc", isDerived=True)
    with http(emulator) as client:
        body = client.get("/v3/tokens", params={"current": "true", "name": "nothing-matches"}).json()
    assert sorted(t["name"] for t in body["data"]) == ["token-b9t4n", "token-z9k2x"]
    assert all(t["current"] is False for t in body["data"])
    assert "pagination" not in body


def test_own_key_is_read_by_name_and_others_are_404(emulator: RancherEmulator, version: tuple[int, int]) -> None:
    """GET /v3/tokens/<name> returns the caller's own token; another user's is 404 (manager.go getTokenByID)."""
    with http(emulator) as client:
        mine = client.get("/v3/tokens/token-b9t4n")
        theirs = client.get("/v3/tokens/token-qz2lc")
    assert mine.status_code == 200
    assert (mine.json()["authProvider"], mine.json()["userId"], mine.json()["isDerived"]) == ("genericoidc", BOT, True)
    assert theirs.status_code == 404


def test_escalation_is_422_invalid(emulator: RancherEmulator, version: tuple[int, int]) -> None:
    """Granting a role one does not hold is 422 Invalid in every version (webhook pkg/auth/escalation.go@v0.3.13+)."""
    body = {"clusterId": "c-7xk2p", "roleTemplateId": "cluster-owner", "groupPrincipalId": "genericoidc_group://sre"}
    response = create(emulator, ALICE, "cluster", body)
    assert (response.status_code, response.json()["code"]) == (422, "Invalid")


def test_admin_by_a_group_grb_to_a_custom_admin_equivalent_role_may_grant(
    emulator: RancherEmulator, version: tuple[int, int]
) -> None:
    """A custom global role with */*/* and nonResourceURLs * held through a group is admin (rbac/common.go)."""
    emulator.add_token(
        name="token-c4r0l",
        secret="c" * 54,
        userId=CAROL,
        authProvider="genericoidc",
        groupPrincipals=["genericoidc_group://ops-admins"],
    )
    body = {"clusterId": "c-7xk2p", "roleTemplateId": "cluster-owner", "groupPrincipalId": "genericoidc_group://sre"}
    with httpx.Client(base_url=emulator.url, headers={"Authorization": f"Bearer token-c4r0l:{'c' * 54}"}) as client:
        response = client.post("/v3/clusterroletemplatebindings", json={**body, "name": "crtb-ops01"})
    assert response.status_code == 201, response.text


def test_genericoidc_key_accepts_any_provider_user_principal(
    emulator: RancherEmulator, version: tuple[int, int]
) -> None:
    """From 2.9 genericoidc resolves any `<x>_user://` (genericoidc_provider.go); before, it does not exist (500)."""
    body = {"clusterId": "c-7xk2p", "roleTemplateId": "nodes-view", "userPrincipalId": "okta_user://someone"}
    response = create(emulator, BOT, "cluster", {**body, "name": "crtb-okta1"})
    if version >= (2, 9):
        assert response.status_code == 201, response.text
        assert response.json()["annotations"]["auth.cattle.io/principal-display-name"] == "someone"
    else:
        assert (response.status_code, response.json()["code"]) == (500, "ServerError")


def test_local_key_cannot_bind_an_idp_user_principal(emulator: RancherEmulator, version: tuple[int, int]) -> None:
    """A local key resolves `x_user://<sub>` as a user named <sub>: 500 not found (local_auth_provider.go)."""
    body = {"clusterId": "c-7xk2p", "roleTemplateId": "nodes-view", "userPrincipalId": DAVE_P}
    response = create(emulator, ADMIN, "cluster", body)
    assert response.status_code == 500
    assert response.json()["message"] == f'user.management.cattle.io "{DAVE_P.split("://")[1]}" not found'


def test_hashed_principal_label_key_is_upper_case(emulator: RancherEmulator, version: tuple[int, int]) -> None:
    """A user made for a principal carries base32hex(principal) UPPER case (usermanager.go checkLabels)."""
    body = {"clusterId": "c-7xk2p", "roleTemplateId": "nodes-view", "userPrincipalId": DAVE_P, "name": "crtb-dave2"}
    assert create(emulator, BOT if version >= (2, 9) else ADMIN, "cluster", body).status_code in (201, 500)
    if version < (2, 9):
        return  # no genericoidc to resolve the principal with
    user = next(u for u in emulator.objects("user") if DAVE_P in u["principalIds"])
    key = base64.b32hexencode(DAVE_P.encode()).decode().rstrip("=")[:63]
    assert key == key.upper()
    assert user["labels"][key] == "hashed-principal-name"


def test_limit_zero_is_an_empty_page(emulator: RancherEmulator, version: tuple[int, int]) -> None:
    """limit=0 gives no items; -2 gives the default; -1 the maximum (norman parse/collection.go parsePagination)."""
    with http(emulator) as client:
        empty = client.get("/v3/projects", params={"limit": "0"}).json()
        negative = client.get("/v3/projects", params={"limit": "-2"}).json()
        most = client.get("/v3/projects", params={"limit": "-1"}).json()
    assert empty["data"] == []
    assert empty["pagination"]["total"] == 14
    assert "next" not in empty["pagination"]
    assert negative["pagination"]["limit"] == 1000
    assert most["pagination"]["limit"] == 10000


def test_unknown_project_is_404_until_2_11_and_500_from_2_12(
    emulator: RancherEmulator, version: tuple[int, int]
) -> None:
    """Before 2.12 the namespace is missing (404); 2.12+ looks the project up first (scoped/store.go: 500)."""
    body = {"projectId": "c-7xk2p:p-nope1", "roleTemplateId": "read-only", "userId": ALICE}
    response = create(emulator, BOT, "project", body)
    expected = (500, "ServerError") if version >= (2, 12) else (404, "NotFound")
    assert (response.status_code, response.json()["code"]) == expected
    assert "p-nope1" in response.json()["message"]


def test_grb_user_principal_exists_only_from_2_11(emulator: RancherEmulator, version: tuple[int, int]) -> None:
    """GRB `userPrincipalId` is a field from 2.11 (authz_types.go); before, its filter is ignored: every GRB comes."""
    with http(emulator) as client:
        body = client.get("/v3/globalrolebindings", params={"userPrincipalId": "genericoidc_user://nobody"}).json()
    everything = len(emulator.objects("globalRoleBinding"))
    if version >= (2, 11):
        assert body["data"] == []
    else:
        assert len(body["data"]) == everything > 0
        assert all("userPrincipalId" not in g for g in body["data"])


@pytest.mark.parametrize("kind", ["cluster", "project"])
def test_duplicates_are_refused_from_2_14_for_crtbs_and_2_15_for_prtbs(
    emulator: RancherEmulator, version: tuple[int, int], kind: str
) -> None:
    """webhook validator.go: CRTB duplicates 409 from v0.10.0 (Rancher 2.14), PRTB from v0.11.0 (2.15)."""
    if kind == "cluster":
        body = {"clusterId": "c-m-4q8zt2wd", "roleTemplateId": "cluster-owner"}
        body["groupPrincipalId"] = "genericoidc_group://sre"
    else:
        body = {"projectId": "c-7xk2p:p-4mz8q", "roleTemplateId": "project-owner"}
        body["groupPrincipalId"] = "genericoidc_group://payments-team"
    response = create(emulator, BOT, kind, {**body, "name": f"{kind[0]}rtb-dup01"})
    refused = version >= ((2, 14) if kind == "cluster" else (2, 15))
    if refused:
        assert (response.status_code, response.json()["code"]) == (409, "Conflict")
        assert f"duplicate {kind[0]}rtb not allowed" in response.json()["message"]
    else:
        assert response.status_code == 201, response.text


def test_restricted_admin_by_version(emulator: RancherEmulator, version: tuple[int, int]) -> None:
    """2.7: the role, no CRTB; 2.8-2.10: a labelled cluster-owner CRTB per non-local cluster; 2.11+: no role."""
    roles = {g["id"] for g in emulator.objects("globalRole")}
    crtbs = [
        b
        for b in emulator.objects("clusterRoleTemplateBinding")
        if (b.get("labels") or {}).get("field.cattle.io/source") == "restrictedAdminsClusterOwner"
    ]
    if version >= (2, 11):
        assert "restricted-admin" not in roles  # role_data.go@v2.11.0
        assert crtbs == []
    elif version >= (2, 8):  # restrictedadminrbac/cluster.go@v2.8.0-v2.10.0
        assert sorted(b["clusterId"] for b in crtbs) == list(CLUSTERS)
        assert {(b["roleTemplateId"], b["userId"], b["name"]) for b in crtbs} == {
            ("cluster-owner", ERIN, f"{ERIN}-restricted-admin-cluster-owner")
        }
    else:  # globalrole_handler.go@v2.7.0: cluster-admin downstream, nothing in v3
        assert "restricted-admin" in roles
        assert crtbs == []


def test_inherited_cluster_roles_appear_from_2_8(emulator: RancherEmulator, version: tuple[int, int]) -> None:
    """`inheritedClusterRoles` exist from 2.8 (authz_types.go@v2.8.0): crtb-grb-* CRTBs, none on 2.7."""
    inherited = [b for b in emulator.objects("clusterRoleTemplateBinding") if b["name"].startswith("crtb-grb-")]
    if version >= (2, 8):
        assert sorted(b["clusterId"] for b in inherited) == list(CLUSTERS)
    else:
        assert inherited == []


def test_project_namespaces_by_version(emulator: RancherEmulator, version: tuple[int, int]) -> None:
    """2.12+ projects have `backingNamespace` (new ones `c-…-p-…`); before, every PRTB id uses the project name."""
    with http(emulator) as client:
        project = client.get("/v3/projects/c-7xk2p:p-4mz8q").json()
    prtb = next(b for b in emulator.objects("projectRoleTemplateBinding") if b["name"] == "prtb-2kd8m")
    if version >= (2, 12):
        assert project["backingNamespace"] == "c-7xk2p-p-4mz8q"
        assert prtb["id"] == "c-7xk2p-p-4mz8q:prtb-2kd8m"
    else:
        assert "backingNamespace" not in project
        assert prtb["id"] == "p-4mz8q:prtb-2kd8m"


def test_role_template_inheritance_is_served(emulator: RancherEmulator, version: tuple[int, int]) -> None:
    """Role templates carry `roleTemplateIds` (norman rename of roleTemplateNames) and `rules` (role_data.go)."""
    with http(emulator) as client:
        owner = client.get("/v3/roletemplates/cluster-owner").json()
        lead = client.get("/v3/roletemplates/project-lead").json()
    assert owner["rules"] == [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]
    assert lead["roleTemplateIds"] == ["project-member", "workloads-view"]


def test_deleted_binding_stays_removed_until_its_finalizers_run(
    emulator: RancherEmulator, version: tuple[int, int]
) -> None:
    """DELETE answers 200 with `removed`; the binding stays listed, `removed`, while finalizers wait (norman delete)."""
    emulator.configure(finalizer_delay=3600.0)
    with http(emulator) as client:
        gone = client.delete("/v3/clusterroletemplatebindings/c-7xk2p:crtb-g4l7s")
        listed = client.get("/v3/clusterroletemplatebindings", params={"name": "crtb-g4l7s"}).json()["data"]
    assert gone.status_code == 200
    assert gone.json()["removed"]
    assert [b["removed"] for b in listed] == [gone.json()["removed"]]


def test_generated_names_are_deterministic_from_2_15(emulator: RancherEmulator, version: tuple[int, int]) -> None:
    """Without a name, 2.15 derives `crtb-` + 10 base32 chars (webhook mutator.go@v0.11.0); before, random 5."""
    body = {"clusterId": "c-7xk2p", "roleTemplateId": "nodes-view", "groupPrincipalId": "genericoidc_group://sre"}
    name = create(emulator, BOT, "cluster", body).json()["name"]
    assert len(name) == len("crtb-") + (10 if version >= (2, 15) else 5)


def test_dev_rancher_refuses_a_version_it_cannot_play(capsys: pytest.CaptureFixture[str]) -> None:
    """`accessbot dev-rancher --version 2.6` exits 2 naming the versions it plays (2.7 to 2.15)."""
    assert main(["--version", "2.6"]) == 2
    assert "2.7 to 2.15" in capsys.readouterr().out
