"""What every grant use case looks up: the grants, the policy's rules, linked identities and Rancher's names."""

from __future__ import annotations

import difflib

from bot.core.errors import NotFound, NotLinked, UpstreamError, UserError
from bot.core.model import Grant, Identity, LinkStatus, PrincipalSet, Target, person_key
from bot.core.notices import GrantFacts
from bot.core.policy import Catalog, Policy, ResolvedTarget, Rule
from bot.core.ports import Clock, RancherApi
from bot.core.principals import PrincipalMapping
from bot.core.storage import GrantStore, LinkStore

Names = tuple[str, str]
"""(target, role) as people read them."""


class Directory:
    """Lookups shared by the grant use cases; Rancher's names come from the client's cache."""

    def __init__(
        self,
        *,
        grants: GrantStore,
        links: LinkStore,
        rancher: RancherApi,
        clock: Clock,
        policy: Policy,
        principals: PrincipalMapping,
        admins: frozenset[str] = frozenset(),
    ) -> None:
        self._grants = grants
        self._links = links
        self._rancher = rancher
        self._clock = clock
        self.policy = policy
        self.mapping = principals
        self.admins = admins

    # --- grants and rules -----------------------------------------------------------------------------

    def get(self, grant_id: str) -> Grant:
        """A grant by id (as typed: spaces and capitals forgiven), or raise NotFound."""
        grant = self._grants.get(grant_id.strip().lower())
        if grant is None:
            raise NotFound(f"there is no grant {grant_id}", "see your grants with `grants`")
        return grant

    def reload(self, grant_id: str) -> Grant:
        """The stored grant (it exists: grants are never deleted)."""
        grant = self._grants.get(grant_id)
        if grant is None:  # pragma: no cover - grants are never deleted
            raise NotFound(f"there is no grant {grant_id}")
        return grant

    def rule(self, name: str) -> Rule | None:
        """The policy rule of that name, if it still exists."""
        return next((r for r in self.policy.rules if r.name == name), None)

    def governed_roles(self) -> set[str]:
        """Role template ids named by any policy rule."""
        return {role for rule in self.policy.rules for role in rule.roles}

    # --- people -----------------------------------------------------------------------------------------

    def identity(self, who: Identity | str) -> Identity:
        """The active linked identity of a Slack user (an Identity is re-read), or raise NotLinked."""
        slack_user = who.slack_user if isinstance(who, Identity) else who
        ident = self.maybe_identity(slack_user)
        if ident is None:
            record = self._links.get(slack_user)
            if record is not None and record.identity.status is LinkStatus.RELINK:
                raise NotLinked("your identity provider asks you to sign in again before you can do this")
            raise NotLinked("your Slack account is not linked to your company identity")
        return ident

    def maybe_identity(self, slack_user: str) -> Identity | None:
        """The active linked identity of a Slack user, or None."""
        record = self._links.get(slack_user)
        if record is None or record.identity.status is not LinkStatus.ACTIVE:
            return None
        return record.identity

    def linked_person(self, person: str) -> Identity | None:
        """The active identity of a person (`issuer|subject`; `slack:U…` for approvals recorded before identities)."""
        if person.startswith("slack:"):
            return self.maybe_identity(person.removeprefix("slack:"))
        issuer, _, subject = person.partition("|")
        record = self._links.active_by_subject(issuer, subject)
        if record is None or record.identity.status is not LinkStatus.ACTIVE:
            return None  # a link waiting for a new sign-in neither requests nor approves
        return record.identity

    def still_approver(self, person: str, rule: Rule, requester: str) -> bool:
        """Whether an approval given earlier still counts: its person still linked, in an approver group, not the
        requester (unless the rule allows self-approval)."""
        ident = self.linked_person(person)
        if ident is None or not set(rule.approval.groups) & set(ident.policy_groups):
            return False
        return rule.self_approval or person_key(ident.issuer, ident.subject) != requester

    def linked(self) -> list[Identity]:
        """Every active linked identity."""
        return [record.identity for record in self._links.active()]

    def principals(self, ident: Identity) -> PrincipalSet:
        """The Rancher principals an identity maps to."""
        return self.mapping.of(ident)

    def is_approver(self, ident: Identity | None, rule: Rule | None = None) -> bool:
        """True when the identity is in the approver groups of `rule` (of any rule when None)."""
        if ident is None or ident.status is not LinkStatus.ACTIVE:
            return False
        rules = [rule] if rule is not None else list(self.policy.rules)
        return any(set(r.approval.groups) & set(ident.policy_groups) for r in rules)

    def approvers_of(self, rule: Rule | None, requester: str) -> list[str]:
        """Linked members of a rule's approver groups (the requester only when the rule allows self-approval)."""
        if rule is None:
            return []
        groups = set(rule.approval.groups)
        return sorted(
            ident.slack_user
            for ident in self.linked()
            if set(ident.policy_groups) & groups and (rule.self_approval or ident.slack_user != requester)
        )

    def sees_everyone(self, slack_user: str) -> bool:
        """Admins and approvers may see everyone's grants and who holds what."""
        return slack_user in self.admins or self.is_approver(self.maybe_identity(slack_user))

    # --- Rancher's names --------------------------------------------------------------------------------

    async def catalog(self) -> Catalog:
        """The role templates Rancher knows."""
        return Catalog.of(await self._rancher.list_role_templates())

    async def resolve_target(self, text: str) -> ResolvedTarget:
        """`CLUSTER` or `CLUSTER/PROJECT` (names or ids; a project id `c-x:p-y` alone works too) → Rancher objects."""
        raw = text.strip()
        cluster_text, _, project_text = raw.partition("/")
        if not project_text and ":" in cluster_text:
            cluster_text, project_text = cluster_text.split(":", 1)[0], cluster_text
        clusters = list(await self._rancher.list_clusters())
        found = (
            [c for c in clusters if c.id == cluster_text]
            or [c for c in clusters if c.name == cluster_text]
            or [c for c in clusters if c.name.lower() == cluster_text.lower()]
        )
        if not found:
            close = difflib.get_close_matches(cluster_text, [c.name for c in clusters], n=3)
            hint = f"did you mean {', '.join(close)}?" if close else "see what exists with `list`"
            raise NotFound(f"there is no cluster {cluster_text}", hint)
        if len(found) > 1:
            ids = ", ".join(c.id for c in found)
            raise UserError(f"several clusters are called {cluster_text}", f"use the cluster id: {ids}")
        cluster = found[0]
        if not project_text:
            return ResolvedTarget(cluster)
        projects = list(await self._rancher.list_projects(cluster.id))
        tail = project_text.split(":", 1)[-1]
        pfound = (
            [p for p in projects if p.id in (project_text, f"{cluster.id}:{tail}")]
            or [p for p in projects if p.name == project_text]
            or [p for p in projects if p.name.lower() == project_text.lower()]
        )
        if not pfound:
            close = difflib.get_close_matches(project_text, [p.name for p in projects], n=3)
            hint = f"did you mean {', '.join(close)}?" if close else f"projects in {cluster.name} are listed by `list`"
            raise NotFound(f"there is no project {project_text} in cluster {cluster.name}", hint)
        if len(pfound) > 1:
            ids = ", ".join(p.id for p in pfound)
            raise UserError(f"several projects are called {project_text}", f"use the project id: {ids}")
        return ResolvedTarget(cluster, pfound[0])

    async def display(self, target: Target) -> str:
        """`cluster` or `cluster/project` by name (ids when Rancher does not answer)."""
        try:
            cluster = next((c for c in await self._rancher.list_clusters() if c.id == target.cluster_id), None)
            cname = cluster.name if cluster else target.cluster_id
            if target.project_id is None:
                return cname
            project = next(
                (p for p in await self._rancher.list_projects(target.cluster_id) if p.id == target.project_id), None
            )
            return f"{cname}/{project.name if project else target.project_id}"
        except UpstreamError:
            return target.key

    async def role_name(self, role_id: str) -> str:
        """A role template's display name (its id when Rancher does not answer)."""
        try:
            return (await self.catalog()).name(role_id)
        except UpstreamError:
            return role_id

    async def names(self, grant: Grant) -> Names:
        """(target, role) of a grant as people read them."""
        return await self.display(grant.target), await self.role_name(grant.role_id)

    def facts(self, grant: Grant, names: Names) -> GrantFacts:
        """A grant with its names, its rule and the time now, for a notice."""
        return GrantFacts(grant, names[0], names[1], self._clock.now(), self.rule(grant.rule))

    async def facts_of(self, grant: Grant) -> GrantFacts:
        """A grant with its names looked up, for rendering."""
        return self.facts(grant, await self.names(grant))
