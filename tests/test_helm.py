"""The Helm chart: rendered by Helm's own Go code (helm-python-sdk binds Helm v4's SDK), in both database modes, and
every object validated against the Kubernetes OpenAPI schemas (kubernetes-validate ships them offline).

The chart's `kubeVersion` is >= 1.25, so objects are validated strictly (no unknown fields) against the oldest and
the newest schema versions kubernetes-validate carries. Only the ServiceMonitor (a Prometheus Operator CRD, not a
Kubernetes type) has no schema there; it is checked by hand.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import helm_python
import kubernetes_validate
import pytest
import yaml
from cryptography.fernet import Fernet

from bot.config import parse_config, substitute_env

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "deploy" / "helm" / "rancher-access-bot"
KUBE_VERSIONS = ("1.25.0", "1.37.0")
POSTGRES: dict[str, Any] = {"database": {"mode": "postgresql", "postgresql": {"urlSecret": {"name": "accessbot-db"}}}}
SECRET_ENV = {
    "SLACK_BOT_TOKEN": "xoxb-1",
    "SLACK_SIGNING_SECRET": "s",
    "OIDC_CLIENT_SECRET": "c",
    "RANCHER_TOKEN": "token-abcde:x",
    "ACCESSBOT_ENCRYPTION_KEY": Fernet.generate_key().decode(),
}


def _render(values: dict[str, Any]) -> list[dict[str, Any]]:
    """Every object the chart renders for `values` (an install into namespace accessbot)."""
    chart = helm_python.Chart.load(CHART)
    rendered = chart.render(values, name="access", namespace="accessbot", is_install=True)
    docs: list[dict[str, Any]] = []
    for path, text in sorted(rendered.items()):
        if path.endswith(".txt"):
            continue
        docs += [d for d in yaml.safe_load_all(text) if d]
    return docs


def _kinds(docs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for doc in docs:
        out.setdefault(doc["kind"], []).append(doc)
    return out


def _validate(docs: list[dict[str, Any]]) -> None:
    for doc in docs:
        if doc["kind"] == "ServiceMonitor":
            assert doc["apiVersion"] == "monitoring.coreos.com/v1"
            assert doc["spec"]["endpoints"] == [{"port": "http", "path": "/metrics", "interval": "30s"}]
            continue
        for version in KUBE_VERSIONS:
            kubernetes_validate.validate(doc, version, strict=True)


def _container(docs: list[dict[str, Any]], kind: str = "Deployment") -> dict[str, Any]:
    (obj,) = _kinds(docs)[kind]
    spec = obj["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    return dict(container)


def _package_version() -> str:
    return str(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"])


def test_sqlite_mode_renders_one_replica_recreate_and_a_volume_that_validate() -> None:
    """SQLite mode: one replica, Recreate, a kept PVC mounted at /var/lib/accessbot, no PDB or hook; all valid."""
    docs = _render({"replicaCount": 5})
    _validate(docs)
    kinds = _kinds(docs)
    assert sorted(kinds) == ["ConfigMap", "Deployment", "PersistentVolumeClaim", "Service"]
    (deployment,) = kinds["Deployment"]
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    (pvc,) = kinds["PersistentVolumeClaim"]
    assert pvc["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    container = _container(docs)
    assert {"name": "data", "mountPath": "/var/lib/accessbot"} in container["volumeMounts"]
    assert {"name": "ACCESSBOT_DATABASE", "value": "/var/lib/accessbot/accessbot.db"} in container["env"]


def test_postgresql_mode_renders_replicas_rolling_pdb_spread_and_the_migration_hook() -> None:
    """PostgreSQL mode: replicas as asked, RollingUpdate, a PDB, topology spread, `migrate` as a pre-upgrade hook."""
    docs = _render({**POSTGRES, "replicaCount": 3, "serviceMonitor": {"enabled": True}})
    _validate(docs)
    kinds = _kinds(docs)
    assert "PersistentVolumeClaim" not in kinds
    deployment = next(d for d in kinds["Deployment"])
    spec = deployment["spec"]
    assert spec["replicas"] == 3
    assert spec["strategy"]["type"] == "RollingUpdate"
    assert spec["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
    (spread,) = spec["template"]["spec"]["topologySpreadConstraints"]
    assert spread["topologyKey"] == "kubernetes.io/hostname"
    (pdb,) = kinds["PodDisruptionBudget"]
    assert pdb["spec"]["minAvailable"] == 1
    (job,) = kinds["Job"]
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert _container(docs, "Job")["args"] == ["migrate"]
    hook_config = next(c for c in kinds["ConfigMap"] if c["metadata"]["name"].endswith("-migrate"))
    assert int(hook_config["metadata"]["annotations"]["helm.sh/hook-weight"]) < int(
        job["metadata"]["annotations"]["helm.sh/hook-weight"]
    )
    database = next(e for e in _container(docs)["env"] if e["name"] == "ACCESSBOT_DATABASE")
    assert database["valueFrom"] == {"secretKeyRef": {"name": "accessbot-db", "key": "DATABASE_URL"}}
    assert len(kinds["ServiceMonitor"]) == 1


def test_pods_keep_the_security_context_in_both_modes() -> None:
    """Non-root uid 10001, read-only root filesystem, no capabilities, RuntimeDefault seccomp, no token mounted."""
    for values in ({}, POSTGRES):
        docs = _render(values)
        for kind in ("Deployment", "Job") if values else ("Deployment",):
            (obj,) = _kinds(docs)[kind]
            pod = obj["spec"]["template"]["spec"]
            assert pod["securityContext"]["runAsNonRoot"] is True
            assert pod["securityContext"]["runAsUser"] == 10001
            assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
            assert pod["automountServiceAccountToken"] is False
            context = pod["containers"][0]["securityContext"]
            assert context == {
                "allowPrivilegeEscalation": False,
                "readOnlyRootFilesystem": True,
                "capabilities": {"drop": ["ALL"]},
            }


def test_secrets_are_only_referenced_never_rendered() -> None:
    """The bot's tokens come from the named Secret by reference; the chart renders no Secret object."""
    docs = _render({**POSTGRES, "envSecret": "my-accessbot-env"})
    assert "Secret" not in _kinds(docs)
    assert _container(docs)["envFrom"] == [{"secretRef": {"name": "my-accessbot-env"}}]


def test_the_service_monitor_scrapes_with_the_metrics_token_from_the_env_secret() -> None:
    """`serviceMonitor.tokenKey` makes Prometheus send the bearer token /metrics asks for, read from envSecret by
    reference (Endpoint.authorization, a SafeAuthorization: prometheus-operator Documentation/api.md)."""
    values = {"envSecret": "my-accessbot-env", "serviceMonitor": {"enabled": True}}
    (plain,) = _kinds(_render(values))["ServiceMonitor"]
    assert "authorization" not in plain["spec"]["endpoints"][0]
    values["serviceMonitor"]["tokenKey"] = "ACCESSBOT_METRICS_TOKEN"
    (monitor,) = _kinds(_render(values))["ServiceMonitor"]
    assert monitor["spec"]["endpoints"][0]["authorization"] == {
        "type": "Bearer",
        "credentials": {"name": "my-accessbot-env", "key": "ACCESSBOT_METRICS_TOKEN"},
    }


def test_image_comes_from_values_and_defaults_to_the_package_version() -> None:
    """The image is REGISTRY/rancher-access-bot:VERSION, VERSION being the package's unless a tag is given."""
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["version"] == chart["appVersion"] == _package_version()
    docs = _render({"image": {"repository": "harbor.corp/platform/rancher-access-bot"}})
    assert _container(docs)["image"] == f"harbor.corp/platform/rancher-access-bot:{_package_version()}"
    docs = _render({"image": {"repository": "harbor.corp/platform/rancher-access-bot", "tag": "0.1.0-rc1"}})
    assert _container(docs)["image"] == "harbor.corp/platform/rancher-access-bot:0.1.0-rc1"


def test_the_configuration_is_config_example_yaml_and_validates_in_the_pod_environment() -> None:
    """values.yaml's config is config.example.yaml verbatim; rendered, it validates with the env the pod gets."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["config"] == (ROOT / "config.example.yaml").read_text()
    for mode_values, database in (({}, "/var/lib/accessbot/accessbot.db"), (POSTGRES, None)):
        docs = _render(mode_values)
        configmap = next(c for c in _kinds(docs)["ConfigMap"] if not c["metadata"]["name"].endswith("-migrate"))
        env = {e["name"]: e.get("value", "") for e in _container(docs)["env"]}
        if database is None:
            env["ACCESSBOT_DATABASE"] = "postgresql://bot:pw@db.example.com:5432/accessbot"
        data, missing = substitute_env(yaml.safe_load(configmap["data"]["config.yaml"]), {**env, **SECRET_ENV})
        assert missing == []
        config = parse_config(data)
        assert config.public_url == "https://accessbot.example.com"
        assert config.database.is_postgres is (database is None)
        assert [r.name for r in config.policy.rules] == ["dev-self-service", "prod-with-approval", "prod-break-glass"]


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"database": {"mode": "mysql"}}, "value must be one of 'sqlite', 'postgresql'"),
        ({"database": {"mode": "postgresql"}}, "/database/postgresql/urlSecret/name"),
        ({**POSTGRES, "replicaCount": 1}, "/replicaCount"),
        ({"publicUrl": "accessbot.example.com"}, "/publicUrl"),
        ({"replicas": 3}, "additional properties 'replicas' not allowed"),
    ],
)
def test_values_schema_refuses_what_cannot_work(values: dict[str, Any], complaint: str) -> None:
    """values.schema.json stops an unknown mode, PostgreSQL without its URL Secret, one HA replica, typos."""
    with pytest.raises(helm_python.HelmValuesError, match=complaint):
        _render(values)


def test_helm_lint_finds_no_errors_and_rancher_annotations_are_complete() -> None:
    """`helm lint` passes; Chart.yaml has the annotations Rancher's partner-chart lint requires."""
    result = helm_python.lint(CHART)
    assert result["errors"] == []
    assert [m for m in result["messages"] if m["severity"] > 1] == []
    annotations = yaml.safe_load((CHART / "Chart.yaml").read_text())["annotations"]
    for key in ("display-name", "namespace", "release-name", "kube-version", "rancher-version", "permits-os"):
        assert f"catalog.cattle.io/{key}" in annotations


def test_every_rancher_question_names_a_value_the_chart_has() -> None:
    """Each `variable` in questions.yaml (subquestions too) is a key path that exists in values.yaml."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    questions = yaml.safe_load((CHART / "questions.yaml").read_text())["questions"]
    asked = [*questions, *(s for q in questions for s in q.get("subquestions", []))]
    for question in asked:
        node: Any = values
        for part in question["variable"].split("."):
            assert isinstance(node, dict), question["variable"]
            assert part in node, question["variable"]
            node = node[part]
