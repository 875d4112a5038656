"""What each Rancher version implies for the bot, and that it agrees with the emulator's version table."""

from __future__ import annotations

import time

import pytest

from accessbot_emulators.rancher.profiles import (
    DUPLICATE_CRTB_REFUSED,
    DUPLICATE_PRTB_REFUSED,
    GENERICOIDC,
    GRB_USER_PRINCIPAL,
    GROUPS_CLAIM,
    INHERITED_CLUSTER_ROLES,
    RESTRICTED_ADMIN_CLUSTER_ADMIN,
    RESTRICTED_ADMIN_CRTBS,
    ROLES_AS_GROUPS,
    SUPPORTED,
    UNKNOWN_PROJECT_500,
    profile_for,
)
from bot.core.rancher_versions import FACTS, features_of, parse_version

SAME_FACT = {
    "inherited_cluster_roles": INHERITED_CLUSTER_ROLES,
    "genericoidc": GENERICOIDC,
    "restricted_admin_cluster_admin": RESTRICTED_ADMIN_CLUSTER_ADMIN,
    "restricted_admin_crtbs": RESTRICTED_ADMIN_CRTBS,
    "grb_user_principal": GRB_USER_PRINCIPAL,
    "unknown_project_500": UNKNOWN_PROJECT_500,
    "groups_claim": GROUPS_CLAIM,
    "roles_as_groups": ROLES_AS_GROUPS,
    "duplicate_crtbs_refused": DUPLICATE_CRTB_REFUSED,
    "duplicate_prtbs_refused": DUPLICATE_PRTB_REFUSED,
}


@pytest.mark.parametrize("version", SUPPORTED)
def test_the_bot_and_the_emulator_agree_on_every_version(version: str) -> None:
    """Both tables were read from the same sources; for 2.7-2.15 they give the same answer for every fact."""
    features, profile = features_of(version), profile_for(version)
    assert {fact.key for fact in FACTS} == set(SAME_FACT)
    for key, behaviour in SAME_FACT.items():
        assert features.has(key) is profile.has(behaviour), (version, key)


def test_every_fact_cites_its_source() -> None:
    """Each fact names a file at a tag of rancher or the webhook."""
    assert all("@v" in fact.source and fact.meaning for fact in FACTS)


@pytest.mark.parametrize(
    ("version", "expected"),
    [("v2.12.3", (2, 12)), ("2.9", (2, 9)), ("v2.15.0-rc2", (2, 15)), ("master-head", None), ("", None)],
)
def test_versions_are_read_as_rancher_writes_them(version: str, expected: tuple[int, int] | None) -> None:
    """`server-version` values such as `v2.12.3` give (major, minor); anything else is unknown."""
    assert parse_version(version) == expected


def test_an_unreadable_version_is_taken_as_the_newest() -> None:
    """Unknown versions assume the newest behaviour (answers are re-checked anyway) and say so."""
    features = features_of("master-head")
    assert not features.known
    assert features.has("grb_user_principal")


def test_implications_say_what_differs() -> None:
    """2.13 accepts duplicates of both kinds; 2.14 only of project bindings; 2.7 lacks genericoidc."""
    old = features_of("v2.13.1").implications()
    assert any("duplicate cluster and project bindings are accepted" in line for line in old)
    assert any("duplicate project bindings are accepted" in line for line in features_of("v2.14.4").implications())
    assert not any("generic OIDC" in line for line in features_of("v2.7.18").implications())
    assert not features_of("v2.6.9").supported


def test_a_pathological_version_string_is_read_quickly() -> None:
    """Hostile input: 1 MB version strings (digits past int's limit too) are refused fast (0.2 s, best of 3)."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        assert parse_version("v" + "9" * 1_000_000 + "x") is None
        assert parse_version("v" + "9" * 1_000_000 + ".9") is None
        assert parse_version(" " * 1_000_000 + "v2.9") is None
        best = min(best, time.perf_counter() - started)
    assert best < 0.2
