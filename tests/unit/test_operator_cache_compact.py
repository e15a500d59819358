"""What the operator's cache keeps of each object (exocorp.operator.cache.compact): the fields
the reconciler and the health check read, and none of the bulk they never read."""

from __future__ import annotations

import json
from typing import Any
from unittest.mock import patch

from exocorp import names
from exocorp.model import Exocorp, ExocorpReleaseSpec
from exocorp.operator import health
from exocorp.operator.cache import ObjectCache, compact
from exocorp.operator.runtime_objects import _edited_by_someone_else
from exocorp.testing import samples

Obj = dict[str, Any]
MANAGED_FIELDS = [
    {"manager": "exocorp", "operation": "Apply", "time": "2026-12-04T10:00:00Z",
     "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:labels": {}}, "f:spec": {
         "f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {}}}}}}},
    {"manager": "kubectl-edit", "operation": "Update", "fieldsV1": {"f:spec": {
        "f:replicas": {}}}},
    {"manager": "kube-controller-manager", "subresource": "status",
     "fieldsV1": {"f:status": {"f:replicas": {}}}},
]


def _pod(restarts: int, waiting: str | None) -> Obj:
    state = {"waiting": {"reason": waiting, "message": "back-off " * 40}} if waiting \
        else {"running": {"startedAt": "2026-12-04T10:00:00Z"}}
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": "worker-abc", "namespace": "exo-acme", "uid": "u1", "resourceVersion": "42",
            "labels": {names.LABEL_EXOCORP: "acme", names.LABEL_COMPONENT: "worker"},
            "annotations": {names.ANNOTATION_RESTART_AT: "2026-12-04T10:00:00Z",
                            "kwok.x-k8s.io/node": "fake", "other": "x" * 500},
            "ownerReferences": [{"kind": "ReplicaSet", "name": "worker-1"}],
            "managedFields": MANAGED_FIELDS,
        },
        "spec": {"containers": [{"name": "app", "image": "img", "env": [
            {"name": f"E{i}", "value": "v" * 50} for i in range(30)]}]},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}] * 5,
                   "containerStatuses": [{"name": "app", "image": "img", "imageID": "sha",
                                          "restartCount": restarts, "state": state}]},
    }


def test_a_pod_keeps_what_health_reads_and_little_else() -> None:
    cache = ObjectCache()
    pod = _pod(3, "CrashLoopBackOff")
    cache.observe("Pod", "ADDED", pod)
    kept = cache.owned("acme", "Pod")[0]
    assert kept["metadata"]["labels"] == pod["metadata"]["labels"]
    assert kept["metadata"]["annotations"] == {
        names.ANNOTATION_RESTART_AT: "2026-12-04T10:00:00Z"}
    assert kept["status"] == {"containerStatuses": [
        {"restartCount": 3, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}
    assert "spec" not in kept
    assert len(json.dumps(kept)) * 5 < len(json.dumps(pod))
    assert pod["spec"]["containers"]  # the event's own body is left alone


def test_a_hand_edit_is_still_recognised_after_compaction() -> None:
    cache = ObjectCache()
    deployment = {"metadata": {"name": "worker", "namespace": "exo-acme", "generation": 3,
                               "resourceVersion": "7", "managedFields": MANAGED_FIELDS},
                  "spec": {"replicas": 5}, "status": {"replicas": 2, "readyReplicas": 1,
                                                      "conditions": [{"type": "Available"}]}}
    cache.store("Deployment", deployment)
    kept = cache.get("Deployment", "worker", "exo-acme")
    assert kept is not None
    assert _edited_by_someone_else(kept) == _edited_by_someone_else(deployment) is True
    ours = [MANAGED_FIELDS[0], MANAGED_FIELDS[2]]
    ours_only = {**deployment, "metadata": {**deployment["metadata"], "managedFields": ours}}
    cache.store("Deployment", {**ours_only, "metadata": {**ours_only["metadata"],
                                                         "resourceVersion": "8"}})
    kept = cache.get("Deployment", "worker", "exo-acme")
    assert kept is not None
    assert not _edited_by_someone_else(kept)
    assert kept["status"] == {"replicas": 2, "readyReplicas": 1}
    assert kept["metadata"]["generation"] == 3


def test_health_reads_the_same_from_compacted_objects() -> None:
    exo = Exocorp.model_validate(samples.exocorp("acme", "owner"))
    release = ExocorpReleaseSpec.model_validate(samples.release("1.0.0")["spec"])
    pod = _pod(7, "CrashLoopBackOff")
    pod["metadata"]["labels"][names.LABEL_REVISION] = "acme-1"
    pod["metadata"]["annotations"].pop(names.ANNOTATION_RESTART_AT)  # no restart asked
    deployment = {"metadata": {"name": "worker", "namespace": "exo-acme", "generation": 1,
                               "resourceVersion": "7"},
                  "status": {"replicas": 1, "readyReplicas": 0, "observedGeneration": 1}}
    whole, compacted = _WholeCache(), ObjectCache()
    for cache in (whole, compacted):
        cache.observe("Pod", "ADDED", pod)
        cache.observe("Deployment", "ADDED", deployment)
    seen = [health.observe(exo, release, cache, "exo-acme", "acme-1")
            for cache in (whole, compacted)]
    assert seen[0] == seen[1]
    assert [c.crash_restarts for c in seen[1]] == [0, 0, 0]  # no "worker" component
    pod["metadata"]["labels"][names.LABEL_COMPONENT] = "agents"
    for cache in (whole, compacted):
        cache.observe("Pod", "MODIFIED", {**pod, "metadata": {**pod["metadata"],
                                                               "resourceVersion": "43"}})
    seen = [health.observe(exo, release, cache, "exo-acme", "acme-1")
            for cache in (whole, compacted)]
    assert seen[0] == seen[1]
    agents = next(c for c in seen[1] if c.status.name == "agents")
    assert (agents.crash_restarts, agents.crash_looping, agents.status.restarts) == (7, True, 7)


class _WholeCache(ObjectCache):
    """The cache as it was before compaction: every body kept whole."""

    def store(self, kind: str, body: Obj) -> None:
        with patch("exocorp.operator.cache.compact", lambda kind, body: body):
            super().store(kind, body)


def test_an_exocorp_keeps_spec_status_and_its_annotations_but_not_managed_fields() -> None:
    cache = ObjectCache()
    body = {"metadata": {"name": "acme", "resourceVersion": "5", "generation": 2,
                         "annotations": {names.ANNOTATION_REQUEST_KEYS: "k",
                                         "kubectl.kubernetes.io/last-applied-configuration":
                                         "{...}" * 100},
                         "managedFields": MANAGED_FIELDS},
            "spec": {"provisioned": True}, "status": {"phase": "Running"}}
    cache.observe("Exocorp", "MODIFIED", body)
    kept = cache.get("Exocorp", "acme")
    assert kept == {"metadata": {"name": "acme", "resourceVersion": "5", "generation": 2,
                                 "annotations": {names.ANNOTATION_REQUEST_KEYS: "k"}},
                    "spec": {"provisioned": True}, "status": {"phase": "Running"}}


def test_a_compacted_runtime_namespace_still_shows_whose_it_is() -> None:
    # The reconciler checks a namespace's owner before writing into it (issue 13, item 6): the
    # trimmed copy in the cache must keep the owner reference, or the operator would refuse
    # the namespace it created itself.
    from exocorp.operator.ownership import owns_namespace

    namespace = {"metadata": {
        "name": "exo-acme", "uid": "ns-1", "labels": {names.LABEL_EXOCORP: "acme"},
        "ownerReferences": [{"apiVersion": "exocorp.io/v1alpha1", "kind": names.EXOCORP_KIND,
                             "name": "acme", "uid": "exo-1", "controller": True}]}}
    kept = compact("Namespace", namespace)
    assert owns_namespace(kept, "acme", "exo-1")
    assert not owns_namespace(kept, "acme", "exo-2")
