"""The Rancher emulator answers as shared/reference/rancher-api.md says Rancher does."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from accessbot_emulators.rancher import (
    EmulatorSettings,
    RancherEmulator,
    generate_estate,
    main,
    run_emulator,
    serve_emulator,
)
from bot.core.principals import derive_user_id

ADMIN = "user-b7k2p"  # local admin, key from the local provider
BOT = "u-yenqfdbhnr"  # admin logged in through genericoidc, key from genericoidc
ALICE = "u-x7xfihrhhs"  # not an admin, genericoidc key
ALICE_P = "genericoidc_user://3f2a9c1e-5b7d-4e8a-9c0f-1a2b3c4d5e6f"
DAVE_P = "genericoidc_user://0d9c8b7a-6e5f-4d3c-2b1a-9f8e7d6c5b4a"


@pytest.fixture(scope="module")
def emulator() -> Iterator[RancherEmulator]:
    """One emulator for the module, page size 2 as the reference's examples."""
    with run_emulator(settings=EmulatorSettings(page_size=2)) as emu:
        yield emu


_OPEN: list[httpx.Client] = []


@pytest.fixture(autouse=True)
def _fresh(emulator: RancherEmulator) -> Iterator[None]:
    emulator.configure(page_size=2, latency=0.0, failure_rate=0.0, server_version="v2.14.4")
    emulator.configure(fill_delay=0.0, finalizer_delay=0.0)
    emulator.reset()
    yield
    while _OPEN:
        _OPEN.pop().close()


def client(emulator: RancherEmulator, user: str = BOT) -> httpx.Client:
    """An httpx client holding the first key of `user`."""
    token = emulator.token_for(user)
    http = httpx.Client(
        base_url=emulator.url, headers={"Authorization": f"Bearer {token}", "Accept": "application/json"}
    )
    _OPEN.append(http)
    return http


def read_all(http: httpx.Client, path: str, params: Any = None) -> list[dict[str, Any]]:
    """Follow pagination.next to the end."""
    out: list[dict[str, Any]] = []
    url: str | None = path
    first = True
    while url:
        page = http.get(url, params=params if first else None).json()
        first = False
        out.extend(page["data"])
        url = page["pagination"].get("next")
    return out


# --- authentication ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer token-x7k2m:wrong"}, {"Authorization": "Bearer token-nope1:x"}],
    ids=["missing", "bad-secret", "unknown-key"],
)
def test_unauthenticated_gets_401_with_string_status(emulator: RancherEmulator, headers: dict[str, str]) -> None:
    """Missing or invalid keys get 401 with `status` as a string and no `code`."""
    response = httpx.get(f"{emulator.url}/v3/clusters", headers=headers)
    assert response.status_code == 401
    assert response.json() == {"type": "error", "status": "401", "message": "must authenticate"}


def test_disabled_key_gets_401(emulator: RancherEmulator) -> None:
    """A disabled API key is refused like an unknown one."""
    secret = "wlg9rwl5rp4qkgdhgk4kbt9xhlmbgrwpzxng5vz246cs748wqqqqft"
    response = httpx.get(f"{emulator.url}/v3/", headers={"Authorization": f"Bearer token-d4v8w:{secret}"})
    assert response.status_code == 401


def test_basic_auth_and_lowercase_scheme_are_accepted(emulator: RancherEmulator) -> None:
    """Basic base64(name:secret) and a lowercase `bearer` both authenticate."""
    token = emulator.token_for(ADMIN)
    basic = base64.b64encode(token.encode()).decode()
    assert httpx.get(f"{emulator.url}/v3/", headers={"Authorization": f"Basic {basic}"}).status_code == 200
    assert httpx.get(f"{emulator.url}/v3/", headers={"Authorization": f"bearer {token}"}).status_code == 200


def test_api_root_lists_collections(emulator: RancherEmulator) -> None:
    """GET /v3/ returns an apiRoot with links per collection and the norman headers."""
    response = client(emulator).get("/v3/")
    body = response.json()
    assert body["type"] == body["baseType"] == "apiRoot"
    assert body["apiVersion"] == {"group": "management.cattle.io", "version": "v3", "path": "/v3"}
    assert body["links"]["clusterRoleTemplateBindings"] == f"{emulator.url}/v3/clusterroletemplatebindings"
    assert response.headers["X-Api-Schemas"] == f"{emulator.url}/v3/schemas"
    assert response.headers["Expires"] == "Wed 24 Feb 1982 18:42:00 GMT"


def test_settings_server_version_needs_auth_but_cacerts_does_not(emulator: RancherEmulator) -> None:
    """cacerts is public; server-version needs a key and reports the configured version."""
    assert httpx.get(f"{emulator.url}/v3/settings/cacerts").json()["id"] == "cacerts"
    assert httpx.get(f"{emulator.url}/v3/settings/server-version").status_code == 401
    assert client(emulator).get("/v3/settings/server-version").json()["value"] == "v2.14.4"


def test_users_me_returns_exactly_the_caller(emulator: RancherEmulator) -> None:
    """`/v3/users?me=true` returns only the key's user, flagged `me`."""
    data = client(emulator, ALICE).get("/v3/users", params={"me": "true"}).json()["data"]
    assert [(u["id"], u["me"]) for u in data] == [(ALICE, True)]
    assert data[0]["principalIds"] == [ALICE_P, f"local://{ALICE}"]


# --- collections ---------------------------------------------------------------------------------------


def test_collection_shape(emulator: RancherEmulator) -> None:
    """A collection carries type, resourceType, links.self, createTypes, filters and pagination."""
    body = client(emulator).get("/v3/clusterroletemplatebindings", params={"userId": ALICE}).json()
    assert body["type"] == "collection"
    assert body["resourceType"] == "clusterRoleTemplateBinding"
    assert body["links"]["self"] == f"{emulator.url}/v3/clusterroletemplatebindings"
    assert "clusterRoleTemplateBinding" in body["createTypes"]
    assert body["filters"]["userId"] == [{"modifier": "eq", "value": ALICE}]
    assert body["filters"]["clusterId"] is None
    assert body["pagination"] == {"limit": 2, "total": 2}
    item = body["data"][0]
    assert item["type"] == item["baseType"] == "clusterRoleTemplateBinding"
    assert item["groupPrincipalId"] is None
    assert item["namespaceId"] is None
    assert isinstance(item["createdTS"], int)


def test_pagination_marker_is_the_first_id_of_each_page(emulator: RancherEmulator) -> None:
    """Pages are sorted by id; `next` carries the id of the next page's first item; all items once."""
    http = client(emulator)
    first = http.get("/v3/projects").json()
    assert first["pagination"]["partial"] is True
    everything = read_all(http, "/v3/projects")
    ids = [p["id"] for p in everything]
    assert ids == sorted(ids)
    assert len(ids) == len(set(ids)) == first["pagination"]["total"] == 14
    assert f"marker={quote(ids[2], safe='')}" in first["pagination"]["next"]


def test_unknown_marker_restarts_and_limits_are_clamped(emulator: RancherEmulator) -> None:
    """An unknown marker starts at index 0; limit=-1 means 10000; an unparsable limit is the default."""
    http = client(emulator)
    assert http.get("/v3/projects", params={"marker": "nope"}).json()["data"][0]["id"] == "c-7xk2p:p-4mz8q"
    assert http.get("/v3/projects", params={"limit": "-1"}).json()["pagination"]["limit"] == 10000
    assert http.get("/v3/projects", params={"limit": "lots"}).json()["pagination"]["limit"] == 2


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"clusterId": "c-7xk2p"}, {"c-7xk2p:p-4mz8q", "c-7xk2p:p-r2d9w", "c-7xk2p:p-d5s7n", "c-7xk2p:p-t8c3v"}),
        ([("name", "payments"), ("clusterId_ne", "c-7xk2p")], {"c-m-4q8zt2wd:p-8vt6x", "c-m-9hb3n5kp:p-j5c2l"}),
        (
            [("name_in", "checkout"), ("name_in", "payload-api")],
            {"c-7xk2p:p-r2d9w", "c-m-9hb3n5kp:p-h3x8f", "c-m-9hb3n5kp:p-w7g4s"},
        ),
        ([("clusterId", "local"), ("name_notin", "System")], {"local:p-9m4kq"}),
        ([("name", "checkout"), ("name", "payments")], {"c-7xk2p:p-r2d9w", "c-m-9hb3n5kp:p-h3x8f"}),
        ({"name_in": "checkout,payments"}, set()),
    ],
    ids=["eq", "ne", "in-repeated", "notin", "repeated-eq-uses-first", "commas-not-split"],
)
def test_filters(emulator: RancherEmulator, params: Any, expected: set[str]) -> None:
    """eq/ne/in/notin filter as documented; repeated plain keys use the first; commas are not split."""
    assert {p["id"] for p in read_all(client(emulator), "/v3/projects", params)} == expected


def test_unknown_filter_key_is_silently_ignored(emulator: RancherEmulator) -> None:
    """A misspelt key (`userPrincipalID`) returns the unfiltered list, so clients must re-check."""
    http = client(emulator)
    everything = read_all(http, "/v3/clusterroletemplatebindings")
    ignored = read_all(http, "/v3/clusterroletemplatebindings", {"userPrincipalID": ALICE_P})
    assert len(ignored) == len(everything) > 2
    body = http.get("/v3/clusterroletemplatebindings", params={"userPrincipalID": ALICE_P}).json()
    assert body["filters"]["userPrincipalId"] is None


def test_sort_desc_and_by_field(emulator: RancherEmulator) -> None:
    """`sort=name&order=desc` orders by that field descending."""
    names = [p["name"] for p in read_all(client(emulator), "/v3/projects", {"sort": "name", "order": "desc"})]
    assert names == sorted(names, reverse=True)


# --- ids and paths -------------------------------------------------------------------------------------


def test_id_formats(emulator: RancherEmulator) -> None:
    """CRTB `cluster:name`, PRTB `<backing namespace>:name` in both styles, IdP user ids derived."""
    http = client(emulator)
    prtbs = {b["name"]: b for b in read_all(http, "/v3/projectroletemplatebindings")}
    assert prtbs["prtb-7fw2d"]["id"] == "p-r2d9w:prtb-7fw2d"
    assert prtbs["prtb-7fw2d"]["projectId"] == "c-7xk2p:p-r2d9w"
    assert prtbs["prtb-2kd8m"]["id"] == "c-7xk2p-p-4mz8q:prtb-2kd8m"
    crtb = http.get("/v3/clusterroletemplatebindings/c-7xk2p:crtb-x2v9k").json()
    assert crtb["userId"] == derive_user_id(ALICE_P) == ALICE
    project = http.get("/v3/projects/c-7xk2p:p-4mz8q").json()
    assert project["backingNamespace"] == "c-7xk2p-p-4mz8q"
    assert project["namespaceId"] is None


def test_paths_are_case_insensitive_and_ids_percent_encoded(emulator: RancherEmulator) -> None:
    """Singular or plural, any case; ids with `:` and `/` work percent-encoded per segment."""
    http = client(emulator, ALICE)
    for path in (
        "/v3/clusterRoleTemplateBindings",
        "/v3/ClusterRoleTemplateBinding",
        "/v3/clusterroletemplatebindings",
    ):
        assert http.get(path).json()["resourceType"] == "clusterRoleTemplateBinding"
    encoded = quote(ALICE_P, safe="")
    assert http.get(f"/v3/principals/{encoded}").json()["id"] == ALICE_P
    assert http.get(f"/v3/clusterroletemplatebindings/{quote('c-7xk2p:crtb-x2v9k', safe='')}").status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/v3/widgets", 404, "NotFound"),
        ("GET", "/v3/clusterroletemplatebindings/crtb-x2v9k", 404, "NotFound"),
        ("GET", "/v3/clusterroletemplatebindings/c-7xk2p:crtb-zzzzz", 404, "NotFound"),
        ("PUT", "/v3/principals/local%3A%2F%2Fuser-b7k2p", 405, "MethodNotAllow"),
        ("DELETE", "/v3/principals/local%3A%2F%2Fuser-b7k2p", 405, "MethodNotAllow"),
        ("GET", "/v3/users/u-sys9x", 404, "NotFound"),
    ],
    ids=["unknown-type", "id-without-colon", "unknown-id", "put-principal", "delete-principal", "system-user"],
)
def test_norman_errors(emulator: RancherEmulator, method: str, path: str, status: int, code: str) -> None:
    """Errors use the norman body with an integer status and a code."""
    response = client(emulator).request(method, path, json={})
    assert response.status_code == status
    body = response.json()
    assert (body["type"], body["status"], body["code"]) == ("error", status, code)


# --- principals ----------------------------------------------------------------------------------------


def test_principals_list_only_the_caller(emulator: RancherEmulator) -> None:
    """GET /v3/principals returns the caller's user principal and its groups, nobody else."""
    data = client(emulator, ALICE).get("/v3/principals").json()["data"]
    assert [(p["id"], p["me"], p["memberOf"]) for p in data] == [
        (ALICE_P, True, False),
        ("genericoidc_group://devs", False, True),
        ("genericoidc_group://payments-team", False, True),
    ]


def test_principal_search_returns_a_collection(emulator: RancherEmulator) -> None:
    """The search action echoes genericoidc text and lists local matches; unknown actions are 422."""
    http = client(emulator)
    body = http.post("/v3/principals", params={"action": "search"}, json={"name": "sre", "principalType": "group"})
    assert body.json()["type"] == "collection"
    assert [p["id"] for p in body.json()["data"]] == ["genericoidc_group://sre"]
    assert http.post("/v3/principals", params={"action": "bogus"}, json={}).json()["code"] == "InvalidAction"


# --- create --------------------------------------------------------------------------------------------

BASE = {"clusterId": "c-7xk2p", "roleTemplateId": "nodes-view", "groupPrincipalId": "genericoidc_group://sre"}


@pytest.mark.parametrize(
    ("changes", "status", "code", "needle"),
    [
        ({"clusterId": None}, 422, "MissingRequired", "clusterId"),
        ({"roleTemplateId": None, "name": "BAD NAME"}, 422, "MissingRequired", "roleTemplateId"),
        ({"name": "Bad_Name", "roleTemplateId": "nope"}, 422, "InvalidFormat", "name"),
        ({"roleTemplateId": "nope", "clusterId": "c-nope1"}, 500, "ServerError", "Error getting role template"),
        ({"roleTemplateId": "legacy-deployer"}, 422, "InvalidState", "locked"),
        ({"roleTemplateId": "project-member"}, 422, "InvalidBodyContent", "Cannot reference context [project]"),
        ({"groupPrincipalId": None}, 422, "InvalidBodyContent", "exactly one"),
        ({"userId": ALICE}, 422, "InvalidBodyContent", "exactly one"),
        ({"clusterId": "c-nope1"}, 400, "BadRequest", "admission webhook"),
    ],
    ids=[
        "missing-scope",
        "missing-role-first",
        "bad-name",
        "unknown-role",
        "locked",
        "context",
        "no-subject",
        "two-subjects",
        "unknown-cluster",
    ],
)
def test_create_checks_in_order(
    emulator: RancherEmulator, changes: dict[str, Any], status: int, code: str, needle: str
) -> None:
    """Each create check fires with its status and code, earlier checks winning."""
    body = {k: v for k, v in {**BASE, **changes}.items() if v is not None}
    response = client(emulator).post("/v3/clusterroletemplatebindings", json=body)
    assert response.status_code == status
    error = response.json()
    assert error["code"] == code
    assert needle in (error.get("fieldName", "") + error["message"])


def test_user_principal_from_another_provider_is_a_500(emulator: RancherEmulator) -> None:
    """A local key binding a genericoidc user principal fails with 500 ServerError (reference §4 caveat)."""
    body = {**BASE, "groupPrincipalId": None, "userPrincipalId": ALICE_P}
    response = client(emulator, ADMIN).post("/v3/clusterroletemplatebindings", json=body)
    assert response.status_code == 500
    assert response.json()["message"] == 'user.management.cattle.io "3f2a9c1e-5b7d-4e8a-9c0f-1a2b3c4d5e6f" not found'


def test_group_binding_works_with_a_local_key(emulator: RancherEmulator) -> None:
    """Group principals skip provider resolution, so any admin key may bind them."""
    response = client(emulator, ADMIN).post("/v3/clusterroletemplatebindings", json={**BASE, "name": "crtb-grp01"})
    assert response.status_code == 201
    created = response.json()
    assert created["id"] == "c-7xk2p:crtb-grp01"
    assert created["creatorId"] == ADMIN
    assert created["labels"]["cattle.io/creator"] == "norman"


def test_non_admin_escalation_is_422_invalid(emulator: RancherEmulator) -> None:
    """A caller who does not hold the role gets 422 Invalid (webhook pkg/auth/escalation.go@v0.3.13-v0.11.0)."""
    response = client(emulator, ALICE).post(
        "/v3/clusterroletemplatebindings", json={**BASE, "roleTemplateId": "cluster-owner"}
    )
    assert response.status_code == 422
    assert response.json()["code"] == "Invalid"
    assert "attempting to grant RBAC permissions not currently held" in response.json()["message"]


def test_user_id_is_filled_in_asynchronously_and_the_user_auto_created(emulator: RancherEmulator) -> None:
    """Binding an unknown principal returns userId null; later reads show the created user, `local://` added last.

    rancher pkg/auth/providers/common/usermanager.go@v2.14.0 EnsureUser creates the user with only the principal;
    pkg/controllers/management/auth/user.go@v2.14.0 userLifecycle.Create appends `local://<id>` afterwards.
    genericoidc_provider.go GetPrincipal names a user principal by its id's tail (the display-name annotation).
    """
    emulator.configure(fill_delay=0.3)
    http = client(emulator)
    body = {"clusterId": "c-7xk2p", "roleTemplateId": "cluster-member", "userPrincipalId": DAVE_P, "name": "crtb-dave1"}
    created = http.post("/v3/clusterroletemplatebindings", json=body).json()
    assert created["userId"] is None
    assert created["annotations"]["auth.cattle.io/principal-display-name"] == DAVE_P.split("://")[1]
    assert http.get(f"/v3/users/{derive_user_id(DAVE_P)}").status_code == 404
    time.sleep(0.35)
    again = http.get("/v3/clusterroletemplatebindings/c-7xk2p:crtb-dave1").json()
    assert again["userId"] == derive_user_id(DAVE_P)
    assert http.get(f"/v3/users/{derive_user_id(DAVE_P)}").json()["principalIds"] == [DAVE_P]
    time.sleep(0.35)
    user = http.get(f"/v3/users/{derive_user_id(DAVE_P)}").json()
    assert user["principalIds"] == [DAVE_P, f"local://{derive_user_id(DAVE_P)}"]


def test_user_principal_is_filled_from_user_id(emulator: RancherEmulator) -> None:
    """Binding by userId gets userPrincipalId `local://<id>` from the controller."""
    http = client(emulator)
    body = {"projectId": "c-7xk2p:p-4mz8q", "roleTemplateId": "read-only", "userId": ALICE, "name": "prtb-fill1"}
    created = http.post("/v3/projectroletemplatebindings", json=body).json()
    assert created["id"] == "c-7xk2p-p-4mz8q:prtb-fill1"
    fetched = http.get(f"/v3/projectroletemplatebindings/{created['id']}").json()
    assert fetched["userPrincipalId"] == f"local://{ALICE}"


@pytest.mark.parametrize(
    ("version", "kind", "expected"),
    [
        ("v2.13.3", "crtb", 201),
        ("v2.14.4", "crtb", 409),
        ("v2.14.4", "prtb", 201),
        ("v2.15.0", "prtb", 409),
    ],
)
def test_duplicates_by_version(emulator: RancherEmulator, version: str, kind: str, expected: int) -> None:
    """Duplicates are accepted before 2.14 (PRTB: 2.15) and refused with 409 Conflict after."""
    emulator.configure(server_version=version)
    http = client(emulator)
    if kind == "crtb":
        path, body = (
            "/v3/clusterroletemplatebindings",
            {**BASE, "clusterId": "c-m-4q8zt2wd", "roleTemplateId": "cluster-owner"},
        )
    else:
        path = "/v3/projectroletemplatebindings"
        body = {
            "projectId": "c-7xk2p:p-4mz8q",
            "roleTemplateId": "project-owner",
            "groupPrincipalId": "genericoidc_group://payments-team",
        }
    response = http.post(path, json={**body, "name": f"{kind}-dup01"})
    assert response.status_code == expected
    if expected == 409:
        assert response.json()["code"] == "Conflict"
        assert f"duplicate {kind} not allowed" in response.json()["message"]


def test_same_name_twice_is_409_already_exists(emulator: RancherEmulator) -> None:
    """Repeating a create with the same explicit name gets 409 AlreadyExists, not a duplicate."""
    http = client(emulator)
    body = {**BASE, "name": "crtb-again"}
    assert http.post("/v3/clusterroletemplatebindings", json=body).status_code == 201
    again = http.post("/v3/clusterroletemplatebindings", json=body)
    assert again.status_code == 409
    assert again.json()["code"] == "AlreadyExists"


def test_generated_names_are_deterministic_on_2_15(emulator: RancherEmulator) -> None:
    """Without a name, 2.15 derives `crtb-` + 10 base32 chars so a racing repeat gets AlreadyExists."""
    emulator.configure(server_version="v2.15.0")
    http = client(emulator)
    created = http.post("/v3/clusterroletemplatebindings", json=BASE).json()
    assert len(created["name"]) == len("crtb-") + 10


# --- update and delete ---------------------------------------------------------------------------------


def test_put_drops_immutable_fields_and_replaces_labels(emulator: RancherEmulator) -> None:
    """PUT silently ignores roleTemplateId/userId changes and replaces non-cattle.io labels."""
    http = client(emulator)
    path = "/v3/clusterroletemplatebindings/c-m-9hb3n5kp:crtb-accessbot-g0192"
    body = {"roleTemplateId": "cluster-owner", "userId": BOT, "labels": {"team": "a"}}
    updated = http.put(path, json=body)
    assert updated.status_code == 200
    got = http.get(path).json()
    assert got["roleTemplateId"] == "cluster-member"
    assert got["userId"] == ALICE
    assert got["labels"] == {"cattle.io/creator": "norman", "team": "a"}


def test_delete_is_200_with_removed_then_the_object_disappears(emulator: RancherEmulator) -> None:
    """DELETE answers 200 with `removed` while finalizers run; afterwards the id is 404."""
    emulator.configure(finalizer_delay=0.2)
    http = client(emulator)
    path = "/v3/projectroletemplatebindings/p-r2d9w:prtb-7fw2d"
    response = http.delete(path)
    assert response.status_code == 200
    assert response.json()["removed"]
    assert http.get(path).status_code == 200
    time.sleep(0.25)
    assert http.get(path).status_code == 404
    assert http.delete(path).status_code == 404


def test_delete_without_finalizers_is_204(emulator: RancherEmulator) -> None:
    """When the object is gone by the re-read, DELETE answers 204 with no body."""
    emulator.configure(finalizer_delay=None)
    response = client(emulator).delete("/v3/clusterroletemplatebindings/c-7xk2p:crtb-g4l7s")
    assert response.status_code == 204
    assert response.content == b""


# --- control plane -------------------------------------------------------------------------------------


def test_fail_next_latency_and_counters(emulator: RancherEmulator) -> None:
    """Injected failures hit matching paths only; counters count /v3 requests per path."""
    http = client(emulator)
    assert http.post("/_emulator/fail", json={"path": "/v3/clusters", "status": 503, "count": 2}).status_code == 200
    http.post("/_emulator/requests/reset")
    assert http.get("/v3/projects").status_code == 200
    assert http.get("/v3/clusters").status_code == 503
    assert http.get("/v3/clusters").json()["code"] == "ServiceUnavailable"
    assert http.get("/v3/clusters").status_code == 200
    counts = http.get("/_emulator/requests").json()
    assert counts["total"] == 4
    assert counts["by_path"] == {"GET /v3/projects": 1, "GET /v3/clusters": 3}
    assert counts["bytes"] > 1000
    http.post("/_emulator/settings", json={"latency": 0.1})
    started = time.monotonic()
    http.get("/v3/")
    assert time.monotonic() - started >= 0.1


def test_control_endpoints_add_objects(emulator: RancherEmulator) -> None:
    """Bindings, clusters and projects added through /_emulator/ are served by /v3."""
    http = client(emulator)
    assert http.post("/_emulator/clusters", json={"id": "c-m-newclust", "name": "new"}).status_code == 201
    http.post("/_emulator/projects", json={"id": "c-m-newclust:p-aaaaa", "name": "web", "style": "old"})
    added = http.post(
        "/_emulator/bindings",
        json={
            "kind": "prtb",
            "name": "prtb-ctl01",
            "projectId": "c-m-newclust:p-aaaaa",
            "roleTemplateId": "read-only",
            "userId": ALICE,
        },
    ).json()
    assert added["id"] == "p-aaaaa:prtb-ctl01"
    assert (
        http.get("/v3/projectroletemplatebindings/p-aaaaa:prtb-ctl01").json()["userPrincipalId"] == f"local://{ALICE}"
    )
    assert http.delete("/_emulator/bindings/p-aaaaa:prtb-ctl01").json() == {"removed": True}
    state = http.get("/_emulator/state").json()
    assert any(c["id"] == "c-m-newclust" for c in state["cluster"])


def test_global_role_inherited_cluster_roles_appear_as_crtb_grb(emulator: RancherEmulator) -> None:
    """A GRB for a role with inheritedClusterRoles yields crtb-grb-* in every non-local cluster."""
    crtbs = read_all(
        client(emulator),
        "/v3/clusterroletemplatebindings",
        {"groupPrincipalId": "genericoidc_group://sre", "roleTemplateId": "cluster-member"},
    )
    assert sorted(b["clusterId"] for b in crtbs) == ["c-7xk2p", "c-m-4q8zt2wd", "c-m-9hb3n5kp"]
    assert all(b["name"].startswith("crtb-grb-") for b in crtbs)
    assert {b["labels"]["authz.management.cattle.io/grb-owner"] for b in crtbs} == {"grb-s9d2l"}


def test_generated_estate_is_deterministic() -> None:
    """The same seed yields the same estate, with the sizes asked for."""
    one = generate_estate(clusters=5, projects=9, bindings=40, groups=3, users=4, seed=3)
    two = generate_estate(clusters=5, projects=9, bindings=40, groups=3, users=4, seed=3)
    assert one == two
    emu = RancherEmulator(one)
    extra = len(emu.objects("clusterRoleTemplateBinding")) + len(emu.objects("projectRoleTemplateBinding"))
    assert extra >= 40
    assert len(emu.objects("project")) == 14 + 9


async def test_async_variant_serves_inside_the_running_loop() -> None:
    """serve_emulator runs on the test's own loop and answers over HTTP."""
    async with serve_emulator(settings=EmulatorSettings(page_size=3)) as emu:
        token = emu.token_for(ALICE)
        async with httpx.AsyncClient(base_url=emu.url, headers={"Authorization": f"Bearer {token}"}) as http:
            body = (await http.get("/v3/projects")).json()
    assert body["pagination"]["limit"] == 3
    assert body["pagination"]["total"] == 14


def test_main_refuses_a_missing_fixture(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`accessbot dev-rancher --fixture MISSING` exits 2 with a one-line reason."""
    assert main(["--fixture", str(tmp_path / "missing.yaml")]) == 2
    assert "cannot build the estate" in capsys.readouterr().out
