"""Group memberships as the bot keeps them: canonical ids, display names, path splitting, and what an answer means.

The rules (every group source and both the link and the refresh follow them):

1. A group source answers with a `GroupsAnswer` (an explicit list, possibly empty) or `None` ("cannot tell": the
   claim is missing, Entra sent an overage pointer and no directory was asked, or the directory refused).
2. At link time, `None` links the user with no groups and warns the security channel.
3. On refresh, `None` keeps the groups the link had and warns; it is never read as "no groups". Only an answer
   replaces them, and only an empty answer from the source that owns groups removes them all.
4. Groups are kept by their canonical value: the claim's value, or the directory's id (Entra object id, Google
   group id), because that is what Rancher's group principals carry. Display names, where a source gives them,
   are kept beside the ids, shown to people, and matched by the policy as well as the ids (`policy_names`).
5. `path` format (Keycloak "Full group path"): each value is split at `/` and every element is a group, exactly
   as Rancher's OIDC providers split `full_group_path` (rancher v2.15.0 `pkg/auth/providers/oidc/oidc_provider.go`,
   `getGroupsFromClaimInfo`), so the bot's groups equal Rancher's group principals.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

MAX_GROUPS = 5000
"""Most groups kept for one user (Graph and Directory page through more; a bigger answer is cut, in order)."""
MAX_GROUP_TEXT = 512
"""Longest group id or name kept; longer values are dropped (no real directory produces them)."""


@dataclass(frozen=True)
class GroupsAnswer:
    """An explicit answer from a group source: canonical ids in order, and display names where known."""

    ids: tuple[str, ...]
    names: Mapping[str, str] = field(default_factory=dict)


def from_values(values: Iterable[str], group_format: Literal["name", "path"] = "name") -> GroupsAnswer:
    """An answer from claim values: deduplicated, empty and oversized values dropped, paths split when asked."""
    out: dict[str, None] = {}
    for value in values:
        parts = [p for p in value.split("/") if p] if group_format == "path" else [value]
        for part in parts:
            if part and len(part) <= MAX_GROUP_TEXT and len(out) < MAX_GROUPS:
                out[part] = None
    return GroupsAnswer(tuple(out))


def from_directory(entries: Iterable[tuple[str, str]]) -> GroupsAnswer:
    """An answer from a directory's (id, display name) pairs, deduplicated by id."""
    ids: dict[str, None] = {}
    names: dict[str, str] = {}
    for group_id, name in entries:
        if not group_id or len(group_id) > MAX_GROUP_TEXT or len(ids) >= MAX_GROUPS or group_id in ids:
            continue
        ids[group_id] = None
        if name and len(name) <= MAX_GROUP_TEXT and name != group_id:
            names[group_id] = name
    return GroupsAnswer(tuple(ids), names)


def policy_names(ids: Sequence[str], names: Mapping[str, str]) -> tuple[str, ...]:
    """What the policy matches a user's groups against: every id, then every display name."""
    return tuple(dict.fromkeys([*ids, *(names[g] for g in ids if g in names)]))


def label(group_id: str, names: Mapping[str, str]) -> str:
    """How a group is shown: `Platform (1f2e3d4c…)` when a display name is known, else the id."""
    name = names.get(group_id)
    if not name:
        return group_id
    short = group_id if len(group_id) <= 12 else group_id[:8] + "…"
    return f"{name} ({short})"
