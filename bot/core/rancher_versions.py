"""What a Rancher version implies for the bot (2.7 to 2.15), each fact with the Rancher source it was read from.

The bot reads `server-version` once (cached) and asks `features_of(version)` what the server does; an unreadable
version is taken as the newest known, since every answer is re-checked anyway (filters Rancher ignores widen an
answer, never narrow it). The emulator keeps its own table of the same facts (accessbot_emulators/rancher/
profiles.py); tests/core/test_rancher_versions.py checks that the two agree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

OLDEST_SUPPORTED = (2, 7)
NEWEST_KNOWN = (2, 15)


@dataclass(frozen=True)
class VersionFact:
    """One thing that differs between Rancher versions: since when (and until when), why it matters, the source."""

    key: str
    since: tuple[int, int]
    until: tuple[int, int] | None
    meaning: str
    source: str


FACTS: tuple[VersionFact, ...] = (
    VersionFact(
        "inherited_cluster_roles",
        (2, 8),
        None,
        "global roles can grant cluster roles in every downstream cluster (shown as `crtb-grb-*` bindings)",
        "rancher pkg/apis/management.cattle.io/v3/authz_types.go@v2.8.0 GlobalRole.InheritedClusterRoles",
    ),
    VersionFact(
        "genericoidc",
        (2, 9),
        None,
        "the generic OIDC auth provider (`genericoidc_user://<sub>`) exists",
        "rancher pkg/auth/providers/genericoidc/ (absent @v2.8.0, present @v2.9.0)",
    ),
    VersionFact(
        "restricted_admin_cluster_admin",
        (2, 7),
        (2, 8),
        "restricted-admin is cluster-admin in every downstream cluster, with no binding to show it",
        "rancher pkg/controllers/managementuser/rbac/globalrole_handler.go@v2.7.0 isAdminRole",
    ),
    VersionFact(
        "restricted_admin_crtbs",
        (2, 8),
        (2, 11),
        "restricted-admin holds cluster-owner in every downstream cluster through labelled CRTBs",
        "rancher pkg/controllers/management/restrictedadminrbac/cluster.go@v2.8.0-v2.10.0 clusterOwnerSync",
    ),
    VersionFact(
        "grb_user_principal",
        (2, 11),
        None,
        "global role bindings can name a user principal; before 2.11 that filter is ignored, so it is not sent",
        "rancher pkg/apis/management.cattle.io/v3/authz_types.go@v2.11.0 GlobalRoleBinding.UserPrincipalName",
    ),
    VersionFact(
        "unknown_project_500",
        (2, 12),
        None,
        "a binding to an unknown project is answered 500 (before: 404); the bot reads both as a refusal",
        "rancher pkg/api/norman/store/scoped/store.go@v2.12.0 Create (projectCache.Get)",
    ),
    VersionFact(
        "groups_claim",
        (2, 12),
        None,
        "Rancher's OIDC providers read groups from a configurable claim",
        "rancher pkg/auth/providers/oidc/oidc_provider.go@v2.12.0 config.GroupsClaim",
    ),
    VersionFact(
        "roles_as_groups",
        (2, 13),
        None,
        "Rancher's OIDC providers also turn `roles` claim values into groups",
        "rancher pkg/auth/providers/oidc/oidc_provider.go@v2.13.0 getGroupsFromClaimInfo",
    ),
    VersionFact(
        "duplicate_crtbs_refused",
        (2, 14),
        None,
        "a duplicate cluster binding is refused (409 Conflict); before, Rancher accepts it and the bot checks first",
        "webhook pkg/resources/management.cattle.io/v3/clusterroletemplatebinding/validator.go@v0.10.0",
    ),
    VersionFact(
        "duplicate_prtbs_refused",
        (2, 15),
        None,
        "a duplicate project binding is refused (409 Conflict); before, Rancher accepts it and the bot checks first",
        "webhook pkg/resources/management.cattle.io/v3/projectroletemplatebinding/validator.go@v0.11.0",
    ),
)
"""Every version-dependent fact the bot relies on, oldest first."""


def parse_version(text: str) -> tuple[int, int] | None:
    """(major, minor) of `v2.12.3` or `2.12`; None when unreadable (e.g. `master-head`)."""
    match = re.match(r"\s{0,8}v?(\d{1,6})\.(\d{1,6})", (text or "")[:64])
    return (int(match.group(1)), int(match.group(2))) if match else None


@dataclass(frozen=True)
class RancherFeatures:
    """What the server does, by version; `known` is False when the version could not be read (newest assumed)."""

    version: tuple[int, int]
    known: bool = True

    def has(self, key: str) -> bool:
        """Whether the fact `key` (one of FACTS) holds for this version."""
        fact = next((f for f in FACTS if f.key == key), None)
        if fact is None:
            raise KeyError(key)
        return fact.since <= self.version and (fact.until is None or self.version < fact.until)

    @property
    def supported(self) -> bool:
        """True for 2.7 or newer (older servers are not supported)."""
        return self.version >= OLDEST_SUPPORTED

    def implications(self) -> list[str]:
        """One line per fact that applies (or, for duplicates, does not yet apply) to this version."""
        out = [f.meaning for f in FACTS if self.has(f.key) and not f.key.startswith("duplicate")]
        if not self.has("duplicate_crtbs_refused"):
            out.append("duplicate cluster and project bindings are accepted; the bot checks before it creates")
        elif not self.has("duplicate_prtbs_refused"):
            out.append("duplicate project bindings are accepted (cluster ones refused); the bot checks first")
        return out


def features_of(version: str) -> RancherFeatures:
    """The features of a version string; the newest known version when it cannot be read."""
    parsed = parse_version(version)
    if parsed is None:
        return RancherFeatures(NEWEST_KNOWN, known=False)
    return RancherFeatures(parsed)
