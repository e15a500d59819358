"""Pod Security on the real control plane: the harness's kube-apiserver runs the PodSecurity
admission plugin (on by default since Kubernetes 1.25; the harness passes no admission flags,
so it runs in the 1.36 API server it builds), the namespaces the operator
makes for exocorps enforce the ``restricted`` standard, the operator's own runtime pods are
admitted under it, and a privileged pod in such a namespace is refused.

The exocorp here runs with the session's canary bound as its provider credential (the
``driver`` fixture binds it), so the session-end canary check (tests/plugins/canary.py) also
covers what this rollout wrote."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from exocorp.k8s import resources as r
from exocorp.names import runtime_namespace
from exocorp.testing import binaries
from tests.plugins.cluster import ClusterInfo
from tests.plugins.platform import Driver

pytestmark = pytest.mark.integration


def _privileged_pod(namespace: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "breakout", "namespace": namespace},
            "spec": {"hostPID": True, "containers": [{
                "name": "shell", "image": "example.invalid/shell:1",
                "securityContext": {"privileged": True}}]}}


async def _kubectl(cluster: ClusterInfo, *args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        str(cluster.kubectl), "--kubeconfig", str(cluster.kubeconfig), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode()


async def _create_dry_run(cluster: ClusterInfo, tmp_path: Path, obj: dict[str, Any],
                          name: str) -> tuple[int, str]:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(obj))
    return await _kubectl(cluster, "create", "--dry-run=server", "-f", str(path))


async def test_exocorp_namespaces_enforce_restricted_and_refuse_a_privileged_pod(
        driver: Driver, cluster: ClusterInfo, namespace: str, tmp_path: Path) -> None:
    kube = driver.kube
    name = await driver.running("psa")
    ns = runtime_namespace(name)

    labels = (await kube.get(r.NAMESPACES, ns))["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert labels["pod-security.kubernetes.io/enforce-version"] == "latest"

    # The operator's pods were admitted under enforcement and run.
    pods = [p for p in (await kube.list(r.PODS, ns))["items"]
            if not p["metadata"].get("deletionTimestamp")]
    assert len(pods) >= 3
    assert {p["status"]["phase"] for p in pods} == {"Running"}
    events = (await kube.list(r.EVENTS, ns))["items"]
    assert not [e for e in events if e.get("reason") == "FailedCreate"]

    # A privileged pod: refused in the exocorp's namespace ...
    code, out = await _create_dry_run(cluster, tmp_path, _privileged_pod(ns), "in-exocorp")
    assert code != 0
    assert "forbidden" in out.lower()
    assert 'violates PodSecurity "restricted:latest"' in out
    for violation in ("privileged", "host namespaces"):
        assert violation in out
    # ... while the same pod passes admission in an unlabelled namespace: it is the label of
    # the exocorp's namespace that the PodSecurity plugin enforces, nothing else.
    code, out = await _create_dry_run(cluster, tmp_path, _privileged_pod(namespace), "plain")
    assert code == 0, out

    # The plugin itself reports its evaluations, on the Kubernetes the harness built.
    code, version = await _kubectl(cluster, "get", "--raw", "/version")
    assert code == 0
    assert json.loads(version)["gitVersion"].startswith(f"v{binaries.K8S_VERSION}")
    code, metrics = await _kubectl(cluster, "get", "--raw", "/metrics")
    assert code == 0
    assert 'pod_security_evaluations_total{decision="deny",mode="enforce"' in metrics
