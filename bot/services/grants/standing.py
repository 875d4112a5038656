"""Standing access: whether Rancher already gives a requested role on a target, and through which binding.

It applies the widening `/access list` applies (core.rancher_rbac: inheritance, owner-like cluster roles covering
projects, admin-like global roles held by the user or a group) to the bindings that could cover the target: the
target's own, its cluster's, and the user's and groups' global role bindings, with the user found by principal.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from bot.core.effective_access import holds
from bot.core.model import PrincipalSet, RancherUser, RoleBinding, Scope, Target
from bot.core.ports import RancherApi
from bot.core.principals import derive_user_id, principal_display
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
        """The user's Rancher user (None before any login) and the bindings covering `role` on `target`.

        Only what can cover the target is read, all at once: its own bindings, its cluster's (owner-like roles
        cover projects) and the user's and groups' global role bindings; the user by principal beside them.
        """
        derived = principals.user_id or derive_user_id(principals.user_principal_id)
        mine = tuple(dict.fromkeys((principals.user_principal_id, *principals.principal_ids)))
        cluster_wide = self._rancher.list_target_bindings(target.cluster_id, None) if target.project_id else _none()
        reads = asyncio.gather(
            self._rancher.find_user(principals.user_principal_id),
            self._rancher.list_target_bindings(target.cluster_id, target.project_id),
            cluster_wide,
            self._global(derived, mine, principals.group_principal_ids),
        )
        (user, on_target, on_cluster, grbs), features, templates, global_roles = await asyncio.gather(
            reads, self._rancher.features(), self._rancher.list_role_templates(), self._rancher.list_global_roles()
        )
        if user is not None and user.id != derived:
            grbs = [*grbs, *await self._global(user.id, tuple(p for p in user.principal_ids if p not in mine), ())]
        if user is not None:
            mine = tuple(dict.fromkeys((*mine, *user.principal_ids)))
        confirmed = PrincipalSet(
            user_principal_id=principals.user_principal_id,
            group_principal_ids=principals.group_principal_ids,
            user_id=user.id if user is not None else None,
            principal_ids=mine,
            group_names=principals.group_names,
        )
        held = [b for b in (*on_target, *on_cluster, *grbs) if holds(confirmed, b)]
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

    async def _global(
        self, user_id: str, user_principals: Sequence[str], groups: Sequence[str]
    ) -> Sequence[RoleBinding]:
        return await self._rancher.list_bindings(
            user_ids=[user_id], user_principal_ids=user_principals, group_principal_ids=groups, scopes=(Scope.GLOBAL,)
        )

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


async def _none() -> Sequence[RoleBinding]:
    return ()
