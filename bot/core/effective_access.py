"""What a user can access in Rancher and why: bindings + global roles + the bot's grants → rights with provenance.

Bindings are widened as Rancher widens them (core.rancher_rbac): a right names the roles it includes by
inheritance, an owner-like cluster role says it covers every project, an admin-like global role (by user or group)
is everything, and restricted-admin's bindings are attributed to that global role.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from enum import StrEnum
from typing import TypeVar

from bot.core.durations import format_duration
from bot.core.errors import NotFound
from bot.core.grant_lifecycle import BOUND
from bot.core.model import (
    Cluster,
    GlobalRole,
    Grant,
    PrincipalSet,
    Project,
    RancherUser,
    RoleBinding,
    RoleTemplate,
    Scope,
    Target,
)
from bot.core.rancher_rbac import (
    RESTRICTED_ADMIN_ROLE,
    RESTRICTED_ADMIN_SOURCE,
    included_names,
    is_admin_global_role,
    owner_like,
)

GRB_OWNER_LABEL = "authz.management.cattle.io/grb-owner"
_T = TypeVar("_T")


class SourceKind(StrEnum):
    """Where a right comes from."""

    DIRECT = "direct"
    GROUP = "group"
    GLOBAL_ROLE = "global_role"
    GRANT = "grant"


@dataclass(frozen=True)
class Source:
    """The provenance of one right: held directly, through a group, a global role, or a bot grant."""

    kind: SourceKind
    group: str = ""
    global_role: str = ""
    grant_id: str = ""
    expires_at: int | None = None
    note: str = ""

    def text(self, now: int) -> str:
        """`direct`, `via group sre`, `via global role Platform Observer`, `grant g-12 · 1h 20m left`."""
        if self.kind is SourceKind.GRANT:
            if self.expires_at is None:
                base = f"grant {self.grant_id}"
            elif self.expires_at <= now:
                base = f"grant {self.grant_id} · expiring now"
            else:
                left = format_duration(timedelta(seconds=self.expires_at - now))
                base = f"grant {self.grant_id} · {left} left"
        elif self.kind is SourceKind.GLOBAL_ROLE:
            base = f"via global role {self.global_role}"
            if self.group:
                base += f" (group {self.group})"
        elif self.kind is SourceKind.GROUP:
            base = f"via group {self.group}"
        else:
            base = "direct"
        return f"{base} ({self.note})" if self.note else base


@dataclass(frozen=True)
class Right:
    """One thing a user may do: a role on global scope, a cluster or a project, and why."""

    scope: Scope
    role_id: str
    role_name: str
    source: Source
    source_text: str
    cluster_id: str | None = None
    cluster_name: str = ""
    project_id: str | None = None
    project_name: str = ""
    binding_id: str = ""
    everything: bool = False
    downstream_only: bool = False  # everything, but not in the `local` cluster (restricted-admin on 2.7)
    includes: tuple[str, ...] = ()  # names of the roles this one inherits
    all_projects: bool = False  # a cluster role covering every project of its cluster (owner-like)

    @property
    def where(self) -> str:
        """`global`, `dev-eu` or `dev-eu/payments`."""
        if self.scope is Scope.GLOBAL:
            return "global"
        if self.scope is Scope.PROJECT:
            return f"{self.cluster_name}/{self.project_name}"
        return self.cluster_name


@dataclass(frozen=True)
class AccessReport:
    """The answer to "what can I access": the user as Rancher knows them and their rights, sorted."""

    principals: PrincipalSet
    user: RancherUser | None
    rights: tuple[Right, ...]
    now: int
    filter: str | None = None
    names: Mapping[str, str] = field(default_factory=dict)
    groups_as_of: str = ""  # `login`: Rancher enforces the groups of the last Rancher login; `refresh`: + refreshes

    @property
    def user_known(self) -> bool:
        """False when Rancher has no user for this identity yet (never logged in)."""
        return self.user is not None

    @property
    def is_admin(self) -> bool:
        """True when a global `admin` role makes the user able to do everything."""
        return any(r.everything for r in self.rights)


def holds(principals: PrincipalSet, binding: RoleBinding) -> bool:
    """True when the binding's subject is this user, one of their principals, or one of their groups."""
    if binding.user_id and principals.user_id and binding.user_id == principals.user_id:
        return True
    mine = {principals.user_principal_id, *principals.principal_ids}
    if binding.user_principal_id and binding.user_principal_id in mine:
        return True
    return bool(binding.group_principal_id and binding.group_principal_id in principals.group_principal_ids)


def effective_rights(
    principals: PrincipalSet,
    bindings: Iterable[RoleBinding],
    *,
    global_roles: Sequence[GlobalRole],
    role_templates: Sequence[RoleTemplate],
    clusters: Sequence[Cluster],
    projects: Sequence[Project],
    grants: Sequence[Grant],
    grant_label: str,
    now: int,
    restricted_admin_is_admin: bool = False,
) -> list[Right]:
    """Union of every binding the user holds plus the bot's live grants, each with its provenance, sorted.

    `restricted_admin_is_admin`: the server is Rancher 2.7, where restricted-admin is everything downstream.
    """
    role_names = {r.id: r.name for r in role_templates}
    templates = {r.id: r for r in role_templates}
    global_names = {g.id: g.name for g in global_roles}
    roles_by_id = {g.id: g for g in global_roles}
    cluster_names = {c.id: c.name for c in clusters}
    project_names = {p.id: p.name for p in projects}
    live = {g.id: g for g in grants if g.state in BOUND}
    # holds(principals, b) for every binding, with the principal sets built once instead of once a binding
    user_id = principals.user_id
    mine = {principals.user_principal_id, *principals.principal_ids}
    my_groups = frozenset(principals.group_principal_ids)
    held = [
        b
        for b in bindings
        if (b.user_id and user_id and b.user_id == user_id)
        or (b.user_principal_id and b.user_principal_id in mine)
        or (b.group_principal_id and b.group_principal_id in my_groups)
    ]
    grbs = {b.name or b.id: b for b in held if b.scope is Scope.GLOBAL}
    rights: dict[tuple[object, ...], Right] = {}
    seen_grants: set[str] = set()
    direct = Source(SourceKind.DIRECT)
    direct_text = direct.text(now)
    group_sources: dict[str, tuple[Source, str]] = {}  # one Source and its text per group, not per binding

    def group_name(binding: RoleBinding) -> str:
        gid = binding.group_principal_id or ""
        return principals.group_names.get(gid) or gid.split("://", 1)[-1]

    widened: dict[tuple[Scope, str], tuple[tuple[str, ...], bool]] = {}  # once per role, not per binding

    def widen(scope: Scope, role_id: str) -> tuple[tuple[str, ...], bool]:
        found = widened.get((scope, role_id))
        if found is None:
            if scope is Scope.GLOBAL or not templates:
                found = ((), False)
            else:
                found = (included_names(role_id, templates), scope is Scope.CLUSTER and owner_like(role_id, templates))
            widened[(scope, role_id)] = found
        return found

    for binding in held:
        labels = binding.labels
        grant = live.get(labels.get(grant_label, "")) if live else None
        if grant is not None:
            seen_grants.add(grant.id)
            source = Source(SourceKind.GRANT, grant_id=grant.id, expires_at=grant.expires_at)
            text = source.text(now)
        elif GRB_OWNER_LABEL in labels and binding.scope is Scope.CLUSTER:
            owner = grbs.get(labels[GRB_OWNER_LABEL])
            role = global_names.get(owner.role_id, owner.role_id) if owner else labels[GRB_OWNER_LABEL]
            source = Source(
                SourceKind.GLOBAL_ROLE,
                global_role=role,
                group=group_name(binding) if binding.group_principal_id else "",
            )
            text = source.text(now)
        elif labels.get(RESTRICTED_ADMIN_SOURCE[0]) == RESTRICTED_ADMIN_SOURCE[1] and binding.scope is Scope.CLUSTER:
            source = Source(
                SourceKind.GLOBAL_ROLE,
                global_role=global_names.get(RESTRICTED_ADMIN_ROLE, RESTRICTED_ADMIN_ROLE),
                group=group_name(binding) if binding.group_principal_id else "",
            )
            text = source.text(now)
        elif binding.group_principal_id:
            cached = group_sources.get(binding.group_principal_id)
            if cached is None:
                group_source = Source(SourceKind.GROUP, group=group_name(binding))
                cached = group_sources[binding.group_principal_id] = (group_source, group_source.text(now))
            source, text = cached
        else:
            source, text = direct, direct_text
        key = (binding.scope, binding.cluster_id, binding.project_id, binding.role_id, text)
        if key in rights:
            continue
        right = _right(
            binding,
            source,
            text,
            role_names=role_names,
            global_names=global_names,
            cluster_names=cluster_names,
            project_names=project_names,
            widen=widen(binding.scope, binding.role_id),
        )
        if binding.scope is Scope.GLOBAL:
            admin = is_admin_global_role(roles_by_id.get(binding.role_id))
            downstream = restricted_admin_is_admin and binding.role_id == RESTRICTED_ADMIN_ROLE
            if admin or downstream:
                right = replace(right, everything=True, downstream_only=not admin)
        rights[key] = right

    for grant in live.values():
        if grant.id in seen_grants:
            continue
        target = grant.target
        scope = target.scope
        source = Source(SourceKind.GRANT, grant_id=grant.id, expires_at=grant.expires_at, note="not seen in Rancher")
        right = Right(
            scope=scope,
            role_id=grant.role_id,
            role_name=role_names.get(grant.role_id, grant.role_id),
            source=source,
            source_text=source.text(now),
            cluster_id=target.cluster_id,
            cluster_name=cluster_names.get(target.cluster_id, target.cluster_id),
            project_id=target.project_id,
            project_name=project_names.get(target.project_id, target.project_id) if target.project_id else "",
            binding_id=grant.binding_id or "",
        )
        includes, every = widen(scope, grant.role_id)
        rights.setdefault(_key(right), replace(right, includes=includes, all_projects=every))
    return _sorted(rights.values())


def sort_key(right: Right) -> tuple[object, ...]:
    """Global first (admin on top), then clusters by name, cluster rights before their projects, then role."""
    return (
        right.scope is not Scope.GLOBAL,
        not right.everything,
        right.cluster_name.lower(),
        right.cluster_id or "",
        right.project_name.lower(),
        right.project_id or "",
        right.role_name.lower(),
        right.source_text,
    )


def _sorted(rights: Iterable[Right]) -> list[Right]:
    """sorted(rights, key=sort_key), faster: bucket on the two leading flags, sort each bucket on the rest.

    Nearly every key starts with the same two flags, so whole-tuple sorting compares them again and again; the
    buckets and a stable sort give exactly the same order.
    """
    buckets: dict[tuple[bool, bool], list[Right]] = {}
    for right in rights:
        buckets.setdefault((right.scope is not Scope.GLOBAL, not right.everything), []).append(right)
    out: list[Right] = []
    for flags in sorted(buckets):
        out += sorted(buckets[flags], key=_name_key)
    return out


def _name_key(right: Right) -> tuple[object, ...]:
    """sort_key(right) without its two leading flags."""
    return (
        right.cluster_name.lower(),
        right.cluster_id or "",
        right.project_name.lower(),
        right.project_id or "",
        right.role_name.lower(),
        right.source_text,
    )


def resolve_target(text: str, clusters: Sequence[Cluster], projects: Sequence[Project]) -> Target:
    """`CLUSTER`, `CLUSTER/PROJECT` or a `c-…:p-…` id (names or ids, names case-insensitive) → Target."""
    raw = text.strip()
    if ":" in raw and "/" not in raw:
        project = next((p for p in projects if p.id == raw), None)
        if project is None:
            raise NotFound(f"no project `{raw}`", "run `/access list` to see your clusters and projects")
        return Target(project.cluster_id, project.id)
    cluster_text, _, project_text = raw.partition("/")
    cluster = _pick(cluster_text, [(c.id, c.name, c) for c in clusters])
    if cluster is None:
        raise NotFound(f"no cluster `{cluster_text}`", "run `/access list` to see your clusters")
    if not project_text:
        return Target(cluster.id)
    project = _pick(project_text, [(p.id, p.name, p) for p in projects if p.cluster_id == cluster.id])
    if project is None:
        raise NotFound(
            f"no project `{project_text}` in {cluster.name}", "use `/access list CLUSTER` to see its projects"
        )
    return Target(cluster.id, project.id)


def filter_rights(rights: Sequence[Right], target: Target) -> list[Right]:
    """Rights that apply to a cluster (and its projects) or to one project, as Rancher applies them.

    A project also gets its cluster's rights (a cluster role is bound cluster-wide downstream, so it applies in
    every namespace of the cluster); a global admin's `everything` stays (restricted-admin's not in `local`).
    """
    out: list[Right] = []
    for right in rights:
        if right.everything:
            if not (right.downstream_only and target.cluster_id == "local"):
                out.append(right)
        elif target.project_id is not None:
            if right.project_id == target.project_id or (
                right.scope is Scope.CLUSTER and right.cluster_id == target.cluster_id
            ):
                out.append(right)
        elif right.cluster_id == target.cluster_id:
            out.append(right)
    return out


def _pick(text: str, options: Sequence[tuple[str, str, _T]]) -> _T | None:
    for oid, _, value in options:
        if text in (oid, oid.split(":", 1)[-1]):
            return value
    lowered = text.lower()
    for _, name, value in options:
        if name.lower() == lowered:
            return value
    return None


def _key(right: Right) -> tuple[object, ...]:
    return (right.scope, right.cluster_id, right.project_id, right.role_id, right.source_text)


def _right(
    binding: RoleBinding,
    source: Source,
    source_text: str,
    *,
    role_names: Mapping[str, str],
    global_names: Mapping[str, str],
    cluster_names: Mapping[str, str],
    project_names: Mapping[str, str],
    widen: tuple[tuple[str, ...], bool] = ((), False),
) -> Right:
    if binding.scope is Scope.GLOBAL:
        return Right(
            scope=Scope.GLOBAL,
            role_id=binding.role_id,
            role_name=global_names.get(binding.role_id, binding.role_id),
            source=source,
            source_text=source_text,
            binding_id=binding.id,
        )
    cluster_id = binding.cluster_id or ""
    return Right(
        scope=binding.scope,
        role_id=binding.role_id,
        role_name=role_names.get(binding.role_id, binding.role_id),
        source=source,
        source_text=source_text,
        cluster_id=cluster_id,
        cluster_name=cluster_names.get(cluster_id, cluster_id),
        project_id=binding.project_id,
        project_name=project_names.get(binding.project_id, binding.project_id) if binding.project_id else "",
        binding_id=binding.id,
        includes=widen[0],
        all_projects=widen[1],
    )
