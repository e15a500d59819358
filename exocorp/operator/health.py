"""What the exocorp's workloads are doing: per-component readiness, restarts, and whether the
current rollout has finished, is crash-looping, or is still under way."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from exocorp import names
from exocorp.model import ComponentStatus, Exocorp, ExocorpReleaseSpec
from exocorp.operator.cache import ObjectCache
from exocorp.runtime.builders import desired_replicas

Obj = dict[str, Any]
PROGRESS_DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"
"""The reason of a Deployment's Progressing condition once it made no progress in time."""


@dataclass(frozen=True)
class ComponentHealth:
    status: ComponentStatus
    rolled_out: bool
    """The Deployment runs the current template, every replica updated and available."""
    crash_restarts: int
    """Highest restart count of a container in a pod started by this rollout."""
    crash_looping: bool
    """A container of this rollout waits in CrashLoopBackOff."""
    deadline_exceeded: bool = False
    """Kubernetes reports the Deployment's current template made no progress for its
    ``progressDeadlineSeconds`` (the exocorp's ``spec.progressDeadlineSeconds``)."""
    missing: bool = False
    """The Deployment does not exist (yet)."""


def observe(exo: Exocorp, release: ExocorpReleaseSpec, cache: ObjectCache, namespace: str,
            revision: str | None) -> list[ComponentHealth]:
    """``revision``: the revision rolling out; only its pods (with the current restart stamp)
    count towards a crash loop, so the failed pods of the revision being left behind never
    fail the rollback that replaces them."""
    pods = cache.owned(exo.metadata.name, "Pod")
    out = []
    for component in release.components:
        desired = desired_replicas(exo, component)
        dep = cache.get("Deployment", component.name, namespace) or {}
        spec_generation = int(dep.get("metadata", {}).get("generation", 0))
        st = dep.get("status", {})
        ready = int(st.get("readyReplicas", 0))
        available = int(st.get("availableReplicas", 0))
        updated = int(st.get("updatedReplicas", 0))
        total = int(st.get("replicas", 0))
        observed = int(st.get("observedGeneration", 0))
        rolled_out = bool(dep) and observed >= spec_generation and updated >= desired \
            and available >= desired and total == desired
        deadline_exceeded = bool(dep) and observed >= spec_generation and any(
            c.get("type") == "Progressing" and c.get("status") == "False"
            and c.get("reason") == PROGRESS_DEADLINE_EXCEEDED for c in st.get("conditions") or ())
        own = [p for p in pods
               if p.get("metadata", {}).get("namespace") == namespace
               and p["metadata"].get("labels", {}).get(names.LABEL_COMPONENT) == component.name
               and not p["metadata"].get("deletionTimestamp")]
        restarts = 0
        crash_restarts = 0
        crash_looping = False
        for pod in own:
            this_rollout = (
                pod["metadata"].get("labels", {}).get(names.LABEL_REVISION) == revision
                and (pod["metadata"].get("annotations") or {}).get(names.ANNOTATION_RESTART_AT)
                == exo.spec.restart_at)
            for cs in pod.get("status", {}).get("containerStatuses") or []:
                count = int(cs.get("restartCount", 0))
                restarts += count
                if this_rollout:
                    crash_restarts = max(crash_restarts, count)
                    waiting = (cs.get("state") or {}).get("waiting") or {}
                    crash_looping |= waiting.get("reason") == "CrashLoopBackOff"
        out.append(ComponentHealth(
            status=ComponentStatus(name=component.name, desired=desired, ready=min(ready, total),
                                   available=available, restarts=restarts),
            rolled_out=rolled_out, crash_restarts=crash_restarts, crash_looping=crash_looping,
            deadline_exceeded=deadline_exceeded, missing=not dep,
        ))
    return out
