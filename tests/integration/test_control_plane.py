"""The local control plane behaves like a real cluster: scheduling, kwok pod lifecycles,
garbage collection, CRDs and watches, and the stamped version."""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid
from typing import Any

import pytest

from exocorp import names
from exocorp.k8s import ApiError, Kube
from exocorp.k8s import resources as r
from exocorp.testing import binaries
from exocorp.testing.waiting import eventually
from tests.plugins.cluster import ClusterInfo

pytestmark = pytest.mark.integration


def _pod(name: str, behaviour: str | None = None) -> dict[str, Any]:
    labels = {"app": name}
    if behaviour:
        labels[names.SIM_BEHAVIOR_LABEL] = behaviour
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "restartPolicy": "Never" if behaviour == names.SIM_FAIL else "Always",
            "containers": [{"name": "main", "image": "example.invalid/app:1"}],
        },
    }


async def test_deployment_pods_run_ready_on_kwok_nodes(kube: Kube, namespace: str) -> None:
    deployment = {
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "example.invalid/web:1"}]},
            },
        },
    }
    await kube.create(r.DEPLOYMENTS, deployment, namespace)

    async def ready_replicas() -> int:
        dep = await kube.get(r.DEPLOYMENTS, "web", namespace)
        return int(dep.get("status", {}).get("readyReplicas", 0))

    await eventually(ready_replicas, lambda n: n == 3, what="3 ready replicas")
    pods = (await kube.list(r.PODS, namespace, label_selector="app=web"))["items"]
    nodes = {n["metadata"]["name"]: n for n in (await kube.list(r.NODES))["items"]}
    assert len(pods) == 3
    for pod in pods:
        assert pod["status"]["phase"] == "Running"
        ready = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
        assert ready["Ready"] == "True"
        node = nodes[pod["spec"]["nodeName"]]
        assert node["metadata"]["annotations"][names.KWOK_NODE_ANNOTATION] == "fake"


async def test_crashloop_pod_reports_backoff_and_restarts(kube: Kube, namespace: str) -> None:
    await kube.create(r.PODS, _pod("crasher", names.SIM_CRASHLOOP), namespace)

    async def container_state() -> dict[str, Any]:
        pod = await kube.get(r.PODS, "crasher", namespace)
        statuses = pod.get("status", {}).get("containerStatuses") or [{}]
        status: dict[str, Any] = statuses[0]
        return status

    status = await eventually(container_state, lambda s: "waiting" in s.get("state", {}),
                              what="crash loop")
    assert status["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert status["restartCount"] > 0
    assert status["ready"] is False


async def test_failing_pod_ends_failed(kube: Kube, namespace: str) -> None:
    await kube.create(r.PODS, _pod("doomed", names.SIM_FAIL), namespace)

    async def phase() -> str:
        pod = await kube.get(r.PODS, "doomed", namespace)
        return str(pod.get("status", {}).get("phase", ""))

    assert await eventually(phase, lambda p: p == "Failed", what="pod Failed") == "Failed"
    pod = await kube.get(r.PODS, "doomed", namespace)
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == 1


async def test_namespace_deletion_removes_its_objects(kube: Kube) -> None:
    ns = f"t-gc-{uuid.uuid4().hex[:8]}"
    await kube.create(r.NAMESPACES, {"metadata": {"name": ns}})
    await kube.create(r.CONFIGMAPS, {"metadata": {"name": "keep"}, "data": {"a": "b"}}, ns)
    await kube.create(r.PODS, _pod("p1"), ns)
    # An owned ConfigMap is collected with its owner (garbage collector).
    owner = await kube.create(r.CONFIGMAPS, {"metadata": {"name": "owner"}}, ns)
    await kube.create(r.CONFIGMAPS, {"metadata": {"name": "owned", "ownerReferences": [{
        "apiVersion": "v1", "kind": "ConfigMap", "name": "owner",
        "uid": owner["metadata"]["uid"]}]}}, ns)
    await kube.delete(r.CONFIGMAPS, "owner", ns)

    async def owned_gone() -> bool:
        return await kube.get_or_none(r.CONFIGMAPS, "owned", ns) is None

    await eventually(owned_gone, what="garbage collection of the owned ConfigMap")

    await kube.delete(r.NAMESPACES, ns)

    async def namespace_gone() -> bool:
        return await kube.get_or_none(r.NAMESPACES, ns) is None

    await eventually(namespace_gone, within=180, what="namespace deletion")
    # The namespace's objects went with it: recreating it shows an empty namespace.
    await kube.create(r.NAMESPACES, {"metadata": {"name": ns}})
    try:
        assert await kube.get_or_none(r.CONFIGMAPS, "keep", ns) is None
        assert (await kube.list(r.PODS, ns))["items"] == []
    finally:
        await kube.delete(r.NAMESPACES, ns)


async def test_crd_objects_can_be_created_and_watched(kube: Kube) -> None:
    suffix = uuid.uuid4().hex[:6]
    group = f"t{suffix}.example.com"
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Cluster",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [{
                "name": "v1", "served": True, "storage": True,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {"size": {"type": "integer"}}}}}},
            }],
        },
    }
    await kube.create(r.CRDS, crd)
    widgets = r.Resource(group, "v1", "widgets", "Widget", False)
    try:
        async def established() -> bool:
            obj = await kube.get(r.CRDS, f"widgets.{group}")
            conds = obj.get("status", {}).get("conditions", [])
            return any(c["type"] == "Established" and c["status"] == "True" for c in conds)

        await eventually(established, what="CRD established")
        listing = await kube.list(widgets)
        seen: list[tuple[str, str, int]] = []

        async def collect() -> None:
            async for event in kube.watch(
                widgets, resource_version=listing["metadata"]["resourceVersion"],
                timeout_seconds=60,
            ):
                if event["type"] == "BOOKMARK":
                    continue
                obj = event["object"]
                seen.append((event["type"], obj["metadata"]["name"], obj["spec"]["size"]))
                if len(seen) == 2:
                    return

        watcher = asyncio.create_task(collect())
        await kube.create(widgets, {"apiVersion": f"{group}/v1", "kind": "Widget",
                                    "metadata": {"name": "w1"}, "spec": {"size": 1}})
        await kube.patch(widgets, "w1", {"spec": {"size": 2}})
        await asyncio.wait_for(watcher, 60)
        assert seen == [("ADDED", "w1", 1), ("MODIFIED", "w1", 2)]

        with pytest.raises(ApiError) as err:
            await kube.create(widgets, {"apiVersion": f"{group}/v1", "kind": "Widget",
                                        "metadata": {"name": "bad"}, "spec": {"size": "x"}})
        assert err.value.status == 422
    finally:
        await kube.delete(r.CRDS, f"widgets.{group}")


async def test_api_server_reports_the_stamped_version(kube: Kube) -> None:
    version = await kube.request("GET", "/version")
    assert version["gitVersion"] == f"v{binaries.K8S_VERSION}"
    assert version["major"] == "1"
    assert version["minor"] == binaries.K8S_VERSION.split(".")[1]


def test_kubectl_reports_matching_client_and_server(cluster: ClusterInfo) -> None:
    out = subprocess.run(
        [str(cluster.kubectl), "--kubeconfig", str(cluster.kubeconfig), "version", "-o", "json"],
        capture_output=True, text=True, check=True,
    )
    reported = json.loads(out.stdout)
    assert reported["serverVersion"]["gitVersion"] == f"v{binaries.K8S_VERSION}"
    assert reported["clientVersion"]["gitVersion"] == f"v{binaries.K8S_VERSION}"


def test_kubectl_sees_ready_nodes(cluster: ClusterInfo) -> None:
    out = subprocess.run(
        [str(cluster.kubectl), "--kubeconfig", str(cluster.kubeconfig), "get", "nodes",
         "-o", "json"], capture_output=True, text=True, check=True,
    )
    nodes = json.loads(out.stdout)["items"]
    assert len(nodes) >= 2
    for node in nodes:
        ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}
        assert ready["Ready"] == "True"
        assert node["status"]["allocatable"]["cpu"] == "32"
