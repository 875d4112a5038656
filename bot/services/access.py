"""Use cases "what can I access" and "who holds this": read Rancher through RancherApi, explain with the core."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, replace

from bot.core.effective_access import (
    GRB_OWNER_LABEL,
    LIVE_GRANT_STATES,
    AccessReport,
    Right,
    Source,
    SourceKind,
    effective_rights,
    filter_rights,
    resolve_target,
)
from bot.core.model import Grant, PrincipalSet, RancherUser, RoleBinding, Scope, Target
from bot.core.ports import RancherApi
from bot.core.principals import derive_user_id

__all__ = ["AccessReport", "AccessService", "Holder", "HoldersReport", "Right"]

MAX_NAMED_HOLDERS = 50


@dataclass(frozen=True)
class Holder:
    """One subject holding a role on a target, and why."""

    subject: str
    kind: str  # "user" | "group"
    role_id: str
    role_name: str
    source_text: str
    binding_id: str
    user_id: str | None = None
    principal_id: str | None = None


@dataclass(frozen=True)
class HoldersReport:
    """Who holds roles on one cluster or project."""

    target: Target
    cluster_name: str
    project_name: str
    holders: tuple[Holder, ...]

    @property
    def where(self) -> str:
        """`dev-eu` or `dev-eu/payments`."""
        return f"{self.cluster_name}/{self.project_name}" if self.target.project_id else self.cluster_name


class AccessService:
    """Explains a user's Rancher access; every Rancher read it needs runs concurrently."""

    def __init__(self, rancher: RancherApi, grant_label: str) -> None:
        self._rancher = rancher
        self._grant_label = grant_label

    async def describe(
        self, principals: PrincipalSet, grants: Sequence[Grant], now: int, filter: str | None = None
    ) -> AccessReport:
        """Everything the user can access (optionally one `CLUSTER` or `CLUSTER/PROJECT`), with provenance."""
        user_id = principals.user_id or derive_user_id(principals.user_principal_id)
        wanted_principals = tuple(dict.fromkeys((principals.user_principal_id, *principals.principal_ids)))
        user, bindings, global_roles, role_templates, clusters, projects = await asyncio.gather(
            self._rancher.get_user(user_id),
            self._rancher.list_bindings(
                user_ids=[user_id],
                user_principal_ids=wanted_principals,
                group_principal_ids=principals.group_principal_ids,
            ),
            self._rancher.list_global_roles(),
            self._rancher.list_role_templates(),
            self._rancher.list_clusters(),
            self._rancher.list_projects(),
        )
        confirmed = _confirmed(principals, user, user_id)
        if confirmed.user_id is None:
            user = None  # no user, or one that does not answer to this principal: show "no Rancher user yet"
        rights = effective_rights(
            confirmed,
            bindings,
            global_roles=global_roles,
            role_templates=role_templates,
            clusters=clusters,
            projects=projects,
            grants=grants,
            grant_label=self._grant_label,
            now=now,
        )
        if filter:
            rights = filter_rights(rights, resolve_target(filter, clusters, projects))
        names: dict[str, str] = {}
        if grants:  # maps of the whole estate's names only when there are grants to name
            cluster_names = {c.id: c.name for c in clusters}
            project_names = {p.id: p.name for p in projects}
            for grant in grants:
                target = grant.target
                names[target.cluster_id] = cluster_names.get(target.cluster_id, target.cluster_id)
                if target.project_id:
                    names[target.project_id] = project_names.get(target.project_id, target.project_id)
        return AccessReport(
            principals=confirmed, user=user, rights=tuple(rights), now=now, filter=filter or None, names=names
        )

    async def who(self, target: Target | str, grants: Sequence[Grant] = (), now: int = 0) -> HoldersReport:
        """Who holds roles directly on a cluster or a project (`CLUSTER`, `CLUSTER/PROJECT` or a Target)."""
        clusters, projects, role_templates = await asyncio.gather(
            self._rancher.list_clusters(), self._rancher.list_projects(), self._rancher.list_role_templates()
        )
        resolved = target if isinstance(target, Target) else resolve_target(target, clusters, projects)
        bindings = await self._rancher.list_target_bindings(resolved.cluster_id, resolved.project_id)
        user_ids = list(dict.fromkeys(b.user_id for b in bindings if b.user_id))[:MAX_NAMED_HOLDERS]
        users = await asyncio.gather(*(self._rancher.get_user(u) for u in user_ids))
        user_names = {u.id: u.name for u in users if u is not None}
        role_names = {r.id: r.name for r in role_templates}
        live = {g.id: g for g in grants if g.state in LIVE_GRANT_STATES}
        holders = [
            _holder(b, role_names=role_names, user_names=user_names, live=live, grant_label=self._grant_label, now=now)
            for b in bindings
            if b.target == resolved or (b.scope is Scope.CLUSTER and resolved.project_id is None)
        ]
        holders.sort(key=lambda h: (h.role_name.lower(), h.kind, h.subject.lower(), h.binding_id))
        cluster_name = next((c.name for c in clusters if c.id == resolved.cluster_id), resolved.cluster_id)
        project_name = next((p.name for p in projects if p.id == resolved.project_id), resolved.project_id or "")
        return HoldersReport(resolved, cluster_name, project_name, tuple(holders))


def _confirmed(principals: PrincipalSet, user: RancherUser | None, user_id: str) -> PrincipalSet:
    """The principal set with the user id only when Rancher has that user and it answers to our principal."""
    if user is not None and principals.user_principal_id in user.principal_ids:
        ids = tuple(dict.fromkeys((principals.user_principal_id, *user.principal_ids)))
        return replace(principals, user_id=user.id, principal_ids=ids)
    return replace(principals, user_id=None, principal_ids=(principals.user_principal_id,))


def _holder(
    binding: RoleBinding,
    *,
    role_names: dict[str, str],
    user_names: dict[str, str],
    live: dict[str, Grant],
    grant_label: str,
    now: int,
) -> Holder:
    grant = live.get(binding.labels.get(grant_label, ""))
    if grant is not None:
        source = Source(SourceKind.GRANT, grant_id=grant.id, expires_at=grant.expires_at)
    elif binding.labels.get(grant_label):
        source = Source(SourceKind.GRANT, grant_id=binding.labels[grant_label])
    elif GRB_OWNER_LABEL in binding.labels:
        source = Source(SourceKind.GLOBAL_ROLE, global_role=binding.labels[GRB_OWNER_LABEL])
    else:
        source = Source(SourceKind.DIRECT)
    if binding.group_principal_id:
        subject, kind = binding.group_principal_id.split("://", 1)[-1], "group"
    else:
        principal = binding.user_principal_id or ""
        subject = user_names.get(binding.user_id or "") or binding.annotations.get(
            "auth.cattle.io/principal-display-name", ""
        )
        subject, kind = subject or binding.user_id or principal.split("://", 1)[-1], "user"
    return Holder(
        subject=subject,
        kind=kind,
        role_id=binding.role_id,
        role_name=role_names.get(binding.role_id, binding.role_id),
        source_text=source.text(now),
        binding_id=binding.id,
        user_id=binding.user_id,
        principal_id=binding.group_principal_id or binding.user_principal_id,
    )
