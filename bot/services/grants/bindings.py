"""The Rancher bindings behind grants: create or adopt a grant's tagged binding, delete it, find standing access.

Activation, the reconciler's repair and revocation all go through here, so a binding is created one way only:
under the grant's deterministic name, with the grant label, bound by Rancher user id when the user exists and by
user principal otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.core.errors import NotLinked
from bot.core.model import Grant, PrincipalSet, RancherUser, RoleBinding, Scope
from bot.core.ports import RancherApi
from bot.services.grants.directory import Directory

SLACK_USER_ANNOTATION = "accessbot.io/slack-user"
REFUSALS = frozenset({400, 403, 404, 422})
"""Rancher answers to a create that no retry will change."""


def binding_name(grant_id: str) -> str:
    """The deterministic DNS-1123 name of a grant's binding, e.g. `accessbot-g-12`."""
    safe = "".join(ch if ch.isalnum() or ch == "-" else "-" for ch in grant_id.lower()).strip("-")
    return f"accessbot-{safe}"[:63].rstrip("-")


class Bindings:
    """Creates, adopts and deletes the bot's tagged bindings in Rancher."""

    def __init__(self, *, rancher: RancherApi, directory: Directory, grant_label: str) -> None:
        self._rancher = rancher
        self._directory = directory
        self.grant_label = grant_label

    def principal_of(self, grant: Grant) -> str:
        """The user principal a grant binds (recorded on the grant, else from the holder's current link)."""
        if grant.user_principal_id:
            return grant.user_principal_id
        ident = self._directory.maybe_identity(grant.slack_user)
        if ident is None:
            raise NotLinked(f"the holder of {grant.id} is no longer linked")
        return self._directory.principals(ident).user_principal_id

    async def user_for(self, principal: str) -> RancherUser | None:
        """The Rancher user a user principal logs in as (by the id Rancher derives), or None before any login."""
        return await self._rancher.get_user(self._directory.mapping.user_id_of(principal))

    async def ensure(self, grant: Grant, *, adopt: bool, user: RancherUser | None = None) -> RoleBinding:
        """The grant's tagged binding: adopted when `adopt` and it exists, else created under its deterministic name."""
        target = grant.target
        if adopt:
            for b in await self._rancher.list_target_bindings(target.cluster_id, target.project_id):
                if b.labels.get(self.grant_label) == grant.id:
                    return b
        principal = self.principal_of(grant)
        if user is None:
            user = await self.user_for(principal)
        return await self._rancher.create_binding(
            name=grant.binding_name or binding_name(grant.id),
            cluster_id=target.cluster_id,
            project_id=target.project_id,
            role_id=grant.role_id,
            user_id=user.id if user is not None else None,
            user_principal_id=None if user is not None else principal,
            labels={self.grant_label: grant.id},
            annotations={SLACK_USER_ANNOTATION: grant.slack_user},
        )

    async def delete(self, grant: Grant) -> None:
        """Delete the grant's binding (already gone counts); without a recorded id, whatever carries its tag."""
        if grant.binding_id:
            await self._rancher.delete_binding(
                RoleBinding(
                    id=grant.binding_id,
                    scope=Scope.PROJECT if grant.target.project_id else Scope.CLUSTER,
                    role_id=grant.role_id,
                    cluster_id=grant.target.cluster_id,
                    project_id=grant.target.project_id,
                    name=grant.binding_name or "",
                )
            )
            return
        # No binding id recorded (crash before it was): delete whatever carries this grant's tag.
        for b in await self._rancher.list_target_bindings(grant.target.cluster_id, grant.target.project_id):
            if b.labels.get(self.grant_label) == grant.id:
                await self._rancher.delete_binding(b)

    def standing(
        self, bindings: Sequence[RoleBinding], role: str, principals: PrincipalSet, user: RancherUser | None
    ) -> list[RoleBinding]:
        """Bindings not made by the bot that already give this role on this target to the user or their groups."""
        mine_users = {principals.user_id} | ({user.id} if user else set())
        mine_principals = set(principals.principal_ids) | set(user.principal_ids if user else ())
        groups = set(principals.group_principal_ids)
        out = []
        for b in bindings:
            if b.role_id != role or self.grant_label in b.labels:
                continue
            if b.user_id in mine_users or b.user_principal_id in mine_principals or b.group_principal_id in groups:
                out.append(b)
        return out
