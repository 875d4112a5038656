"""Deployment files: the Procfile and the Dockerfile say what the README promises (the chart: tests/test_helm.py)."""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from bot import __version__

ROOT = Path(__file__).resolve().parent.parent


def test_procfile_runs_serve_with_port() -> None:
    """The Procfile's web process is `accessbot serve` on $PORT."""
    line = (ROOT / "Procfile").read_text().strip()
    assert line == "web: accessbot serve --config ${ACCESSBOT_CONFIG:-config.yaml} --port ${PORT:-3000}"


def test_dockerfile_runs_as_non_root_with_healthcheck_and_volume() -> None:
    """The image drops root, checks /healthz and keeps the database on a volume."""
    text = (ROOT / "Dockerfile").read_text()
    assert "FROM python:3.11-slim" in text
    assert "USER 10001:10001" in text
    assert "HEALTHCHECK" in text
    assert "/healthz" in text
    assert 'VOLUME ["/var/lib/accessbot"]' in text


def test_package_version_is_the_one_the_image_and_chart_carry() -> None:
    """`accessbot --version`, the image's VERSION build argument and the chart all take the package's version."""
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert __version__ == version
    assert "ARG VERSION" in (ROOT / "Dockerfile").read_text()
    assert 'org.opencontainers.image.version="${VERSION}"' in (ROOT / "Dockerfile").read_text()


def test_the_kustomize_manifests_are_gone_in_favour_of_the_chart() -> None:
    """One way to install on Kubernetes: the Helm chart (the hand-written manifests drifted from the values)."""
    assert not (ROOT / "deploy" / "kubernetes").exists()
    assert (ROOT / "deploy" / "helm" / "rancher-access-bot" / "Chart.yaml").is_file()


def test_docker_build_succeeds_where_docker_is_available() -> None:
    """`docker build` succeeds when a Docker engine answers; skipped (saying so) when none does."""
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("docker is not installed on this machine")
    info = subprocess.run([docker, "info"], capture_output=True, text=True, check=False, timeout=30)
    if info.returncode != 0:
        pytest.skip("no Docker engine is running on this machine (docker info failed)")
    result = subprocess.run(
        [docker, "build", "-t", "rancher-access-bot:test", str(ROOT)],
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-2000:]
