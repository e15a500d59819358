"""Bytes the operator's cache holds per exocorp, with and without compaction (cache.compact),
measured with tracemalloc on bodies shaped like the API server's answers. No cluster needed.

Each exocorp's watched objects are built by the operator's own builders (namespace, service
account, quota, limit range, five network policies, manifest ConfigMap, claim, three
Deployments, two Services, Ingress, a ControllerRevision) plus its four pods, each given what
the API server adds: uid, timestamps, resourceVersion, owner references, ``managedFields`` (one
entry per writer, its field set mirroring what that writer set, as the server records it), and
the status kwok and the controllers write. The Exocorp itself carries a Running status.

Run: uv run python bench/operator_cache.py [--n 1000]   (prints JSON; the figures are in
docs/performance.md)
"""

from __future__ import annotations

import argparse
import copy
import json
import tracemalloc
from typing import Any
from unittest.mock import patch

from exocorp import names
from exocorp.model import Exocorp, ExocorpReleaseSpec
from exocorp.operator.cache import ObjectCache
from exocorp.operator.settings import OperatorSettings
from exocorp.runtime import builders
from exocorp.testing import samples

Obj = dict[str, Any]
SETTINGS = OperatorSettings()


def _fields(value: Any) -> Any:
    """The FieldsV1 set of ``value`` as the API server records it."""
    if isinstance(value, dict):
        return {f"f:{k}": _fields(v) for k, v in value.items()}
    if isinstance(value, list):
        return {f"k:{json.dumps(item.get('name'))}" if isinstance(item, dict) and "name" in item
                else f"i:{i}": _fields(item) for i, item in enumerate(value)}
    return {}


def _served(body: Obj, i: int, managers: list[tuple[str, Obj, str | None]],
            status: Obj | None = None) -> Obj:
    body = copy.deepcopy(body)
    meta = body.setdefault("metadata", {})
    meta.update(uid=f"5f0c{i:08d}-aaaa-bbbb-cccc-0123456789ab", resourceVersion=str(1000 + i),
                creationTimestamp="2026-12-04T10:00:00Z", generation=1)
    meta["managedFields"] = [
        {"manager": manager, "operation": "Apply" if manager == "exocorp" else "Update",
         "apiVersion": body.get("apiVersion", "v1"), "time": "2026-12-04T10:00:00Z",
         "fieldsType": "FieldsV1", "fieldsV1": _fields(part),
         **({"subresource": sub} if sub else {})} for manager, part, sub in managers]
    if status is not None:
        body["status"] = status
    return body


def fleet(n: int) -> list[tuple[str, Obj]]:
    release_body = samples.release("1.0.0")
    release = ExocorpReleaseSpec.model_validate(release_body["spec"])
    out: list[tuple[str, Obj]] = [("ExocorpRelease", release_body)]
    for i in range(n):
        name = f"bench-{i:04d}"
        raw = samples.exocorp(name, "owner")
        raw["metadata"]["uid"] = f"uid-{i}"
        raw["spec"].update(provisioned=True, release={"version": "1.0.0", "channel": "stable"},
                           config=samples.draft("1.0.0")["config"],
                           providerBindings=[{"provider": "anthropic",
                                              "secretName": "owner-anthropic"}])
        exo = Exocorp.model_validate(raw)
        inputs = builders.RuntimeInputs(release=release, revision=f"{name}-6b7c9d",
                                        credentials={"ANTHROPIC_API_KEY": "c2stYmVuY2g="},
                                        settings=SETTINGS)
        status = _exocorp_status(name)
        out.append(("Exocorp", _served({**raw, "status": status}, i, [
            ("exocorp-gateway", raw["spec"], None), ("exocorp", {"status": status}, "status")])))
        runtime: list[tuple[str, Obj]] = [
            ("Namespace", builders.namespace(exo)),
            ("ServiceAccount", builders.service_account(exo)),
            ("ResourceQuota", builders.resource_quota(exo, release)),
            ("LimitRange", builders.limit_range(exo)),
            *(("NetworkPolicy", p) for p in builders.network_policies(exo, release, SETTINGS)),
            ("ConfigMap", builders.effective_manifest(exo, inputs)),
            ("PersistentVolumeClaim", builders.state_claim(exo, SETTINGS)),
        ]
        for component in release.components:
            svc = builders.service(exo, component)
            if svc is not None:
                runtime.append(("Service", svc))
            runtime.append(("Deployment", builders.deployment(exo, component, inputs)))
        route = builders.ingress(exo, release, SETTINGS)
        if route is not None:
            runtime.append(("Ingress", route))
        for kind, body in runtime:
            status = _DEPLOYMENT_STATUS if kind == "Deployment" else None
            managers = [("exocorp", body, None)]
            if status:
                managers.append(("kube-controller-manager", {"status": status}, "status"))
            out.append((kind, _served(body, i, managers, status)))
        out.append(("ControllerRevision", _served({
            "apiVersion": "apps/v1", "kind": "ControllerRevision",
            "metadata": {"name": f"{name}-6b7c9d", "namespace": SETTINGS.namespace,
                         "labels": {names.LABEL_EXOCORP: name,
                                    names.LABEL_MANAGED_BY: names.MANAGER}},
            "revision": 1, "data": {"release": raw["spec"]["release"],
                                    "config": raw["spec"]["config"]}}, i,
            [("exocorp", {"data": {}}, None)])))
        for dep in (b for k, b in runtime if k == "Deployment"):
            for replica in range(dep["spec"]["replicas"]):
                out.append(("Pod", _pod(dep, name, replica, i)))
    return out


def _pod(dep: Obj, exocorp: str, replica: int, i: int) -> Obj:
    template = dep["spec"]["template"]
    spec = copy.deepcopy(template["spec"])
    spec.update(nodeName=f"kwok-node-{i % 10}", schedulerName="default-scheduler",
                dnsPolicy="ClusterFirst", restartPolicy="Always",
                terminationGracePeriodSeconds=30, preemptionPolicy="PreemptLowerPriority",
                priority=0, enableServiceLinks=True,
                tolerations=[{"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                              "effect": "NoExecute", "tolerationSeconds": 300},
                             {"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                              "effect": "NoExecute", "tolerationSeconds": 300}])
    name = f"{dep['metadata']['name']}-7d9f8c6b5-{replica:05d}"
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": name, "namespace": dep["metadata"]["namespace"],
        "generateName": f"{dep['metadata']['name']}-7d9f8c6b5-",
        "labels": {**template["metadata"]["labels"], "pod-template-hash": "7d9f8c6b5"},
        "annotations": dict(template["metadata"].get("annotations") or {}),
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                             "name": f"{dep['metadata']['name']}-7d9f8c6b5", "uid": "rs-uid",
                             "controller": True, "blockOwnerDeletion": True}]},
        "spec": spec}
    containers = spec["containers"]
    status = {
        "phase": "Running", "hostIP": "10.0.0.1", "podIP": f"10.244.{i % 250}.{replica}",
        "podIPs": [{"ip": f"10.244.{i % 250}.{replica}"}], "qosClass": "Burstable",
        "startTime": "2026-12-04T10:00:05Z",
        "conditions": [{"type": t, "status": "True", "lastProbeTime": None,
                        "lastTransitionTime": "2026-12-04T10:00:06Z"}
                       for t in ("PodReadyToStartContainers", "Initialized", "Ready",
                                 "ContainersReady", "PodScheduled")],
        "containerStatuses": [{"name": c["name"], "image": c["image"],
                               "imageID": f"docker-pullable://{c['image']}@sha256:{'0' * 64}",
                               "containerID": f"containerd://{'1' * 64}", "ready": True,
                               "started": True, "restartCount": 0,
                               "state": {"running": {"startedAt": "2026-12-04T10:00:06Z"}},
                               "lastState": {}} for c in containers]}
    return _served(body, i, [("kube-controller-manager", body, None),
                             ("kube-scheduler", {"status": {"conditions": []}}, "status"),
                             ("kwok", {"status": status}, "status")], status)


_DEPLOYMENT_STATUS = {
    "observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "readyReplicas": 1,
    "availableReplicas": 1, "conditions": [
        {"type": "Available", "status": "True", "lastUpdateTime": "2026-12-04T10:00:07Z",
         "lastTransitionTime": "2026-12-04T10:00:07Z", "reason": "MinimumReplicasAvailable",
         "message": "Deployment has minimum availability."},
        {"type": "Progressing", "status": "True", "lastUpdateTime": "2026-12-04T10:00:07Z",
         "lastTransitionTime": "2026-12-04T10:00:05Z", "reason": "NewReplicaSetAvailable",
         "message": 'ReplicaSet "x-7d9f8c6b5" has successfully progressed.'}]}


def _exocorp_status(name: str) -> Obj:
    now = "2026-12-04T10:00:10Z"
    return {
        "phase": "Running", "observedGeneration": 2, "lastReconcileSeconds": 0.02,
        "lastReconcileTime": now, "runningSecondsAccruedAt": now,
        "runningSeconds": {"portal": 600, "app": 600, "agents": 1200},
        "runningSecondsTotal": 2400,
        "conditions": [{"type": t, "status": "True", "reason": "Available",
                        "message": "every component is available", "lastTransitionTime": now,
                        "observedGeneration": 2}
                       for t in ("Ready", "Progressing", "Degraded", "Paused", "Stalled",
                                 "CredentialsBound", "DomainsAttached")],
        "components": [{"name": c, "desired": 1, "ready": 1, "available": 1, "restarts": 0}
                       for c in ("portal", "app", "agents")],
        "rollout": {"key": "k" * 16, "revision": f"{name}-6b7c9d", "number": 1,
                    "action": "provision", "startedAt": now, "outcome": "Succeeded"},
        "history": [{"name": f"{name}-6b7c9d", "number": 1, "version": "1.0.0",
                     "action": "provision", "requestedBy": "user:owner",
                     "outcome": "Succeeded", "createdAt": now, "finishedAt": now}],
        "domains": [{"host": f"{name}.portal.exocorp.localhost", "kind": "portal",
                     "routing": "attached", "tls": "pending"},
                    {"host": f"{name}.app.exocorp.localhost", "kind": "app",
                     "routing": "attached", "tls": "pending"}],
    }


def measure(objects: list[tuple[str, Obj]], compacted: bool) -> dict[str, float]:
    """Bytes held by a cache of ``objects`` (the events' own bodies are dropped after each
    observe, as after a watch event), by kind."""
    by_kind: dict[str, float] = {}
    feed = [(kind, json.dumps(body)) for kind, body in objects]  # what the wire delivers
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    with patch("exocorp.operator.cache.compact", (lambda kind, body: body)) \
            if not compacted else _nothing():
        cache = ObjectCache()
        for kind, raw in feed:
            start = tracemalloc.get_traced_memory()[0]
            cache.observe(kind, "ADDED", json.loads(raw))
            by_kind[kind] = by_kind.get(kind, 0.0) + tracemalloc.get_traced_memory()[0] - start
    total = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    del cache
    return {"total": total, **by_kind}


class _nothing:  # noqa: N801 (a context manager that does nothing)
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1000)
    args = parser.parse_args()
    objects = fleet(args.n)
    counts: dict[str, int] = {}
    for kind, _ in objects:
        counts[kind] = counts.get(kind, 0) + 1
    result: dict[str, Any] = {"n": args.n, "objects": len(objects), "by_kind_count": counts}
    for label, compacted in (("whole", False), ("compacted", True)):
        sizes = measure(objects, compacted)
        result[label] = {"total_mib": round(sizes.pop("total") / 2**20, 1),
                         "per_exocorp_kib": round(sum(sizes.values()) / args.n / 1024, 1),
                         "by_kind_mib": {k: round(v / 2**20, 2) for k, v in
                                         sorted(sizes.items(), key=lambda kv: -kv[1])}}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
