"""The emulator's estate of standing bindings at scale (thousands of user and group CRTBs and PRTBs), served the way
Rancher serves large collections."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from accessbot_emulators.rancher import RancherEmulator, run_emulator, standing_estate
from tests.conftest import BOT_KEY

BINDINGS = 3_000
GRANT_LABEL = "accessbot.io/grant"


@pytest.fixture(scope="module")
def estate() -> Iterator[RancherEmulator]:
    """An emulator seeded with 3,000 standing bindings (default page size 1000, as Rancher's)."""
    with run_emulator(standing_estate(bindings=BINDINGS, clusters=12, users=500, groups=60, seed=7)) as emu:
        yield emu


def standing(emu: RancherEmulator) -> list[dict[str, object]]:
    """Every generated CRTB and PRTB (the demo fixture's and Rancher's own crtb-grb-* left out)."""
    return [
        b
        for t in ("clusterRoleTemplateBinding", "projectRoleTemplateBinding")
        for b in emu.objects(t)
        if str(b["name"]).startswith(("crtb-", "prtb-")) and not str(b["name"]).startswith("crtb-grb-")
        and len(str(b["name"])) == 11
    ]  # fmt: skip


def test_the_generator_makes_as_many_bindings_as_asked_for_users_and_groups(estate: RancherEmulator) -> None:
    """3,000 bindings, CRTBs and PRTBs, for users and groups; a small share is the bot's (grant label)."""
    found = standing(estate)
    assert len(found) == BINDINGS
    kinds = {("clusterId" in b and not b.get("projectId"), bool(b.get("groupPrincipalId"))) for b in found}
    assert kinds == {(crtb, group) for crtb in (True, False) for group in (True, False)}
    bots = sum(1 for b in found if GRANT_LABEL in (b.get("labels") or {}))  # type: ignore[operator]
    assert 0 < bots < BINDINGS * 0.05


def test_the_generator_is_deterministic() -> None:
    """The same seed gives the same estate (benchmarks compare like with like)."""
    assert standing_estate(bindings=200, seed=3) == standing_estate(bindings=200, seed=3)
    assert standing_estate(bindings=200, seed=3) != standing_estate(bindings=200, seed=4)


def test_user_bindings_carry_both_subject_fields_once_settled(estate: RancherEmulator) -> None:
    """Bindings generated with only userId or only userPrincipalId have both after Rancher's controller ran.

    rancher pkg/controllers/management/auth/crtb_handler.go@v2.14.0 (and prtb_handler.go): EnsureUser for a
    principal-only binding, the user's principal filled in for an id-only one (emulator: controllers.fill).
    """
    users = [b for b in standing(estate) if not b.get("groupPrincipalId")]
    assert users
    assert all(b.get("userId") and b.get("userPrincipalId") for b in users)


def test_inherited_cluster_role_bindings_are_labelled_as_rancher_labels_them(estate: RancherEmulator) -> None:
    """A global role's inheritedClusterRoles give `crtb-grb-*` CRTBs in each new non-local cluster, labelled with
    the owning GRB and `app.kubernetes.io/managed-by: rancher`.

    rancher pkg/controllers/management/auth/globalroles/globalrolebinding_handler.go@v2.14.0:264-289 and
    pkg/controllers/options.go@v2.14.0:20-21 (K8sManagedByKey, ManagerValue).
    """
    grb = [b for b in estate.objects("clusterRoleTemplateBinding") if str(b["name"]).startswith("crtb-grb-")]
    assert {b["clusterId"] for b in grb} >= {c["id"] for c in estate.objects("cluster") if c["id"] != "local"}
    assert all(b["labels"]["app.kubernetes.io/managed-by"] == "rancher" for b in grb)
    assert all(b["labels"]["authz.management.cattle.io/grb-owner"] for b in grb)


def test_the_whole_estate_reads_in_marker_pages_of_1000(estate: RancherEmulator) -> None:
    """Listing PRTBs follows `pagination.next`: pages of 1000 (Rancher's default), the marker being the id of the
    next page's first item, until `next` is absent; every binding read once.

    norman parse/collection.go (defaultLimit 1000, maxLimit 10000) and api/handler/query.go:103-104 (marker = id of
    the next page's first item), as pinned by Rancher 2.7-2.15 (shared/reference/rancher-source-check.md row 3).
    """
    stored = {b["id"] for b in estate.objects("projectRoleTemplateBinding")}
    seen: list[str] = []
    pages = 0
    url: str | None = f"{estate.url}/v3/projectroletemplatebindings"
    with httpx.Client(headers={"Authorization": f"Bearer {BOT_KEY}"}, timeout=30) as http:
        while url:
            body = http.get(url).json()
            pages += 1
            ids = [o["id"] for o in body["data"]]
            assert len(ids) <= 1000
            assert body["pagination"]["total"] == len(stored)
            url = body["pagination"].get("next")
            if url:
                (marker,) = parse_qs(urlsplit(url).query)["marker"]
                assert marker > ids[-1]  # sorted by id: the next page starts after this one
            seen += ids
    assert pages == -(-len(stored) // 1000)
    assert len(seen) == len(set(seen)) == len(stored)
    assert set(seen) == stored


def test_one_page_of_10000_is_the_most_rancher_gives(estate: RancherEmulator) -> None:
    """`limit=20000` is served as 10000 (norman parse/collection.go maxLimit): the estate's PRTBs need one page."""
    with httpx.Client(headers={"Authorization": f"Bearer {BOT_KEY}"}, timeout=30) as http:
        body = http.get(f"{estate.url}/v3/projectroletemplatebindings", params={"limit": "20000"}).json()
    assert body["pagination"]["limit"] == 10000
    assert len(body["data"]) == body["pagination"]["total"]
    assert "next" not in body["pagination"]
