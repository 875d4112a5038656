"""The use case "what can I access": read Rancher through RancherApi and explain every right with the core."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace

from bot.core.effective_access import AccessReport, Right, effective_rights, filter_rights, resolve_target
from bot.core.errors import NotLinked
from bot.core.grant_lifecycle import GRANTED, OPEN_REQUEST
from bot.core.model import Grant, Identity, LinkStatus, PrincipalSet, RancherUser
from bot.core.ports import Clock, RancherApi
from bot.core.principals import PrincipalMapping, derive_user_id, groups_as_of
from bot.core.storage import GrantStore, LinkStore

__all__ = ["AccessReport", "AccessService", "Right"]


class AccessService:
    """Explains a user's Rancher access; every Rancher read it needs runs concurrently."""

    def __init__(
        self,
        *,
        rancher: RancherApi,
        grant_label: str,
        links: LinkStore,
        grants: GrantStore,
        principals: PrincipalMapping,
        clock: Clock,
    ) -> None:
        self._rancher = rancher
        self._grant_label = grant_label
        self._links = links
        self._grants = grants
        self._mapping = principals
        self._clock = clock

    def linked(self, slack_user: str) -> Identity | None:
        """The active identity of a Slack user, or None."""
        record = self._links.get(slack_user)
        return record.identity if record is not None and record.identity.status is LinkStatus.ACTIVE else None

    def granted(self, slack_user: str) -> list[Grant]:
        """The user's grants that give access now (or are about to), newest first."""
        return self._grants.find(slack_user=slack_user, states=GRANTED, limit=50)

    def pending(self, slack_user: str) -> list[Grant]:
        """The user's requests waiting for a decision, newest first."""
        return self._grants.find(slack_user=slack_user, states=OPEN_REQUEST, limit=50)

    async def report(self, slack_user: str, filter: str | None = None) -> AccessReport:
        """Rancher RBAC plus the user's own grants, for one linked Slack user (NotLinked otherwise)."""
        identity = self.linked(slack_user)
        if identity is None:
            raise NotLinked("Your Slack account is not linked to your company identity.")
        return await self.describe(self._mapping.of(identity), self.granted(slack_user), self._clock.now(), filter)

    async def describe(
        self, principals: PrincipalSet, grants: Sequence[Grant], now: int, filter: str | None = None
    ) -> AccessReport:
        """Everything the user can access (optionally one `CLUSTER` or `CLUSTER/PROJECT`), with provenance.

        The user is found by principal (the derived id first): bindings are read for the derived id at once, and
        once more for the real id when Rancher's user is another one (the admin who enabled the provider, users
        created through the API).
        """
        derived = principals.user_id or derive_user_id(principals.user_principal_id)
        wanted_principals = tuple(dict.fromkeys((principals.user_principal_id, *principals.principal_ids)))
        reads = asyncio.gather(
            self._rancher.find_user(principals.user_principal_id),
            self._rancher.list_bindings(
                user_ids=[derived],
                user_principal_ids=wanted_principals,
                group_principal_ids=principals.group_principal_ids,
            ),
            self._rancher.list_global_roles(),
            self._rancher.list_role_templates(),
            self._rancher.list_clusters(),
            self._rancher.list_projects(),
        )
        (user, bindings, global_roles, role_templates, clusters, projects), features = await asyncio.gather(
            reads, self._rancher.features()
        )
        if user is not None and user.id != derived:
            extra = [p for p in user.principal_ids if p not in wanted_principals]
            more = await self._rancher.list_bindings(user_ids=[user.id], user_principal_ids=extra)
            bindings = [*bindings, *more]
        confirmed = _confirmed(principals, user)
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
            restricted_admin_is_admin=features.has("restricted_admin_cluster_admin"),
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
            principals=confirmed,
            user=user,
            rights=tuple(rights),
            now=now,
            filter=filter or None,
            names=names,
            groups_as_of=groups_as_of(self._mapping.provider),
        )


def _confirmed(principals: PrincipalSet, user: RancherUser | None) -> PrincipalSet:
    """The principal set with Rancher's user id and principals when a user holds our principal, else none."""
    if user is not None and principals.user_principal_id in user.principal_ids:
        ids = tuple(dict.fromkeys((principals.user_principal_id, *user.principal_ids)))
        return replace(principals, user_id=user.id, principal_ids=ids)
    return replace(principals, user_id=None, principal_ids=(principals.user_principal_id,))
