"""The Rancher bindings behind grants: create or adopt a grant's tagged binding, delete it, find standing access.

Activation, the reconciler's repair and revocation all go through here, so a binding is created one way only:
under the grant's deterministic name, with the grant label, bound by the Rancher user's real id when a user holds
the grant's principal (found by principal, not only by the derived id) and by the principal only when none does.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.core.errors import NotLinked
from bot.core.model import Deletion, Grant, RancherUser, RoleBinding, Scope
from bot.core.ports import RancherApi
from bot.services.grants.directory import Directory

SLACK_USER_ANNOTATION = "accessbot.io/slack-user"


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

    async def user_for(self, principal: str, *, fresh: bool = False) -> RancherUser | None:
        """The Rancher user holding a user principal (derived id first, then by principal), or None."""
        return await self._rancher.find_user(principal, fresh=fresh)

    def mine(self, bindings: Sequence[RoleBinding], grant: Grant) -> list[RoleBinding]:
        """The bindings whose grant label VALUE is this grant's id (a label key alone proves nothing)."""
        return [b for b in bindings if b.labels.get(self.grant_label) == grant.id]

    async def ensure(self, grant: Grant, *, adopt: bool, user: RancherUser | None = None) -> RoleBinding:
        """The grant's tagged binding: adopted when `adopt` and a live one exists, else created under its name.

        With no user given, the user is looked up with a fresh index: a user who logged in a minute ago must be
        bound by id (a key from another provider cannot bind their principal).
        """
        target = grant.target
        if adopt:
            found = await self._rancher.list_target_bindings(target.cluster_id, target.project_id)
            for b in self.mine(found, grant):
                if not b.terminating:
                    return b
        principal = self.principal_of(grant)
        if user is None:
            user = await self.user_for(principal, fresh=True)
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

    async def delete(self, grant: Grant) -> Deletion:
        """Delete the grant's binding: gone, already gone, or terminating (its finalizers still run downstream).

        Without a recorded id (a crash before it was stored), whatever carries this grant's tag is deleted.
        """
        if grant.binding_id:
            return await self._rancher.delete_binding(
                RoleBinding(
                    id=grant.binding_id,
                    scope=Scope.PROJECT if grant.target.project_id else Scope.CLUSTER,
                    role_id=grant.role_id,
                    cluster_id=grant.target.cluster_id,
                    project_id=grant.target.project_id,
                    name=grant.binding_name or "",
                )
            )
        found = await self._rancher.list_target_bindings(grant.target.cluster_id, grant.target.project_id)
        outcomes = [await self._rancher.delete_binding(b) for b in self.mine(found, grant)]
        if Deletion.TERMINATING in outcomes:
            return Deletion.TERMINATING
        return Deletion.GONE if Deletion.GONE in outcomes else Deletion.ALREADY_GONE
