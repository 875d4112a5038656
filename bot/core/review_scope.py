"""What an access review covers: which standing Rancher bindings match a campaign's roles, targets and subjects, and
which bindings are left out (the bot's own, and those Rancher's controllers own)."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from bot.core.model import Cluster, Project, RoleBinding, Scope
from bot.core.reviews import CampaignScope, Subjects

GRB_OWNER_LABEL = "authz.management.cattle.io/grb-owner"
"""CRTBs a global role's `inheritedClusterRoles` made (globalroles/globalrolebinding_handler.go@v2.14.0)."""
RESTRICTED_ADMIN_SOURCE = ("field.cattle.io/source", "restrictedAdminsClusterOwner")
"""Restricted-admin's cluster-owner CRTBs (restrictedadminrbac/cluster.go@v2.10.0)."""


def rancher_managed(key: str) -> bool:
    """True for a label or annotation Rancher itself writes: every one lives under a `*cattle.io` domain.

    Among them `lifecycle.cattle.io/create.<controller>: "true"`, which tells Rancher's controllers that their create
    handler already ran (norman lifecycle/object.go `isInitialized`): copied onto a recreated binding, Rancher would
    never build its downstream RBAC. Others: `cattle.io/creator`, `field.cattle.io/creatorId`,
    `auth.cattle.io/principal-display-name`, `authz.management.cattle.io/*`.
    """
    domain = key.split("/", 1)[0] if "/" in key else ""
    return domain == "cattle.io" or domain.endswith(".cattle.io")


def managed_by_rancher(binding: RoleBinding) -> bool:
    """True for bindings Rancher's controllers own and would recreate: a global role's inherited cluster roles
    (`crtb-grb-*`, label grb-owner) and restricted-admin's cluster-owner bindings. They are reviewed through the
    global role binding, not here."""
    labels = binding.labels
    return GRB_OWNER_LABEL in labels or labels.get(RESTRICTED_ADMIN_SOURCE[0]) == RESTRICTED_ADMIN_SOURCE[1]


def made_by_bot(binding: RoleBinding, grant_label: str) -> bool:
    """True for a binding the bot created for a grant (its label or annotation carries the grant id)."""
    return grant_label in binding.labels or grant_label in binding.annotations


def _glob(pattern: str, *values: str | None) -> bool:
    return any(v is not None and fnmatch.fnmatchcase(v, pattern) for v in values)


def target_matches(selectors: Iterable[str], cluster: Cluster | None, project: Project | None) -> bool:
    """Whether a cluster (with `project` None) or a project of it is covered by any selector (see CampaignScope)."""
    if cluster is None:
        return False
    for selector in selectors:
        c_part, slash, p_part = selector.partition("/")
        if not _glob(c_part, cluster.name, cluster.id):
            continue
        if not slash:
            return True
        if project is not None and _glob(p_part, project.name, project.id, project.id.split(":", 1)[-1]):
            return True
    return False


def standing(binding: RoleBinding, grant_label: str) -> bool:
    """A live cluster or project binding that neither the bot nor Rancher's controllers made."""
    return (
        binding.scope is not Scope.GLOBAL
        and not binding.terminating
        and not made_by_bot(binding, grant_label)
        and not managed_by_rancher(binding)
    )


def role_matches(selectors: Iterable[str], role_id: str) -> bool:
    """Whether a role template id is named by any selector (ids, shell globs allowed)."""
    return any(fnmatch.fnmatchcase(role_id, s) for s in selectors)


def subject_matches(subjects: Subjects, binding: RoleBinding) -> bool:
    """Whether the binding's subject kind is one the campaign reviews."""
    is_group = bool(binding.group_principal_id)
    return subjects is Subjects.BOTH or (subjects is Subjects.GROUPS) == is_group


@dataclass(frozen=True)
class Selection:
    """The standing bindings a campaign covers, and how many matching ones Rancher manages (left out)."""

    bindings: tuple[RoleBinding, ...] = ()
    excluded: int = 0


def select(
    bindings: Iterable[RoleBinding],
    scope: CampaignScope,
    clusters: Mapping[str, Cluster],
    projects: Mapping[str, Project],
    grant_label: str,
) -> Selection:
    """Every standing binding of the scope's roles, targets and subjects (bot-made and terminating ones left out;
    Rancher-managed ones counted as `excluded`), in a stable order (by id)."""
    chosen: list[RoleBinding] = []
    excluded = 0
    for binding in bindings:
        if binding.scope is Scope.GLOBAL or binding.terminating or made_by_bot(binding, grant_label):
            continue
        if not role_matches(scope.roles, binding.role_id) or not subject_matches(scope.subjects, binding):
            continue
        project = projects.get(binding.project_id) if binding.project_id else None
        if not target_matches(scope.targets, clusters.get(binding.cluster_id or ""), project):
            continue
        if managed_by_rancher(binding):
            excluded += 1
            continue
        chosen.append(binding)
    return Selection(tuple(sorted(chosen, key=lambda b: (b.scope.value, b.id))), excluded)
