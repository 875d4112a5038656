"""Estates to serve: the demo fixture, YAML fixture loading, and deterministic synthetic estates of any size."""

from __future__ import annotations

import copy
import random
from pathlib import Path

import yaml

from accessbot_emulators.rancher.naming import encode_name, user_id_for_principal
from accessbot_emulators.rancher.schema import Obj

DEMO_FIXTURE = Path(__file__).with_name("fixtures") / "demo.yaml"


def load_fixture(path: str | Path) -> Obj:
    """Read a YAML estate fixture (see fixtures/demo.yaml for the shape)."""
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a fixture is a mapping of resource lists")
    return data


def generate_estate(
    *,
    clusters: int = 10,
    projects: int = 50,
    bindings: int = 500,
    groups: int = 20,
    users: int = 100,
    seed: int = 0,
    provider: str = "genericoidc",
) -> Obj:
    """A deterministic large estate: the demo fixture plus N clusters, M projects, U users, G groups, K bindings."""
    rng = random.Random(seed)
    base = load_fixture(DEMO_FIXTURE)
    fx: Obj = copy.deepcopy(base)
    cluster_ids = []
    for i in range(clusters):
        cid = f"c-m-{encode_name(i, 8)}" if i % 3 else f"c-{encode_name(i, 5)}"
        cluster_ids.append(cid)
        fx["clusters"].append({"id": cid, "name": f"cluster-{i:04d}", "driver": "rke2" if i % 3 else "imported"})
    project_ids = []
    for j in range(projects):
        cid = cluster_ids[j % clusters]
        pid = f"{cid}:p-{encode_name(j, 5)}"
        project_ids.append(pid)
        fx["projects"].append({"id": pid, "name": f"project-{j:05d}", "style": "new" if j % 2 else "old"})
    user_pids = [f"{provider}_user://user-{u:05d}" for u in range(users)]
    for u, pid in enumerate(user_pids):
        fx["users"].append({"principal": pid, "name": f"User {u:05d}"})
    group_pids = [f"{provider}_group://group-{g:04d}" for g in range(groups)]
    for g, gpid in enumerate(group_pids):
        fx["principals"].append({"id": gpid, "name": f"group-{g:04d}", "principalType": "group"})
    cluster_roles = ["cluster-member", "cluster-owner", "projects-view"]
    project_roles = ["project-member", "project-owner", "read-only", "workloads-view"]
    for k in range(bindings):
        subject: Obj
        if rng.random() < 0.5:
            upid = user_pids[rng.randrange(users)]
            subject = {"userId": user_id_for_principal(upid), "userPrincipalId": upid}
        else:
            subject = {"groupPrincipalId": group_pids[rng.randrange(groups)]}
        if rng.random() < 0.3:
            fx["clusterRoleTemplateBindings"].append(
                {"name": f"crtb-{encode_name(k, 6)}", "clusterId": cluster_ids[rng.randrange(clusters)],
                 "roleTemplateId": rng.choice(cluster_roles), **subject}
            )  # fmt: skip
        else:
            fx["projectRoleTemplateBindings"].append(
                {"name": f"prtb-{encode_name(k, 6)}", "projectId": project_ids[rng.randrange(projects)],
                 "roleTemplateId": rng.choice(project_roles), **subject}
            )  # fmt: skip
    return fx


STANDING_CLUSTER_ROLES = ("cluster-owner", "cluster-member", "projects-view")
STANDING_PROJECT_ROLES = ("project-owner", "project-member", "read-only")
ENVIRONMENTS = ("prod", "staging", "dev")


def standing_estate(
    *,
    bindings: int = 10_000,
    clusters: int = 24,
    projects_per_cluster: int = 8,
    users: int = 2_000,
    groups: int = 200,
    cluster_share: float = 0.3,
    group_share: float = 0.4,
    bot_share: float = 0.02,
    labelled_share: float = 0.1,
    grant_label: str = "accessbot.io/grant",
    seed: int = 0,
    provider: str = "genericoidc",
) -> Obj:
    """The demo estate plus an estate with years of standing access: `bindings` CRTBs and PRTBs (that many more)
    of the owner, member and view roles, for users and groups, across prod-/staging-/dev- clusters and their projects.

    Each binding is as Rancher holds one a person created: a user binding names the user by `userId` or by
    `userPrincipalId` (Rancher's controller fills in the other, controllers.fill), a group binding by
    `groupPrincipalId`; names are unique (`crtb-`/`prtb-` and a deterministic generateName-style suffix).
    A `bot_share` of them carry `grant_label` (made by the bot, never reviewed) and a `labelled_share` carry labels
    and an annotation people set (kept by an undo). The demo's global roles with `inheritedClusterRoles` add their
    `crtb-grb-*` CRTBs in every new cluster, as Rancher would (controllers.inherit_cluster_roles).
    """
    rng = random.Random(seed)
    fx: Obj = copy.deepcopy(load_fixture(DEMO_FIXTURE))
    cluster_ids: list[str] = []
    project_ids: list[str] = []
    for i in range(clusters):
        # provisioned clusters are `c-m-` + 8 chars, imported ones `c-` + 5 (as in generate_estate)
        cid = f"c-m-{encode_name(1000 + i, 8)}" if i % 4 else f"c-{encode_name(1000 + i, 5)}"
        env = ENVIRONMENTS[i % len(ENVIRONMENTS)]
        fx["clusters"].append({"id": cid, "name": f"{env}-{i:03d}", "driver": "rke2" if i % 4 else "imported"})
        cluster_ids.append(cid)
        for j in range(projects_per_cluster):
            pid = f"{cid}:p-{encode_name(i * projects_per_cluster + j + 5000, 5)}"
            fx["projects"].append({"id": pid, "name": f"team-{j:02d}", "style": "new" if j % 2 else "old"})
            project_ids.append(pid)
    user_pids = [f"{provider}_user://standing-{u:05d}" for u in range(users)]
    fx["users"] += [{"principal": pid, "name": f"Standing User {u:05d}"} for u, pid in enumerate(user_pids)]
    group_pids = [f"{provider}_group://team-{g:04d}" for g in range(groups)]
    fx["principals"] += [{"id": g, "name": g.split("://", 1)[1], "principalType": "group"} for g in group_pids]
    for k in range(bindings):
        subject: Obj
        if rng.random() < group_share:
            subject = {"groupPrincipalId": group_pids[rng.randrange(groups)]}
        else:
            upid = user_pids[rng.randrange(users)]
            subject = {"userId": user_id_for_principal(upid)} if k % 2 else {"userPrincipalId": upid}
        extra: Obj = {}
        if rng.random() < bot_share:
            extra["labels"] = {grant_label: f"g-{k:06d}"}
        elif rng.random() < labelled_share:
            extra["labels"] = {"team": f"team-{k % 50:02d}", "cost-center": str(1000 + k % 7)}
            extra["annotations"] = {"example.com/ticket": f"SEC-{k}"}
        if rng.random() < cluster_share:
            fx["clusterRoleTemplateBindings"].append(
                {"name": f"crtb-{encode_name(k, 6)}", "clusterId": cluster_ids[rng.randrange(clusters)],
                 "roleTemplateId": rng.choice(STANDING_CLUSTER_ROLES), **subject, **extra}
            )  # fmt: skip
        else:
            fx["projectRoleTemplateBindings"].append(
                {"name": f"prtb-{encode_name(k, 6)}", "projectId": project_ids[rng.randrange(len(project_ids))],
                 "roleTemplateId": rng.choice(STANDING_PROJECT_ROLES), **subject, **extra}
            )  # fmt: skip
    return fx
