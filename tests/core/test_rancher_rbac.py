"""Rancher's widening of bindings into rights: inheritance, owner-like cluster roles, admin-like global roles."""

from __future__ import annotations

import time

import pytest

from bot.core.model import GlobalRole, PolicyRule, RoleBinding, RoleTemplate, Scope, Target
from bot.core.rancher_rbac import closure, covering, included_names, is_admin_global_role, owner_like

ALL = PolicyRule(api_groups=("*",), resources=("*",), verbs=("*",))
NON_RESOURCE = PolicyRule(non_resource_urls=("*",), verbs=("*",))
# rancher pkg/data/management/role_data.go: cluster-owner */*/*; project-owner inherits admin, project-member edit
TEMPLATES = {
    t.id: t
    for t in (
        RoleTemplate("cluster-owner", "Cluster Owner", "cluster", rules=(ALL,)),
        RoleTemplate("cluster-member", "Cluster Member", "cluster"),
        RoleTemplate("cluster-operator", "Cluster Operator", "cluster", inherits=("cluster-owner",)),
        RoleTemplate("project-owner", "Project Owner", "project", inherits=("admin",)),
        RoleTemplate("project-member", "Project Member", "project", inherits=("edit",)),
        RoleTemplate("project-lead", "Project Lead", "project", inherits=("project-member", "workloads-view")),
        RoleTemplate("workloads-view", "View Workloads", "project"),
        RoleTemplate("edit", "Kubernetes edit", "project", hidden=True),
        RoleTemplate("admin", "Kubernetes admin", "project", hidden=True),
    )
}
GLOBAL = {
    g.id: g
    for g in (
        GlobalRole("admin", "Admin", builtin=True),
        GlobalRole("platform-admin", "Platform Admin", rules=(ALL, NON_RESOURCE)),
        GlobalRole("resources-only", "Resources Only", rules=(ALL,)),
        GlobalRole("user", "Standard User", builtin=True),
        GlobalRole("restricted-admin", "Restricted Admin", builtin=True),
    )
}
PAYMENTS = Target("c-1", "c-1:p-1")
LABEL = "accessbot.io/grant"


def crtb(role: str, cluster: str = "c-1", **kw: object) -> RoleBinding:
    """A cluster binding."""
    return RoleBinding(id=f"{cluster}:b-{role}", scope=Scope.CLUSTER, role_id=role, cluster_id=cluster, **kw)  # type: ignore[arg-type]


def prtb(role: str, project: str = "c-1:p-1", **kw: object) -> RoleBinding:
    """A project binding."""
    cluster = project.split(":", maxsplit=1)[0]
    return RoleBinding(
        id=f"p:b-{role}", scope=Scope.PROJECT, role_id=role, cluster_id=cluster, project_id=project, **kw
    )  # type: ignore[arg-type]


def grb(role: str, **kw: object) -> RoleBinding:
    """A global role binding."""
    return RoleBinding(id=f"grb-{role}", scope=Scope.GLOBAL, role_id=role, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("admin", True),  # builtin admin
        ("platform-admin", True),  # */*/* + nonResourceURLs *
        ("resources-only", False),  # */*/* alone is not admin
        ("user", False),
        ("restricted-admin", False),  # admin-like only downstream on 2.7 (handled by `covering`)
        ("unknown", False),
    ],
)
def test_admin_global_role_follows_rancher_is_admin_global_role(role: str, expected: bool) -> None:
    """rancher pkg/rbac/common.go@v2.14.0 IsAdminGlobalRole: builtin admin, or both wildcard rules."""
    assert is_admin_global_role(GLOBAL.get(role)) is expected


def test_a_non_builtin_role_named_admin_needs_the_rules() -> None:
    """Only the *builtin* `admin` is admin by name (`gr.Builtin && gr.Name == GlobalAdmin`)."""
    assert not is_admin_global_role(GlobalRole("admin", "Impostor"))


def test_closure_follows_role_template_ids_transitively() -> None:
    """A role grants every template in its roleTemplateIds, transitively (authz_types.go RoleTemplateNames)."""
    assert closure("project-lead", TEMPLATES) == ("project-lead", "project-member", "workloads-view", "edit")
    assert included_names("project-lead", TEMPLATES) == ("Project Member", "View Workloads")  # hidden `edit` left out


def test_owner_like_is_any_cluster_role_granting_everything_even_by_inheritance() -> None:
    """cluster-owner and a custom role inheriting it cover every project; cluster-member does not."""
    assert owner_like("cluster-owner", TEMPLATES)
    assert owner_like("cluster-operator", TEMPLATES)
    assert not owner_like("cluster-member", TEMPLATES)


def test_inheritance_cycles_and_deep_chains_are_cut_quickly() -> None:
    """Hostile Rancher data: a 20,000-deep chain and a cycle resolve in linear time (budget 1 s, best of 3)."""
    chain = {f"r{i}": RoleTemplate(f"r{i}", f"R{i}", "project", inherits=(f"r{i + 1}",)) for i in range(20000)}
    chain["r20000"] = RoleTemplate("r20000", "R", "project", inherits=("r0",))  # back to the start
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        assert len(closure("r0", chain)) == 20001
        best = min(best, time.perf_counter() - started)
    assert best < 1.0


def cover(held: list[RoleBinding], role: str, target: Target, *, two_seven: bool = False) -> list[tuple[str, str]]:
    """(binding id, how) of what covers `role` on `target`."""
    found = covering(
        held,
        role,
        target,
        templates=TEMPLATES,
        global_roles=GLOBAL,
        grant_label=LABEL,
        restricted_admin_is_admin=two_seven,
    )
    return [(c.binding.id, c.how) for c in found]


def test_same_role_and_inherited_role_cover_a_project_request() -> None:
    """project-member is covered by itself and by project-lead, which inherits it, on the same project only."""
    held = [prtb("project-member"), prtb("project-lead"), prtb("project-lead", "c-1:p-2")]
    assert cover(held, "project-member", PAYMENTS) == [("p:b-project-member", "same"), ("p:b-project-lead", "inherits")]


def test_owner_like_cluster_role_covers_every_project_of_its_cluster_only() -> None:
    """cluster-owner on c-1 covers a project role in c-1 (role_data.go */*/*), not in c-2."""
    assert cover([crtb("cluster-owner")], "project-member", PAYMENTS) == [("c-1:b-cluster-owner", "owner")]
    assert cover([crtb("cluster-owner", "c-2")], "project-member", PAYMENTS) == []
    assert cover([crtb("cluster-member")], "project-member", PAYMENTS) == []


def test_admin_like_global_role_covers_everything_and_restricted_admin_only_downstream_on_2_7() -> None:
    """An admin-like GRB covers any request; restricted-admin covers downstream clusters on 2.7 only."""
    assert cover([grb("platform-admin")], "cluster-owner", Target("local")) == [("grb-platform-admin", "admin")]
    assert cover([grb("restricted-admin")], "cluster-owner", Target("c-1")) == []
    assert cover([grb("restricted-admin")], "cluster-owner", Target("c-1"), two_seven=True) == [
        ("grb-restricted-admin", "admin")
    ]
    assert cover([grb("restricted-admin")], "cluster-owner", Target("local"), two_seven=True) == []


def test_the_bots_own_and_terminating_bindings_never_cover() -> None:
    """A binding tagged by the bot (an open grant: reported as a duplicate) or being deleted covers nothing."""
    held = [prtb("project-member", labels={LABEL: "g-1"}), crtb("cluster-owner", terminating=True)]
    assert cover(held, "project-member", PAYMENTS) == []
