"""A rollout's progress deadline is Kubernetes': a component fails it when its Deployment's
controller reports no progress for ``progressDeadlineSeconds`` (the Progressing condition's
``ProgressDeadlineExceeded``), not when a clock from the rollout's start runs out. In a
fleet-wide burst the controllers reach some Deployments many minutes late; a clock failed those
rollouts although nothing was wrong with them (981 of 1,000 in ``bench/operator.py --n 1000``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from exocorp.model import (
    ConditionType,
    Exocorp,
    ExocorpReleaseSpec,
    RevisionOutcome,
    RolloutStatus,
)
from exocorp.model.conditions import get_condition
from exocorp.operator import health
from exocorp.operator.cache import ObjectCache
from exocorp.operator.reconcile_pass import Pass
from exocorp.operator.rollout import PROGRESS_RECHECK_SECONDS, Rollouts
from exocorp.operator.settings import OperatorSettings
from exocorp.testing import samples

Obj = dict[str, Any]
NOW = datetime(2026, 12, 5, 3, 0, tzinfo=UTC)
NS = "exo-acme"


def _deployment(name: str, *, generation: int = 2, observed: int = 2,
                progressing: tuple[str, str] | None = ("True", "ReplicaSetUpdated")) -> Obj:
    status: Obj = {"replicas": 1, "updatedReplicas": 0, "readyReplicas": 0,
                   "availableReplicas": 0, "observedGeneration": observed}
    if progressing is not None:
        status["conditions"] = [
            {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable"},
            {"type": "Progressing", "status": progressing[0], "reason": progressing[1],
             "message": "x" * 200, "lastUpdateTime": "2026-12-05T02:40:00Z"}]
    return {"metadata": {"name": name, "namespace": NS, "generation": generation,
                         "resourceVersion": "10", "labels": {"exocorp.io/exocorp": "acme"}},
            "status": status}


class _Kube:
    """Takes the revision's outcome annotation (``revisions.record_outcome``) and nothing else."""

    def __init__(self) -> None:
        self.writes: list[str] = []

    async def get(self, resource: Any, name: str, namespace: str | None = None) -> Obj:
        self.writes.append(f"get {name}")
        return {"metadata": {"name": name, "namespace": namespace, "annotations": {}}}

    async def replace(self, resource: Any, name: str, body: Obj,
                      namespace: str | None = None) -> Obj:
        self.writes.append(f"replace {name}")
        return body


def _pass(deployments: list[Obj],
          started_minutes_ago: float) -> tuple[Pass, list[health.ComponentHealth]]:
    exo = Exocorp.model_validate(samples.exocorp("acme", "owner"))
    release = ExocorpReleaseSpec.model_validate(samples.release("1.0.0")["spec"])
    cache = ObjectCache()
    for body in deployments:
        cache.observe("Deployment", "ADDED", body)
    status = exo.status.model_copy(deep=True)
    status.rollout = RolloutStatus(
        key="k", revision="acme-1", number=1, action=None,
        started_at=(NOW - timedelta(minutes=started_minutes_ago)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        outcome=RevisionOutcome.PROGRESSING)
    return Pass(exo, status, NOW, 2), health.observe(exo, release, cache, NS, "acme-1")


async def _gate(deployments: list[Obj], started_minutes_ago: int) -> tuple[Pass, list[str]]:
    ctx, observed = _pass(deployments, started_minutes_ago)
    kube = _Kube()
    await Rollouts(kube, ObjectCache(), OperatorSettings()).gate(ctx, observed)  # type: ignore[arg-type]
    return ctx, kube.writes


def _all(progressing: tuple[str, str] | None = ("True", "ReplicaSetUpdated"),
         observed: int = 2) -> list[Obj]:
    return [_deployment(name, progressing=progressing, observed=observed)
            for name in ("portal", "app", "agents")]


async def test_a_rollout_queued_behind_a_busy_controller_is_not_failed_by_the_clock() -> None:
    ctx, writes = await _gate(_all(), started_minutes_ago=25)  # 600 s long gone
    assert ctx.status.rollout is not None
    assert ctx.status.rollout.outcome == RevisionOutcome.PROGRESSING
    assert writes == []


async def test_no_progress_reported_by_kubernetes_fails_the_rollout() -> None:
    deployments = _all()
    deployments[1] = _deployment("app", progressing=("False", "ProgressDeadlineExceeded"))
    ctx, writes = await _gate(deployments, started_minutes_ago=11)
    assert ctx.status.rollout is not None
    assert ctx.status.rollout.outcome == RevisionOutcome.FAILED
    progressing = get_condition(ctx.status.conditions, ConditionType.PROGRESSING)
    assert progressing is not None
    assert progressing.reason == "ProgressDeadlineExceeded"
    assert progressing.message == "no progress within 600s: app"
    assert writes == ["get acme-1", "replace acme-1"]  # the revision's outcome is recorded


async def test_a_verdict_on_an_older_template_does_not_fail_the_new_rollout() -> None:
    deployments = _all()
    deployments[0] = _deployment("portal", observed=1,
                                 progressing=("False", "ProgressDeadlineExceeded"))
    ctx, _ = await _gate(deployments, started_minutes_ago=11)
    assert ctx.status.rollout is not None
    assert ctx.status.rollout.outcome == RevisionOutcome.PROGRESSING


async def test_a_deployment_never_created_fails_by_the_clock() -> None:
    ctx, _ = await _gate(_all()[:2], started_minutes_ago=5)
    assert ctx.status.rollout is not None
    assert ctx.status.rollout.outcome == RevisionOutcome.PROGRESSING
    ctx, _ = await _gate(_all()[:2], started_minutes_ago=11)
    assert ctx.status.rollout is not None
    assert ctx.status.rollout.outcome == RevisionOutcome.FAILED
    progressing = get_condition(ctx.status.conditions, ConditionType.PROGRESSING)
    assert progressing is not None
    assert progressing.message == "not created within 600s: agents"


def _recheck(ctx: Pass, observed: list[health.ComponentHealth],
             resync_seconds: float = 300.0) -> float:
    rollouts = Rollouts(_Kube(), ObjectCache(),  # type: ignore[arg-type]
                        OperatorSettings(resync_seconds=resync_seconds))
    return rollouts.recheck_after(ctx, observed)


def test_a_rollout_under_way_waits_for_events_with_only_a_rare_safety_check() -> None:
    """Its Deployments and Pods are watched: no poll every second (300 passes a second in a
    fleet-wide burst of 1,000). Never later than the resync, though."""
    ctx, observed = _pass(_all(), started_minutes_ago=1)
    assert _recheck(ctx, observed) == PROGRESS_RECHECK_SECONDS == 30.0
    assert _recheck(ctx, observed, resync_seconds=2.0) == 2.0


def test_a_deployment_never_created_is_looked_at_again_when_its_clock_runs_out() -> None:
    ctx, observed = _pass(_all()[:2], started_minutes_ago=9.75)  # 15 s of 600 left
    assert _recheck(ctx, observed) == 16.0
    ctx, observed = _pass(_all()[:2], started_minutes_ago=1)
    assert _recheck(ctx, observed) == PROGRESS_RECHECK_SECONDS
    ctx, observed = _pass(_all()[:2], started_minutes_ago=30)  # overdue: soon, not at once
    assert _recheck(ctx, observed) == 1.0
