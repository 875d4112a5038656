"""Identity → Rancher principals and user ids, per the reference's provider table and §3/§5."""

from __future__ import annotations

import base64
import hashlib

import pytest

from bot.core.errors import UserError
from bot.core.principals import derive_user_id, group_principal_id, principal_set, user_principal_id


def test_derive_user_id_matches_rancher_rule() -> None:
    """u- + first 10 chars of lowercase unpadded base32(sha256(principal id))."""
    pid = "genericoidc_user://3f2a9c"
    expected = "u-" + base64.b32encode(hashlib.sha256(pid.encode()).digest()).decode().lower()[:10]
    assert derive_user_id(pid) == expected
    assert derive_user_id("genericoidc_user://3f2a9c1e-5b7d-4e8a-9c0f-1a2b3c4d5e6f") == "u-x7xfihrhhs"


@pytest.mark.parametrize(
    ("provider", "subject", "group", "user_pid", "group_pid"),
    [
        ("genericoidc", "3f2a", "devs", "genericoidc_user://3f2a", "genericoidc_group://devs"),
        ("keycloakoidc", "kc-id", "ops", "keycloakoidc_user://kc-id", "keycloakoidc_group://ops"),
        ("cognito", "sub1", "g1", "cognito_user://sub1", "cognito_group://g1"),
        ("azuread", "oid", "gid", "azuread_user://oid", "azuread_group://gid"),
        ("googleoauth", "123", "g@x", "googleoauth_user://123", "googleoauth_group://g@x"),
        ("okta", "alice", "eng", "okta_user://alice", "okta_group://eng"),
        ("github", "42", "7", "github_user://42", "github_team://7"),
        ("github", "42", "org:9", "github_user://42", "github_org://9"),
        (
            "activedirectory",
            "CN=a,DC=x",
            "CN=g,DC=x",
            "activedirectory_user://CN=a,DC=x",
            "activedirectory_group://CN=g,DC=x",
        ),
    ],
)
def test_provider_table(provider: str, subject: str, group: str, user_pid: str, group_pid: str) -> None:
    """Each provider maps subject and group to its documented principal ids."""
    assert user_principal_id(provider, subject) == user_pid
    assert group_principal_id(provider, group) == group_pid


def test_principal_set_derives_user_id_and_keeps_group_names() -> None:
    """A principal set carries the derived user id, both principal ids and group names, deduplicated."""
    pset = principal_set("genericoidc", "abc", ["sre", "devs", "sre"])
    assert pset.user_id == derive_user_id("genericoidc_user://abc")
    assert pset.principal_ids == ("genericoidc_user://abc", f"local://{pset.user_id}")
    assert pset.group_principal_ids == ("genericoidc_group://sre", "genericoidc_group://devs")
    assert pset.group_names["genericoidc_group://devs"] == "devs"


def test_full_group_paths_split_into_elements() -> None:
    """`/eng/team-a` becomes groups `eng` and `team-a` when full_group_paths is on."""
    pset = principal_set("keycloakoidc", "s", ["/eng/team-a"], full_group_paths=True)
    assert pset.group_principal_ids == ("keycloakoidc_group://eng", "keycloakoidc_group://team-a")


def test_templates_override_the_table() -> None:
    """Configured templates win over the built-in table."""
    pset = principal_set(
        "okta", "alice@x", ["eng"], user_template="okta_user://{subject}", group_template="okta_group://cn={group}"
    )
    assert pset.user_principal_id == "okta_user://alice@x"
    assert pset.group_principal_ids == ("okta_group://cn=eng",)


def test_local_provider_has_no_groups() -> None:
    """A local principal is the user id itself and has no group principals."""
    pset = principal_set("local", "u-abcde", ["ignored"])
    assert pset.user_principal_id == "local://u-abcde"
    assert pset.user_id == "u-abcde"
    assert pset.group_principal_ids == ()
    assert pset.principal_ids == ("local://u-abcde",)


@pytest.mark.parametrize(
    ("provider", "template"), [("Bad-Name", None), ("okta", "no placeholder"), ("okta", "x://{nope}")]
)
def test_bad_provider_or_template_is_a_user_error(provider: str, template: str | None) -> None:
    """Malformed provider names and templates are refused with a hint."""
    with pytest.raises(UserError):
        user_principal_id(provider, "s", template)
