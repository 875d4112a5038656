"""How Rancher widens a binding into rights: role inheritance, owner-like cluster roles, admin-like global roles.

Each rule is Rancher's own (sources at tags in the docstrings), and the same expansion serves `/access list` and
the standing-access check of a request, so the bot never offers a grant Rancher already gives:
- a role template also grants every template in its `roleTemplateIds`, transitively (authz_types.go
  RoleTemplateNames, aggregated by the role template controllers);
- a cluster role whose rules (with those it inherits) include `*`/`*`/`*` covers every project of its cluster, as
  built-in `cluster-owner` does (pkg/data/management/role_data.go);
- a global role is admin when it is the built-in `admin` or has `*`/`*`/`*` plus nonResourceURLs `*`
  (pkg/rbac/common.go@v2.14.0 IsAdminGlobalRole; globalrole_handler.go isAdminRole before 2.11);
- on 2.7 a `restricted-admin` global role is cluster-admin in every downstream cluster (globalrole_handler.go@v2.7.0).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from bot.core.model import GlobalRole, PolicyRule, RoleBinding, RoleTemplate, Scope, Target

ADMIN_ROLE = "admin"
RESTRICTED_ADMIN_ROLE = "restricted-admin"
RESTRICTED_ADMIN_SOURCE = ("field.cattle.io/source", "restrictedAdminsClusterOwner")
"""The label of restricted-admin's cluster-owner CRTBs (restrictedadminrbac/register.go@v2.8.0-v2.10.0)."""


def _all(rule: PolicyRule) -> bool:
    return "*" in rule.api_groups and "*" in rule.resources and "*" in rule.verbs


def is_admin_global_role(role: GlobalRole | None) -> bool:
    """Rancher's IsAdminGlobalRole: built-in `admin`, or a `*`/`*`/`*` rule plus a nonResourceURLs `*` rule."""
    if role is None:
        return False
    if role.builtin and role.id == ADMIN_ROLE:
        return True
    resource = any(_all(r) for r in role.rules)
    non_resource = any("*" in r.non_resource_urls and "*" in r.verbs for r in role.rules)
    return resource and non_resource


def closure(role_id: str, templates: Mapping[str, RoleTemplate]) -> tuple[str, ...]:
    """The role and every role template it inherits, transitively, in discovery order (cycles are cut)."""
    seen: dict[str, None] = {}
    todo = [role_id]
    while todo:
        current = todo.pop(0)
        if current in seen:
            continue
        seen[current] = None
        template = templates.get(current)
        if template is not None:
            todo.extend(template.inherits)
    return tuple(seen)


def owner_like(role_id: str, templates: Mapping[str, RoleTemplate]) -> bool:
    """True for a cluster role granting `*`/`*`/`*` (itself or by inheritance): it covers every project."""
    return any(_all(rule) for rid in closure(role_id, templates) for rule in templates.get(rid, _EMPTY).rules)


_EMPTY = RoleTemplate(id="", name="", context="")


def included_names(role_id: str, templates: Mapping[str, RoleTemplate]) -> tuple[str, ...]:
    """Display names of the visible roles a role inherits (hidden Kubernetes roles such as `edit` left out)."""
    out = []
    for rid in closure(role_id, templates)[1:]:
        template = templates.get(rid)
        if template is not None and not template.hidden:
            out.append(template.name)
    return tuple(out)


@dataclass(frozen=True)
class Coverage:
    """A binding that already gives a requested role on a target, and how: `same`, `inherits`, `owner`, `admin`."""

    binding: RoleBinding
    how: str


def covering(
    held: Iterable[RoleBinding],
    role_id: str,
    target: Target,
    *,
    templates: Mapping[str, RoleTemplate],
    global_roles: Mapping[str, GlobalRole],
    grant_label: str,
    restricted_admin_is_admin: bool = False,
) -> list[Coverage]:
    """The user's bindings (already filtered to the user and their groups) that give `role_id` on `target`.

    The bot's own tagged bindings are left out (an open grant is reported as a duplicate instead), as are
    terminating ones. Order: admin-like global roles, then the same target, then owner-like cluster roles.
    """
    found: list[Coverage] = []
    for binding in held:
        if binding.terminating or grant_label in binding.labels:
            continue
        if binding.scope is Scope.GLOBAL:
            role = global_roles.get(binding.role_id)
            downstream_admin = restricted_admin_is_admin and binding.role_id == RESTRICTED_ADMIN_ROLE
            if is_admin_global_role(role) or (downstream_admin and target.cluster_id != "local"):
                found.append(Coverage(binding, "admin"))
            continue
        if binding.target == target and role_id in closure(binding.role_id, templates):
            found.append(Coverage(binding, "same" if binding.role_id == role_id else "inherits"))
        elif (
            binding.scope is Scope.CLUSTER
            and binding.cluster_id == target.cluster_id
            and owner_like(binding.role_id, templates)
        ):
            found.append(Coverage(binding, "owner"))
    order = {"admin": 0, "same": 1, "inherits": 2, "owner": 3}
    return sorted(found, key=lambda c: order[c.how])
