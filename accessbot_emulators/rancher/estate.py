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
