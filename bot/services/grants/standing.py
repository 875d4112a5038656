"""Standing access: whether Rancher already gives a requested role on a target, and through which binding.

It reads what `/access list` reads (the user found by principal, their bindings by user id, principals and groups,
role templates and global roles) and applies the same expansion (core.rancher_rbac): inheritance, owner-like
cluster roles covering projects, admin-like global roles held by the user or a group.
"""

from __future__ import annotations

import asyncio

from bot.core.effective_access import holds
from bot.core.model import PrincipalSet, RancherUser, Scope, Target
from bot.core.ports import RancherApi
from bot.core.principals import principal_display
from bot.core.rancher_rbac import Coverage, covering
from bot.services.grants.directory import Directory


class StandingAccess:
    """Finds the standing bindings that already cover a request."""

    def __init__(self, *, rancher: RancherApi, directory: Directory, grant_label: str) -> None:
        self._rancher = rancher
        self._dir = directory
        self._label = grant_label

    async def covering(
        self, principals: PrincipalSet, role: str, target: Target
    ) -> tuple[RancherUser | None, list[Coverage]]:
        """The user's Rancher user (None before any login) and the bindings covering `role` on `target`."""
        user, features, templates, global_roles = await asyncio.gather(
            self._rancher.find_user(principals.user_principal_id),
            self._rancher.features(),
            self._rancher.list_role_templates(),
            self._rancher.list_global_roles(),
        )
        user_ids = [user.id] if user is not None else []
        mine = tuple(dict.fromkeys((principals.user_principal_id, *(user.principal_ids if user else ()))))
        bindings = await self._rancher.list_bindings(
            user_ids=user_ids, user_principal_ids=mine, group_principal_ids=principals.group_principal_ids
        )
        confirmed = PrincipalSet(
            user_principal_id=principals.user_principal_id,
            group_principal_ids=principals.group_principal_ids,
            user_id=user.id if user is not None else None,
            principal_ids=mine,
            group_names=principals.group_names,
        )
        held = [b for b in bindings if holds(confirmed, b)]
        found = covering(
            held,
            role,
            target,
            templates={t.id: t for t in templates},
            global_roles={g.id: g for g in global_roles},
            grant_label=self._label,
            restricted_admin_is_admin=features.has("restricted_admin_cluster_admin"),
        )
        return user, found

    async def describe(self, coverage: Coverage) -> str:
        """`Cluster Owner on dev-eu via group sre (it covers every project; binding c-7xk2p:crtb-h6m3p)`."""
        binding = coverage.binding
        if binding.scope is Scope.GLOBAL:
            names = {g.id: g.name for g in await self._rancher.list_global_roles()}
            role, where = names.get(binding.role_id, binding.role_id), "everywhere (global role)"
        else:
            role = await self._dir.role_name(binding.role_id)
            where = "on " + await self._dir.display(Target(binding.cluster_id or "", binding.project_id))
        via = f" via group {principal_display(binding.group_principal_id)}" if binding.group_principal_id else ""
        how = {
            "admin": "an admin global role covers everything",
            "inherits": "it includes that role",
            "owner": "it covers every project of the cluster",
        }.get(coverage.how, "")
        note = f"{how}; binding {binding.id}" if how else f"binding {binding.id}"
        return f"{role} {where}{via} ({note})"
