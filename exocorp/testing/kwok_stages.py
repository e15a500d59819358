"""kwok configuration for the local control plane: which nodes kwok manages and the pod
lifecycles it simulates (ready by default; crash loop or failure on request, by pod label)."""

from __future__ import annotations

from pathlib import Path

import yaml

from exocorp import names

# Stock stages from the kwok module (copied into the cache by the build script).
STOCK_STAGES = (
    "node/fast/node-initialize.yaml",
    "node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
    "pod/fast/pod-ready.yaml",
    "pod/fast/pod-complete.yaml",
    "pod/fast/pod-delete.yaml",
)

_NOT_DELETED = {"key": ".metadata.deletionTimestamp", "operator": "DoesNotExist"}
_PENDING = {"key": ".status.phase", "operator": "In", "values": ["Pending"]}

# A container that keeps crashing: the kubelet would report CrashLoopBackOff with a growing
# restart count. Weight 1 makes kwok pick this over the stock pod-ready stage (weight 0).
_CRASHLOOP_TEMPLATE = """\
{{ $now := Now }}
conditions:
- {type: Initialized, status: "True", lastTransitionTime: {{ $now | Quote }}}
- {type: Ready, status: "False", reason: ContainersNotReady, lastTransitionTime: {{ $now | Quote }}}
- {type: ContainersReady, status: "False", reason: ContainersNotReady, lastTransitionTime: {{ $now | Quote }}}
- {type: PodScheduled, status: "True", lastTransitionTime: {{ $now | Quote }}}
containerStatuses:
{{ range .spec.containers }}
- name: {{ .name | Quote }}
  image: {{ .image | Quote }}
  ready: false
  started: false
  restartCount: 5
  state:
    waiting: {reason: CrashLoopBackOff, message: "back-off 2m40s restarting failed container"}
  lastState:
    terminated: {exitCode: 1, reason: Error, startedAt: {{ $now | Quote }}, finishedAt: {{ $now | Quote }}}
{{ end }}
{{ with NodeIPsWith .spec.nodeName }}
hostIP: {{ index . 0 | Quote }}
{{ end }}
phase: Running
startTime: {{ $now | Quote }}
"""

# A pod whose containers exit with an error and are not restarted: phase Failed.
_FAIL_TEMPLATE = """\
{{ $now := Now }}
conditions:
- {type: Initialized, status: "True", lastTransitionTime: {{ $now | Quote }}}
- {type: Ready, status: "False", reason: PodFailed, lastTransitionTime: {{ $now | Quote }}}
- {type: ContainersReady, status: "False", reason: PodFailed, lastTransitionTime: {{ $now | Quote }}}
- {type: PodScheduled, status: "True", lastTransitionTime: {{ $now | Quote }}}
containerStatuses:
{{ range .spec.containers }}
- name: {{ .name | Quote }}
  image: {{ .image | Quote }}
  ready: false
  started: false
  restartCount: 0
  state:
    terminated: {exitCode: 1, reason: Error, message: "simulated failure", startedAt: {{ $now | Quote }}, finishedAt: {{ $now | Quote }}}
{{ end }}
{{ with NodeIPsWith .spec.nodeName }}
hostIP: {{ index . 0 | Quote }}
{{ end }}
phase: Failed
startTime: {{ $now | Quote }}
"""


def _behaviour_stage(name: str, behaviour: str, template: str, event: dict[str, str]) -> dict[
    str, object
]:
    return {
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": "Stage",
        "metadata": {"name": name},
        "spec": {
            "resourceRef": {"apiGroup": "v1", "kind": "Pod"},
            "selector": {
                "matchLabels": {names.SIM_BEHAVIOR_LABEL: behaviour},
                "matchExpressions": [_NOT_DELETED, _PENDING],
            },
            "weight": 1,
            "next": {"event": event, "statusTemplate": template},
        },
    }


def custom_stages() -> list[dict[str, object]]:
    return [
        _behaviour_stage(
            "exocorp-pod-crashloop", names.SIM_CRASHLOOP, _CRASHLOOP_TEMPLATE,
            {"type": "Warning", "reason": "BackOff",
             "message": "Back-off restarting failed container"},
        ),
        _behaviour_stage(
            "exocorp-pod-fail", names.SIM_FAIL, _FAIL_TEMPLATE,
            {"type": "Warning", "reason": "Failed", "message": "Container exited with code 1"},
        ),
    ]


def write_config(path: Path, stock_dir: Path, pod_cidr: str) -> None:
    """Write one multi-document kwok config: options, stock stages, our behaviour stages."""
    docs: list[object] = [{
        "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
        "kind": "KwokConfiguration",
        "options": {
            "manageAllNodes": False,
            "manageNodesWithAnnotationSelector":
                f"{names.KWOK_NODE_ANNOTATION}={names.KWOK_NODE_ANNOTATION_VALUE}",
            "cidr": pod_cidr,
            "nodeLeaseDurationSeconds": 40,
            # kwok applies these defaults only to flags, not to a config file: set them here.
            "nodeLeaseParallelism": 4,
            "nodePlayStageParallelism": 4,
            "podPlayStageParallelism": 8,
            "podsOnNodeSyncParallelism": 2,
        },
    }]
    for rel in STOCK_STAGES:
        source = stock_dir / rel
        if not source.is_file():
            raise FileNotFoundError(
                f"kwok stage {source} is missing; rerun `exocorp cluster build`"
            )
        docs.extend(yaml.safe_load_all(source.read_text()))
    docs.extend(custom_stages())
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))


def fake_node(name: str, *, cpu: str = "32", memory: str = "128Gi", pods: str = "110") -> dict[
    str, object
]:
    """A Node kwok manages, with the capacity of a typical cloud worker."""
    capacity = {"cpu": cpu, "memory": memory, "pods": pods, "ephemeral-storage": "200Gi"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {
                names.KWOK_NODE_ANNOTATION: names.KWOK_NODE_ANNOTATION_VALUE,
                "node.alpha.kubernetes.io/ttl": "0",
            },
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "node-role.kubernetes.io/worker": "",
                "type": "kwok",
            },
        },
        "spec": {},
        "status": {
            "allocatable": capacity,
            "capacity": capacity,
            "nodeInfo": {
                "architecture": "amd64", "operatingSystem": "linux",
                "kubeletVersion": "fake", "kubeProxyVersion": "fake",
            },
        },
    }
