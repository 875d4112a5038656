"""Effective access: which bindings a user holds and how each right is explained."""

from __future__ import annotations

import pytest

from bot.core.effective_access import (
    GRB_OWNER_LABEL,
    effective_rights,
    filter_rights,
    resolve_target,
)
from bot.core.errors import NotFound
from bot.core.model import (
    Cluster,
    GlobalRole,
    Grant,
    GrantState,
    PolicyRule,
    PrincipalSet,
    Project,
    RoleBinding,
    RoleTemplate,
    Scope,
    Target,
)

NOW = 1_800_000_000
LABEL = "accessbot.io/grant"
ME = PrincipalSet(
    user_principal_id="genericoidc_user://alice",
    group_principal_ids=("genericoidc_group://sre", "genericoidc_group://devs"),
    user_id="u-alice00000",
    principal_ids=("genericoidc_user://alice", "local://u-alice00000"),
    group_names={"genericoidc_group://sre": "sre", "genericoidc_group://devs": "devs"},
)
CLUSTERS = [Cluster("local", "local"), Cluster("c-aaaaa", "dev-eu"), Cluster("c-m-bbbbbbbb", "prod-eu")]
PROJECTS = [
    Project("c-aaaaa:p-11111", "payments", "c-aaaaa"),
    Project("c-m-bbbbbbbb:p-22222", "payments", "c-m-bbbbbbbb"),
    Project("c-m-bbbbbbbb:p-33333", "checkout", "c-m-bbbbbbbb"),
]
ROLES = [
    RoleTemplate("cluster-member", "Cluster Member", "cluster"),
    RoleTemplate("project-owner", "Project Owner", "project"),
    RoleTemplate("read-only", "Read-only", "project"),
]
GLOBAL = [
    GlobalRole("admin", "Admin", builtin=True),  # rancher pkg/rbac/common.go IsAdminGlobalRole: builtin `admin`
    GlobalRole("observer", "Platform Observer", ("cluster-member",)),
]


def crtb(bid: str, cluster: str, role: str = "cluster-member", **kw: object) -> RoleBinding:
    """A cluster binding."""
    return RoleBinding(id=f"{cluster}:{bid}", scope=Scope.CLUSTER, role_id=role, cluster_id=cluster, name=bid, **kw)  # type: ignore[arg-type]


def prtb(bid: str, project: str, role: str = "read-only", **kw: object) -> RoleBinding:
    """A project binding with an opaque id."""
    return RoleBinding(
        id=f"ns:{bid}",
        scope=Scope.PROJECT,
        role_id=role,
        cluster_id=project.split(":", maxsplit=1)[0],
        project_id=project,
        name=bid,
        **kw,  # type: ignore[arg-type]
    )


def grant(gid: str, target: Target, role: str, expires_at: int, state: GrantState = GrantState.ACTIVE) -> Grant:
    """A bot grant."""
    return Grant(
        id=gid,
        slack_user="U1",
        subject="alice",
        target=target,
        role_id=role,
        duration_s=3600,
        rule="r",
        state=state,
        requested_at=NOW - 100,
        expires_at=expires_at,
    )


def rights_of(bindings: list[RoleBinding], grants: tuple[Grant, ...] = ()) -> list[tuple[str, str, str]]:
    """(where, role name, source text) for each right."""
    rights = effective_rights(
        ME,
        bindings,
        global_roles=GLOBAL,
        role_templates=ROLES,
        clusters=CLUSTERS,
        projects=PROJECTS,
        grants=grants,
        grant_label=LABEL,
        now=NOW,
    )
    return [(r.where, r.role_name, r.source_text) for r in rights]


@pytest.mark.parametrize(
    ("binding", "expected"),
    [
        (crtb("crtb-1", "c-aaaaa", user_id="u-alice00000"), ("dev-eu", "Cluster Member", "direct")),
        (
            crtb("crtb-2", "c-aaaaa", user_principal_id="genericoidc_user://alice"),
            ("dev-eu", "Cluster Member", "direct"),
        ),
        (crtb("crtb-3", "c-aaaaa", user_principal_id="local://u-alice00000"), ("dev-eu", "Cluster Member", "direct")),
        (
            prtb("prtb-1", "c-aaaaa:p-11111", group_principal_id="genericoidc_group://sre"),
            ("dev-eu/payments", "Read-only", "via group sre"),
        ),
        (
            prtb("prtb-2", "c-m-bbbbbbbb:p-22222", "project-owner", user_id="u-alice00000"),
            ("prod-eu/payments", "Project Owner", "direct"),
        ),
        (crtb("crtb-4", "c-aaaaa", "unknown-role", user_id="u-alice00000"), ("dev-eu", "unknown-role", "direct")),
    ],
    ids=["user-id", "user-principal", "local-principal", "group", "project-direct", "unknown-role-id"],
)
def test_single_binding_provenance(binding: RoleBinding, expected: tuple[str, str, str]) -> None:
    """Each way of holding a binding is shown with the matching place, role name and source."""
    assert rights_of([binding]) == [expected]


@pytest.mark.parametrize(
    "binding",
    [
        crtb("crtb-x", "c-aaaaa", user_id="u-bob0000000"),
        crtb("crtb-y", "c-aaaaa", user_principal_id="genericoidc_user://bob"),
        prtb("prtb-z", "c-aaaaa:p-11111", group_principal_id="genericoidc_group://other"),
    ],
    ids=["other-user", "other-principal", "other-group"],
)
def test_bindings_of_others_are_ignored(binding: RoleBinding) -> None:
    """A binding the user does not hold never becomes a right (fail closed on a widened answer)."""
    assert rights_of([binding]) == []


def test_grant_label_gives_grant_provenance_with_time_left() -> None:
    """A binding labelled with a live grant shows the grant id and the time left."""
    bound = crtb("crtb-g", "c-m-bbbbbbbb", user_id="u-alice00000", labels={LABEL: "g-12"})
    live = grant("g-12", Target("c-m-bbbbbbbb"), "cluster-member", NOW + 4800)
    assert rights_of([bound], (live,)) == [("prod-eu", "Cluster Member", "grant g-12 · 1h 20m left")]


def test_live_grant_without_binding_is_shown_with_a_note() -> None:
    """An active grant whose binding Rancher does not show is listed honestly."""
    live = grant("g-3", Target("c-aaaaa", "c-aaaaa:p-11111"), "read-only", NOW + 60)
    assert rights_of([], (live,)) == [("dev-eu/payments", "Read-only", "grant g-3 · 1m left (not seen in Rancher)")]


def test_ended_grant_is_ignored_and_binding_falls_back_to_subject() -> None:
    """A grant label of a revoked grant does not claim the binding; the subject explains it."""
    bound = crtb("crtb-g", "c-aaaaa", user_id="u-alice00000", labels={LABEL: "g-1"})
    old = grant("g-1", Target("c-aaaaa"), "cluster-member", NOW - 10, GrantState.REVOKED)
    assert rights_of([bound], (old,)) == [("dev-eu", "Cluster Member", "direct")]


def test_global_admin_is_everything_and_sorted_first() -> None:
    """The global admin role is flagged `everything` and listed before cluster rights."""
    rights = effective_rights(
        ME,
        [
            crtb("crtb-1", "c-aaaaa", user_id="u-alice00000"),
            RoleBinding("grb-1", Scope.GLOBAL, "admin", user_id="u-alice00000", name="grb-1"),
        ],
        global_roles=GLOBAL,
        role_templates=ROLES,
        clusters=CLUSTERS,
        projects=PROJECTS,
        grants=(),
        grant_label=LABEL,
        now=NOW,
    )
    assert rights[0].everything
    assert rights[0].role_name == "Admin"
    assert [r.where for r in rights] == ["global", "dev-eu"]


def test_inherited_cluster_roles_are_attributed_to_the_global_role() -> None:
    """crtb-grb-* bindings owned by a GRB are explained by the global role, and the group it came through."""
    grb = RoleBinding("grb-obs", Scope.GLOBAL, "observer", group_principal_id="genericoidc_group://sre", name="grb-obs")
    inherited = crtb(
        "crtb-grb-abcde", "c-aaaaa", group_principal_id="genericoidc_group://sre", labels={GRB_OWNER_LABEL: "grb-obs"}
    )
    assert rights_of([grb, inherited]) == [
        ("global", "Platform Observer", "via group sre"),
        ("dev-eu", "Cluster Member", "via global role Platform Observer (group sre)"),
    ]


def test_rights_are_sorted_by_cluster_then_project_and_deduplicated() -> None:
    """Clusters sort by name, cluster rights precede their projects, duplicates collapse."""
    bindings = [
        prtb("prtb-1", "c-m-bbbbbbbb:p-33333", user_id="u-alice00000"),
        crtb("crtb-1", "c-m-bbbbbbbb", user_id="u-alice00000"),
        prtb("prtb-2", "c-aaaaa:p-11111", user_id="u-alice00000"),
        prtb("prtb-3", "c-m-bbbbbbbb:p-22222", user_id="u-alice00000"),
        prtb("prtb-4", "c-m-bbbbbbbb:p-22222", user_principal_id="genericoidc_user://alice"),
    ]
    assert [w for w, _, _ in rights_of(bindings)] == [
        "dev-eu/payments",
        "prod-eu",
        "prod-eu/checkout",
        "prod-eu/payments",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("dev-eu", Target("c-aaaaa")),
        ("DEV-EU", Target("c-aaaaa")),
        ("c-m-bbbbbbbb", Target("c-m-bbbbbbbb")),
        ("prod-eu/payments", Target("c-m-bbbbbbbb", "c-m-bbbbbbbb:p-22222")),
        ("prod-eu/p-33333", Target("c-m-bbbbbbbb", "c-m-bbbbbbbb:p-33333")),
        ("c-aaaaa:p-11111", Target("c-aaaaa", "c-aaaaa:p-11111")),
    ],
)
def test_resolve_target_by_name_or_id(text: str, expected: Target) -> None:
    """Filters accept cluster and project names (any case) or ids."""
    assert resolve_target(text, CLUSTERS, PROJECTS) == expected


@pytest.mark.parametrize("text", ["nowhere", "dev-eu/checkout", "c-x:p-y"])
def test_resolve_unknown_target_is_not_found(text: str) -> None:
    """An unknown cluster or project is a NotFound with a hint."""
    with pytest.raises(NotFound):
        resolve_target(text, CLUSTERS, PROJECTS)


def test_filter_by_cluster_and_by_project() -> None:
    """A cluster filter keeps the cluster and its projects; a project filter that project and its cluster's rights.

    A cluster role is bound cluster-wide downstream (rancher pkg/controllers/managementuser/rbac/crtb_handler.go
    ClusterRoleBinding), so it applies in every project of the cluster; admin stays.
    """
    rights = effective_rights(
        ME,
        [
            crtb("crtb-1", "c-m-bbbbbbbb", user_id="u-alice00000"),
            prtb("prtb-1", "c-m-bbbbbbbb:p-22222", user_id="u-alice00000"),
            prtb("prtb-2", "c-aaaaa:p-11111", user_id="u-alice00000"),
            RoleBinding("grb-1", Scope.GLOBAL, "admin", user_id="u-alice00000", name="grb-1"),
        ],
        global_roles=GLOBAL,
        role_templates=ROLES,
        clusters=CLUSTERS,
        projects=PROJECTS,
        grants=(),
        grant_label=LABEL,
        now=NOW,
    )
    assert [r.where for r in filter_rights(rights, Target("c-m-bbbbbbbb"))] == ["global", "prod-eu", "prod-eu/payments"]
    assert [r.where for r in filter_rights(rights, Target("c-aaaaa", "c-aaaaa:p-11111"))] == [
        "global",
        "dev-eu/payments",
    ]
    assert [r.where for r in filter_rights(rights, Target("c-m-bbbbbbbb", "c-m-bbbbbbbb:p-22222"))] == [
        "global",
        "prod-eu",
        "prod-eu/payments",
    ]


WIDE_ROLES = [
    *ROLES,
    # rancher pkg/data/management/role_data.go: cluster-owner */*/*; a custom role inheriting project-owner
    RoleTemplate("cluster-owner", "Cluster Owner", "cluster", rules=(PolicyRule(("*",), ("*",), ("*",)),)),
    RoleTemplate("project-lead", "Project Lead", "project", inherits=("project-owner", "edit")),
    RoleTemplate("edit", "Kubernetes edit", "project", hidden=True),
]
WIDE_GLOBAL = [
    *GLOBAL,
    GlobalRole(
        "platform-admin",
        "Platform Admin",
        rules=(PolicyRule(("*",), ("*",), ("*",)), PolicyRule(non_resource_urls=("*",), verbs=("*",))),
    ),
    GlobalRole("restricted-admin", "Restricted Admin", builtin=True),
]


def wide(bindings: list[RoleBinding], *, two_seven: bool = False) -> list[object]:
    """Rights with the wider role catalogue."""
    return effective_rights(  # type: ignore[return-value]
        ME,
        bindings,
        global_roles=WIDE_GLOBAL,
        role_templates=WIDE_ROLES,
        clusters=CLUSTERS,
        projects=PROJECTS,
        grants=(),
        grant_label=LABEL,
        now=NOW,
        restricted_admin_is_admin=two_seven,
    )


def test_inherited_roles_are_named_and_owner_like_roles_cover_every_project() -> None:
    """A right names the visible roles it inherits (roleTemplateIds); cluster-owner says it covers every project."""
    rights = wide(
        [
            prtb("prtb-1", "c-aaaaa:p-11111", role="project-lead", user_id="u-alice00000"),
            crtb("crtb-1", "c-m-bbbbbbbb", role="cluster-owner", group_principal_id="genericoidc_group://sre"),
        ]
    )
    by_role = {r.role_id: r for r in rights}  # type: ignore[attr-defined]
    assert by_role["project-lead"].includes == ("Project Owner",)  # hidden `edit` is not named
    assert by_role["cluster-owner"].all_projects
    assert not by_role["project-lead"].all_projects


def test_a_custom_admin_equivalent_role_held_by_a_group_is_everything() -> None:
    """A global role with */*/* and nonResourceURLs * is admin (pkg/rbac/common.go), held through a group too."""
    rights = wide([RoleBinding("grb-9", Scope.GLOBAL, "platform-admin", group_principal_id="genericoidc_group://devs")])
    (right,) = rights
    assert right.everything
    assert not right.downstream_only
    assert right.source_text == "via group devs"  # type: ignore[attr-defined]


def test_restricted_admin_crtbs_are_attributed_to_the_global_role() -> None:
    """2.8-2.10 restricted-admin cluster-owner CRTBs (label field.cattle.io/source) show as that global role."""
    labels = {"field.cattle.io/source": "restrictedAdminsClusterOwner"}
    (right,) = wide([crtb("u-alice00000-restricted-admin-cluster-owner", "c-aaaaa", role="cluster-owner",
                          user_id="u-alice00000", labels=labels)])  # fmt: skip
    assert right.source_text == "via global role Restricted Admin"  # type: ignore[attr-defined]


def test_restricted_admin_on_2_7_is_everything_but_local() -> None:
    """On 2.7 restricted-admin is cluster-admin downstream (globalrole_handler.go@v2.7.0), not in `local`."""
    rights = wide([RoleBinding("grb-2", Scope.GLOBAL, "restricted-admin", user_id="u-alice00000")], two_seven=True)
    (right,) = rights
    assert right.everything
    assert right.downstream_only
    assert filter_rights(rights, Target("local")) == []  # type: ignore[arg-type]
    assert filter_rights(rights, Target("c-aaaaa")) == rights  # type: ignore[arg-type]
    assert not wide([RoleBinding("grb-2", Scope.GLOBAL, "restricted-admin", user_id="u-alice00000")])[0].everything  # type: ignore[attr-defined]
