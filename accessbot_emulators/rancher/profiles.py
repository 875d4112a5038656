"""Rancher versions the emulator plays (2.7 to 2.15): which behaviour each version has, and where that is written.

Every behaviour that differs between versions is one row of BEHAVIOURS: the first minor version that has it, the
first that no longer has it (if any), and the source it was read from (a path at a tag of rancher/rancher or
rancher/webhook; the webhook version each Rancher release ships comes from rancher/rancher `build.yaml`
`webhookVersion`, 2.8 from `package/Dockerfile`). `profile_for("v2.12.3")` answers which rows apply.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

OLDEST = (2, 7)
NEWEST = (2, 15)


@dataclass(frozen=True)
class Behaviour:
    """One behaviour of some Rancher versions: present from `since` (inclusive) until `until` (exclusive)."""

    name: str
    since: tuple[int, int]
    until: tuple[int, int] | None
    source: str
    what: str


GRB_USER_PRINCIPAL = "grb-user-principal"
INHERITED_CLUSTER_ROLES = "inherited-cluster-roles"
GENERICOIDC = "genericoidc"
RESTRICTED_ADMIN_CLUSTER_ADMIN = "restricted-admin-cluster-admin"
RESTRICTED_ADMIN_CRTBS = "restricted-admin-crtbs"
RESTRICTED_ADMIN_ROLE = "restricted-admin-role"
BACKING_NAMESPACE = "backing-namespace"
UNKNOWN_PROJECT_500 = "unknown-project-500"
BINDING_STATUS = "binding-status"
DUPLICATE_CRTB_REFUSED = "duplicate-crtb-refused"
DUPLICATE_PRTB_REFUSED = "duplicate-prtb-refused"
DETERMINISTIC_BINDING_NAMES = "deterministic-binding-names"
GROUPS_CLAIM = "groups-claim"
ROLES_AS_GROUPS = "roles-as-groups"

BEHAVIOURS: tuple[Behaviour, ...] = (
    Behaviour(
        GRB_USER_PRINCIPAL,
        (2, 11),
        None,
        "rancher pkg/apis/management.cattle.io/v3/authz_types.go@v2.11.0 GlobalRoleBinding.UserPrincipalName "
        "(absent @v2.7.0-v2.10.0)",
        "GlobalRoleBindings have `userPrincipalId`; below, the field and its filter do not exist (ignored)",
    ),
    Behaviour(
        INHERITED_CLUSTER_ROLES,
        (2, 8),
        None,
        "rancher pkg/apis/management.cattle.io/v3/authz_types.go@v2.8.0 GlobalRole.InheritedClusterRoles; "
        "pkg/controllers/management/auth/globalroles/globalrolebinding_handler.go (crtb-grb-, grb-owner label)",
        "a global role's `inheritedClusterRoles` become `crtb-grb-*` CRTBs in every non-local cluster",
    ),
    Behaviour(
        GENERICOIDC,
        (2, 9),
        None,
        "rancher pkg/auth/providers/genericoidc/ exists @v2.9.0, absent @v2.8.0",
        "the genericoidc auth provider; its GetPrincipal accepts any `<x>_user://` or `<x>_group://` id "
        '(genericoidc_provider.go `strings.Cut(principalScheme, "_")`)',
    ),
    Behaviour(
        RESTRICTED_ADMIN_ROLE,
        (2, 7),
        (2, 11),
        'rancher pkg/data/management/role_data.go@v2.10.0 addRole("Restricted Admin", "restricted-admin") '
        "(gone @v2.11.0)",
        "the built-in global role `restricted-admin`",
    ),
    Behaviour(
        RESTRICTED_ADMIN_CLUSTER_ADMIN,
        (2, 7),
        (2, 8),
        "rancher pkg/controllers/managementuser/rbac/globalrole_handler.go@v2.7.0 isAdminRole "
        "(`gr.Name == rbac.GlobalAdmin || gr.Name == rbac.GlobalRestrictedAdmin`)",
        "restricted-admin gets cluster-admin in every downstream cluster directly (no CRTB shows it)",
    ),
    Behaviour(
        RESTRICTED_ADMIN_CRTBS,
        (2, 8),
        (2, 11),
        "rancher pkg/controllers/management/restrictedadminrbac/cluster.go@v2.8.0-v2.10.0 clusterOwnerSync "
        '(name SafeConcatName(target, "restricted-admin", "cluster-owner"), label field.cattle.io/source='
        "restrictedAdminsClusterOwner)",
        "restricted-admin gets a cluster-owner CRTB in every non-local cluster",
    ),
    Behaviour(
        BACKING_NAMESPACE,
        (2, 12),
        None,
        "rancher pkg/api/norman/store/scoped/store.go@v2.12.0 GetProjectBackingNamespace",
        "projects have `backingNamespace`; new ones `<cluster>-<project>` (PRTB ids use it)",
    ),
    Behaviour(
        UNKNOWN_PROJECT_500,
        (2, 12),
        None,
        "rancher pkg/api/norman/store/scoped/store.go@v2.12.0 `s.projectCache.Get(clusterName, projectName)` "
        "(a raw error: norman httperror/handler/handler.go makes it 500); @v2.11.0 the namespace is the project "
        "name, so Kubernetes answers 404",
        "a PRTB for an unknown project is 500 ServerError (before: 404 NotFound, namespace missing)",
    ),
    Behaviour(
        BINDING_STATUS,
        (2, 11),
        None,
        "rancher pkg/apis/management.cattle.io/v3/authz_types.go@v2.11.0 ClusterRoleTemplateBindingStatus",
        "CRTBs and PRTBs carry `status` (summary Completed/Error)",
    ),
    Behaviour(
        DUPLICATE_CRTB_REFUSED,
        (2, 14),
        None,
        "webhook pkg/resources/management.cattle.io/v3/clusterroletemplatebinding/validator.go@v0.10.0 "
        '"duplicate crtb not allowed" (StatusReasonConflict, 409); Rancher 2.14.0 ships webhook 0.10.0',
        "a second CRTB for the same subject, role and cluster is refused with 409 Conflict",
    ),
    Behaviour(
        DUPLICATE_PRTB_REFUSED,
        (2, 15),
        None,
        "webhook pkg/resources/management.cattle.io/v3/projectroletemplatebinding/validator.go@v0.11.0 "
        '"duplicate prtb not allowed"; Rancher 2.15.0 ships webhook 0.11.0',
        "a second PRTB for the same subject, role and project is refused with 409 Conflict",
    ),
    Behaviour(
        DETERMINISTIC_BINDING_NAMES,
        (2, 15),
        None,
        "webhook pkg/resources/management.cattle.io/v3/clusterroletemplatebinding/mutator.go@v0.11.0 "
        "GenerateDeterministicName",
        "a binding created without a name gets `crtb-`/`prtb-` + 10 base32 chars of sha256",
    ),
    Behaviour(
        GROUPS_CLAIM,
        (2, 12),
        None,
        "rancher pkg/auth/providers/oidc/oidc_provider.go@v2.12.0 `config.GroupsClaim`",
        "OIDC providers read groups from a configurable claim",
    ),
    Behaviour(
        ROLES_AS_GROUPS,
        (2, 13),
        None,
        "rancher pkg/auth/providers/oidc/oidc_provider.go@v2.13.0 getGroupsFromClaimInfo `claimInfo.Roles`",
        "OIDC providers also turn `roles` claim values into group principals",
    ),
)
"""Every behaviour that differs between the versions the emulator plays, with its source."""

BY_NAME: dict[str, Behaviour] = {b.name: b for b in BEHAVIOURS}


@dataclass(frozen=True)
class Profile:
    """The behaviours of one Rancher minor version."""

    version: tuple[int, int]
    behaviours: frozenset[str]

    @property
    def label(self) -> str:
        """`2.14`."""
        return f"{self.version[0]}.{self.version[1]}"

    def has(self, behaviour: str) -> bool:
        """Whether this version behaves as the named row of BEHAVIOURS says."""
        if behaviour not in BY_NAME:
            raise KeyError(f"unknown behaviour {behaviour}")
        return behaviour in self.behaviours


def parse_version(text: str) -> tuple[int, int]:
    """`v2.14.4`, `2.14` → (2, 14); ValueError when it is not a version."""
    match = re.fullmatch(r"v?(\d+)\.(\d+)(?:\.\d+)?(?:[-+][0-9A-Za-z.+-]*)?", text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a Rancher version like v2.14.4")
    return int(match.group(1)), int(match.group(2))


@lru_cache(maxsize=64)
def profile_for(version: str | tuple[int, int]) -> Profile:
    """The profile of a version (`v2.9.3`, `2.9` or (2, 9)); ValueError outside 2.7-2.15."""
    key = parse_version(version) if isinstance(version, str) else version
    if not OLDEST <= key <= NEWEST:
        raise ValueError(f"the emulator plays Rancher {OLDEST[0]}.{OLDEST[1]} to {NEWEST[0]}.{NEWEST[1]}, not {key}")
    active = frozenset(b.name for b in BEHAVIOURS if b.since <= key and (b.until is None or key < b.until))
    return Profile(key, active)


SUPPORTED: tuple[str, ...] = tuple(f"2.{minor}" for minor in range(OLDEST[1], NEWEST[1] + 1))
"""Every minor version the emulator can play."""


def absent_fields(profile: Profile, type_name: str) -> frozenset[str]:
    """Fields a type does not have in this version (not rendered, and filtering on them is silently ignored)."""
    absent: set[str] = set()
    if type_name == "globalRoleBinding" and not profile.has(GRB_USER_PRINCIPAL):
        absent.add("userPrincipalId")
    if type_name == "project" and not profile.has(BACKING_NAMESPACE):
        absent.add("backingNamespace")
    if type_name in ("clusterRoleTemplateBinding", "projectRoleTemplateBinding") and not profile.has(BINDING_STATUS):
        absent.add("status")
    return frozenset(absent)
