"""Group rules: who may request which role on which target, for how long, with whose approval."""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from bot.core.durations import format_duration
from bot.core.model import Cluster, Project, RoleTemplate, Scope, Target


@dataclass(frozen=True)
class ApprovalRule:
    """Approval needed: `count` distinct approvers from `groups` (empty groups = no approval needed)."""

    groups: tuple[str, ...] = ()
    count: int = 1

    @property
    def required(self) -> bool:
        """True when someone other than the system must approve."""
        return bool(self.groups)


@dataclass(frozen=True)
class Rule:
    """One policy rule as configured (selectors are names or ids with shell-style globs)."""

    name: str
    groups: tuple[str, ...]
    roles: tuple[str, ...]
    max_duration: timedelta
    default_duration: timedelta
    clusters: tuple[str, ...] = ()
    projects: tuple[str, ...] = ()  # "CLUSTER/PROJECT" globs
    cluster_labels: tuple[tuple[str, str], ...] = ()
    approval: ApprovalRule = field(default_factory=ApprovalRule)
    require_reason: bool = False
    max_extensions: int = 0
    self_approval: bool = False
    break_glass: bool = False


@dataclass(frozen=True)
class Policy:
    """All rules plus request-level settings."""

    rules: tuple[Rule, ...] = ()
    request_ttl: timedelta = timedelta(hours=1)
    min_duration: timedelta = timedelta(minutes=1)


# --- evaluation ---------------------------------------------------------------------------------------

_SCORE_GROUP, _SCORE_TARGET, _SCORE_LABELS, _SCORE_ROLE, _SCORE_KIND, _SCORE_DURATION, _SCORE_REASON = range(7)


@dataclass(frozen=True)
class ResolvedTarget:
    """A cluster, or a project in it, as Rancher names it (what selectors are matched against)."""

    cluster: Cluster
    project: Project | None = None

    @property
    def scope(self) -> Scope:
        """CLUSTER or PROJECT."""
        return Scope.PROJECT if self.project is not None else Scope.CLUSTER

    @property
    def target(self) -> Target:
        """The model value stored on a grant."""
        return Target(self.cluster.id, self.project.id if self.project is not None else None)

    @property
    def display(self) -> str:
        """`cluster` or `cluster/project`, by names."""
        return f"{self.cluster.name}/{self.project.name}" if self.project is not None else self.cluster.name


@dataclass(frozen=True)
class Catalog:
    """The role templates Rancher knows, by id (to check each role's context and show its name)."""

    roles: Mapping[str, RoleTemplate] = field(default_factory=dict)

    @classmethod
    def of(cls, templates: Iterable[RoleTemplate]) -> Catalog:
        """Build a catalog from a list of role templates."""
        return cls({t.id: t for t in templates})

    def context(self, role_id: str) -> str | None:
        """`cluster`, `project`, `` (global/none) or None when the role template is unknown."""
        template = self.roles.get(role_id)
        return template.context if template is not None else None

    def name(self, role_id: str) -> str:
        """Display name of a role template (its id when unknown)."""
        template = self.roles.get(role_id)
        return template.name if template is not None and template.name else role_id


@dataclass(frozen=True)
class AccessRequest:
    """What a linked user asks for; `duration` None means the matched rule's default."""

    groups: tuple[str, ...]
    target: ResolvedTarget
    role_id: str
    duration: timedelta | None = None
    reason: str = ""
    break_glass: bool = False


@dataclass(frozen=True)
class Decision:
    """The policy's answer, with the rule that decided and a human explanation (also for denials)."""

    allowed: bool
    why: str
    rule: Rule | None = None
    needs_approval: bool = False
    approvals_required: int = 0
    approver_groups: tuple[str, ...] = ()
    duration: timedelta | None = None
    max_duration: timedelta | None = None
    break_glass: bool = False
    closest: Rule | None = None


@dataclass(frozen=True)
class Option:
    """One thing a caller may request: a role on a target under a rule."""

    target: ResolvedTarget
    role_id: str
    role_name: str
    rule: Rule
    max_duration: timedelta
    default_duration: timedelta
    needs_approval: bool
    approvals_required: int
    break_glass: bool
    require_reason: bool


@dataclass(frozen=True)
class RuleSummary:
    """A rule as `/access rules` shows it to a caller."""

    name: str
    member: bool
    via_groups: tuple[str, ...]
    clusters: tuple[str, ...]
    projects: tuple[str, ...]
    cluster_labels: tuple[tuple[str, str], ...]
    roles: tuple[tuple[str, str], ...]  # (id, display name)
    max_duration: timedelta
    default_duration: timedelta
    approval_groups: tuple[str, ...]
    approvals_required: int
    require_reason: bool
    max_extensions: int
    self_approval: bool
    break_glass: bool


def _glob(pattern: str, *values: str | None) -> bool:
    return any(v is not None and fnmatch.fnmatchcase(v, pattern) for v in values)


def _project_ids(project: Project) -> tuple[str, str]:
    return project.id, project.id.split(":", 1)[-1]


def _labels_ok(rule: Rule, cluster: Cluster) -> bool:
    return all(
        key in cluster.labels and fnmatch.fnmatchcase(cluster.labels[key], value) for key, value in rule.cluster_labels
    )


def _selects(rule: Rule, target: ResolvedTarget) -> bool:
    """Whether the rule's cluster/project selectors cover the target (labels are checked apart)."""
    cluster, project = target.cluster, target.project
    labels_only = not rule.clusters and not rule.projects and bool(rule.cluster_labels)
    if labels_only:
        return True
    if project is None:
        return any(_glob(p, cluster.name, cluster.id) for p in rule.clusters)
    for selector in rule.projects:
        c_part, _, p_part = selector.partition("/")
        if _glob(c_part, cluster.name, cluster.id) and _glob(p_part, project.name, *_project_ids(project)):
            return True
    return False


def _permissiveness(rule: Rule) -> tuple[int, float, int]:
    """Sort key: smaller is more permissive (no approval, longest max, fewest approvers)."""
    return (
        int(rule.approval.required),
        -rule.max_duration.total_seconds(),
        rule.approval.count if rule.approval.required else 0,
    )


def _groups_text(groups: Sequence[str]) -> str:
    return f"group {groups[0]}" if len(groups) == 1 else "any of groups " + ", ".join(groups)


def _context_problem(role_id: str, target: ResolvedTarget, catalog: Catalog) -> str | None:
    context = catalog.context(role_id)
    if context is None:
        return f"role {role_id} is not a known Rancher role template"
    if context not in (Scope.CLUSTER.value, Scope.PROJECT.value):
        return f"role {role_id} is not a cluster or project role"
    if context != target.scope.value:
        where = "a cluster" if context == Scope.CLUSTER.value else "a project (CLUSTER/PROJECT)"
        return f"role {role_id} is a {context} role; it can only be requested on {where}, not on {target.display}"
    return None


def _check(policy: Policy, rule: Rule, request: AccessRequest) -> tuple[int, str, timedelta]:
    """(score, why-not, effective duration): score 7 means the rule allows the request."""
    duration = request.duration if request.duration is not None else rule.default_duration
    if not set(rule.groups) & set(request.groups):
        return _SCORE_GROUP, f"not in {_groups_text(rule.groups)}", duration
    if not _selects(rule, request.target):
        what = (
            "projects " + ", ".join(rule.projects) if request.target.project else "clusters " + ", ".join(rule.clusters)
        )
        if not (rule.projects if request.target.project else rule.clusters):
            what = "no projects" if request.target.project else "no clusters (only projects)"
        return (
            _SCORE_TARGET,
            f"{request.target.display} is not covered by rule {rule.name} (it selects {what})",
            duration,
        )
    if not _labels_ok(rule, request.target.cluster):
        wanted = ", ".join(f"{k}={v}" for k, v in rule.cluster_labels)
        return (
            _SCORE_LABELS,
            f"cluster {request.target.cluster.name} lacks the labels {wanted} of rule {rule.name}",
            duration,
        )
    if request.role_id not in rule.roles:
        allowed = ", ".join(rule.roles)
        return _SCORE_ROLE, f"role {request.role_id} not allowed by rule {rule.name} (allowed: {allowed})", duration
    if request.break_glass and not rule.break_glass:
        return _SCORE_KIND, f"rule {rule.name} is not a break-glass rule", duration
    if rule.break_glass and not request.break_glass:
        return _SCORE_KIND, f"rule {rule.name} is for break-glass requests only", duration
    if duration > rule.max_duration:
        return (
            _SCORE_DURATION,
            f"{format_duration(duration)} is over the {format_duration(rule.max_duration)} maximum of rule {rule.name}",
            duration,
        )
    if duration < policy.min_duration:
        return (
            _SCORE_DURATION,
            f"{format_duration(duration)} is under the {format_duration(policy.min_duration)} minimum",
            duration,
        )
    if rule.require_reason and not request.reason.strip():
        return _SCORE_REASON, f"reason required by rule {rule.name}", duration
    return _SCORE_REASON + 1, "", duration


def evaluate(policy: Policy, request: AccessRequest, catalog: Catalog) -> Decision:
    """Decide a request: the most permissive matching rule, or a denial naming the closest rule and why.

    Matching semantics:
    - Groups: a rule applies when the requester holds at least one of its IdP groups (exact, case-sensitive).
    - Selectors are shell globs (fnmatchcase) matched against a name OR an id.
      `clusters` selects clusters: the rule may grant cluster-context roles on those clusters, and nothing on
      their projects. `projects` (`CLUSTER/PROJECT`, each side a name or id glob; the project id may be written
      in full, `c-x:p-y`, or as its part after the colon) selects projects: project-context roles there.
      A rule with only `cluster_labels` selects the labelled clusters AND every project in them.
      `cluster_labels` always narrows further: every label must be present with that value (values may be globs).
    - The role template's context decides where a role can go at all: cluster roles only on clusters, project
      roles only on projects; an unknown role template is refused.
    - Break-glass rules apply only to break-glass requests, and break-glass requests only to break-glass rules;
      break-glass needs no approval (the approver groups are only notified).
    - Duration: the requested one, else the rule's default; it must lie within [policy.min_duration, max_duration].
    - Several matching rules: the most permissive wins — no approval first, then the longest max_duration,
      then fewer approvers, then the order in the config.
    - Denials report the rule that got furthest (group → target → labels → role → kind → duration → reason),
      the first such rule in config order on ties.
    """
    problem = _context_problem(request.role_id, request.target, catalog)
    if problem is not None:
        return Decision(allowed=False, why=problem, duration=request.duration, break_glass=request.break_glass)
    matches: list[tuple[Rule, timedelta]] = []
    best: tuple[int, Rule, str] | None = None
    for rule in policy.rules:
        score, why, duration = _check(policy, rule, request)
        if not why:
            matches.append((rule, duration))
        elif best is None or score > best[0]:
            best = (score, rule, why)
    if matches:
        rule, duration = min(matches, key=lambda m: _permissiveness(m[0]))
        return _allow(rule, duration)
    if best is None:
        return Decision(allowed=False, why="no policy rules are configured", duration=request.duration)
    _, closest, why = best
    return Decision(
        allowed=False,
        why=f"not allowed: {why}"
        if f"rule {closest.name}" in why
        else f"not allowed: {why} (closest rule: {closest.name})",
        duration=request.duration,
        max_duration=closest.max_duration,
        break_glass=request.break_glass,
        closest=closest,
    )


def _allow(rule: Rule, duration: timedelta) -> Decision:
    needs = rule.approval.required and not rule.break_glass
    count = rule.approval.count if needs else 0
    span = f"{format_duration(duration)} (max {format_duration(rule.max_duration)})"
    if rule.break_glass:
        why = f"break-glass by rule {rule.name}: {span}, self-approved and announced to the approvers"
    elif needs:
        who = ", ".join(rule.approval.groups)
        n = "1 approver" if count == 1 else f"{count} approvers"
        why = f"allowed by rule {rule.name} with approval by {n} from {who}: {span}"
    else:
        why = f"allowed by rule {rule.name} without approval: {span}"
    return Decision(
        allowed=True,
        why=why,
        rule=rule,
        needs_approval=needs,
        approvals_required=count,
        approver_groups=rule.approval.groups,
        duration=duration,
        max_duration=rule.max_duration,
        break_glass=rule.break_glass,
    )


def requestable(
    policy: Policy, groups: Sequence[str], catalog: Catalog, targets: Iterable[ResolvedTarget]
) -> list[Option]:
    """Every (target, role, break-glass) a caller in `groups` may request, under its most permissive rule."""
    mine = [r for r in policy.rules if set(r.groups) & set(groups)]
    best: dict[tuple[str, str, bool], Option] = {}
    for target in targets:
        for rule in mine:
            if not _selects(rule, target) or not _labels_ok(rule, target.cluster):
                continue
            for role_id in rule.roles:
                if _context_problem(role_id, target, catalog) is not None:
                    continue
                key = (target.target.key, role_id, rule.break_glass)
                current = best.get(key)
                if current is not None and _permissiveness(current.rule) <= _permissiveness(rule):
                    continue
                needs = rule.approval.required and not rule.break_glass
                best[key] = Option(
                    target=target,
                    role_id=role_id,
                    role_name=catalog.name(role_id),
                    rule=rule,
                    max_duration=rule.max_duration,
                    default_duration=rule.default_duration,
                    needs_approval=needs,
                    approvals_required=rule.approval.count if needs else 0,
                    break_glass=rule.break_glass,
                    require_reason=rule.require_reason or rule.break_glass,
                )
    return sorted(best.values(), key=lambda o: (o.target.display, o.role_id, o.break_glass))


def covering_rules(policy: Policy, target: ResolvedTarget, role_id: str) -> list[Rule]:
    """The rules (break-glass ones left out) under which someone could request `role_id` on `target`, in config
    order: the rules that govern that role there."""
    return [
        rule
        for rule in policy.rules
        if not rule.break_glass
        and role_id in rule.roles
        and _selects(rule, target)
        and _labels_ok(rule, target.cluster)
    ]


def can_approve(
    rule: Rule,
    approver_groups: Sequence[str],
    approver_slack: str,
    requester_slack: str,
    *,
    already: Sequence[str] = (),
) -> tuple[bool, str]:
    """Whether this approver may decide a request under `rule` (approver group, self-approval, one vote each)."""
    if not rule.approval.required:
        return False, f"rule {rule.name} needs no approval"
    via = [g for g in rule.approval.groups if g in approver_groups]
    if not via:
        return False, f"not in approver {_groups_text(rule.approval.groups)} of rule {rule.name}"
    if approver_slack == requester_slack and not rule.self_approval:
        return False, f"you cannot approve your own request (rule {rule.name} does not allow self-approval)"
    if approver_slack in already:
        return False, "you already decided on this request"
    return True, f"approver via group {via[0]}"


def rules_summary(
    policy: Policy, groups: Sequence[str], catalog: Catalog | None = None, *, all_rules: bool = False
) -> list[RuleSummary]:
    """The rules a caller in `groups` may use (every rule with `all_rules`), as data for `/access rules`."""
    out: list[RuleSummary] = []
    names = catalog or Catalog()
    for rule in policy.rules:
        via = tuple(g for g in rule.groups if g in groups)
        if not via and not all_rules:
            continue
        out.append(
            RuleSummary(
                name=rule.name,
                member=bool(via),
                via_groups=via,
                clusters=rule.clusters,
                projects=rule.projects,
                cluster_labels=rule.cluster_labels,
                roles=tuple((r, names.name(r)) for r in rule.roles),
                max_duration=rule.max_duration,
                default_duration=rule.default_duration,
                approval_groups=rule.approval.groups,
                approvals_required=rule.approval.count if rule.approval.required else 0,
                require_reason=rule.require_reason or rule.break_glass,
                max_extensions=rule.max_extensions,
                self_approval=rule.self_approval,
                break_glass=rule.break_glass,
            )
        )
    return out


def validate_policy(policy: Policy, catalog: Catalog, clusters: Sequence[Cluster]) -> list[str]:
    """Warnings about rules that cannot work as written (unknown roles, misplaced roles, selectors matching nothing).

    An empty catalog or cluster list (Rancher not reachable) skips the checks that need it.
    """
    warnings: list[str] = []
    for rule in policy.rules:
        labels_only = not rule.clusters and not rule.projects
        for role_id in rule.roles:
            if catalog.roles and role_id not in catalog.roles:
                close = difflib.get_close_matches(role_id, list(catalog.roles), n=3)
                hint = f" (did you mean {', '.join(close)}?)" if close else ""
                warnings.append(f"rule {rule.name}: role template {role_id} is unknown to Rancher{hint}")
                continue
            context = catalog.context(role_id)
            if context == Scope.PROJECT.value and not rule.projects and not labels_only:
                warnings.append(
                    f"rule {rule.name}: {role_id} is a project role but the rule selects only clusters "
                    "(add `projects:` such as CLUSTER/*)"
                )
            elif context == Scope.CLUSTER.value and not rule.clusters and not labels_only:
                warnings.append(
                    f"rule {rule.name}: {role_id} is a cluster role but the rule selects only projects "
                    "(add `clusters:`)"
                )
            elif context is not None and context not in (Scope.CLUSTER.value, Scope.PROJECT.value):
                warnings.append(f"rule {rule.name}: {role_id} is not a cluster or project role and cannot be granted")
        if not clusters:
            continue
        for selector in rule.clusters:
            if not any(_glob(selector, c.name, c.id) for c in clusters):
                warnings.append(f"rule {rule.name}: cluster selector {selector} matches no cluster")
        for selector in rule.projects:
            c_part = selector.partition("/")[0]
            if not any(_glob(c_part, c.name, c.id) for c in clusters):
                warnings.append(f"rule {rule.name}: project selector {selector} matches no cluster")
        if rule.cluster_labels and not any(_labels_ok(rule, c) for c in clusters):
            wanted = ", ".join(f"{k}={v}" for k, v in rule.cluster_labels)
            warnings.append(f"rule {rule.name}: no cluster has the labels {wanted}")
    return warnings
