"""Group answers: claim values, directory entries, Rancher-style path splitting, names the policy matches."""

from __future__ import annotations

from bot.core.groups import MAX_GROUPS, from_directory, from_values, label, policy_names


def test_claim_values_are_deduplicated_in_order_and_empty_ones_dropped() -> None:
    """`["b", "a", "b", ""]` is the answer `b, a`."""
    assert from_values(["b", "a", "b", ""]).ids == ("b", "a")


def test_path_format_splits_every_element_like_rancher() -> None:
    """rancher v2.15.0 oidc_provider.go getGroupsFromClaimInfo: `/g1/g2` and `/g3` give g1, g2, g3."""
    assert from_values(["/g1/g2", "/g3"], "path").ids == ("g1", "g2", "g3")
    assert from_values(["plain"], "path").ids == ("plain",)


def test_name_format_keeps_a_slash_as_part_of_the_name() -> None:
    """Without `path`, `/eng` is one group called `/eng`."""
    assert from_values(["/eng"]).ids == ("/eng",)


def test_directory_entries_keep_names_beside_ids() -> None:
    """Ids are canonical; a display name equal to the id is not kept twice."""
    answer = from_directory([("1f2e", "Platform"), ("1f2e", "dup"), ("99", "99")])
    assert (answer.ids, dict(answer.names)) == (("1f2e", "99"), {"1f2e": "Platform"})


def test_policy_matches_ids_and_display_names() -> None:
    """A rule may name a GUID group by its id or by its display name."""
    assert policy_names(("1f2e", "aa"), {"1f2e": "Platform"}) == ("1f2e", "aa", "Platform")


def test_label_shows_the_name_and_a_short_id() -> None:
    """`Platform (1f2e3d4c…)`; an unnamed group shows its id."""
    assert label("1f2e3d4c-0000-1111-2222-333344445555", {"1f2e3d4c-0000-1111-2222-333344445555": "Platform"}) == (
        "Platform (1f2e3d4c…)"
    )
    assert label("eng", {}) == "eng"


def test_hostile_group_lists_are_bounded() -> None:
    """Oversized values are dropped and at most MAX_GROUPS groups are kept."""
    answer = from_values(["x" * 10_000, *(f"g{i}" for i in range(MAX_GROUPS + 50))])
    assert len(answer.ids) == MAX_GROUPS
    assert answer.ids[0] == "g0"
