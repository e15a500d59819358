"""Pieces of the reconciler that need no cluster: rollout identity, the work queue, the cache,
the throttle and drift detection."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from exocorp.model import Exocorp, RevisionContent, RolloutStatus
from exocorp.operator.cache import ObjectCache
from exocorp.operator.reconciler import Reconciler
from exocorp.operator.rollout import rollout_key
from exocorp.operator.runtime_objects import _edited_by_someone_else
from exocorp.operator.settings import OperatorSettings
from exocorp.operator.workqueue import WorkQueue
from exocorp.testing import samples

pytestmark = pytest.mark.unit


def _exo(action: str | None, at: str = "2026-01-01T00:00:00Z", **spec: Any) -> Exocorp:
    body = samples.exocorp("acme", "alice")
    body["spec"].update(provisioned=True, release={"channel": "stable", "version": "1.0.0"},
                        config=samples.draft()["config"], **spec)
    if action:
        body["spec"]["lastAction"] = {"action": action, "requestedBy": "u", "at": at,
                                      **({"reason": "r"} if action == "pause" else {})}
    if action == "pause":
        body["spec"].update(paused=True, pauseReason="r")
    return Exocorp.model_validate(body)


def _key(exo: Exocorp, current: RolloutStatus | None = None) -> str:
    content = RevisionContent.from_spec(exo.spec)
    assert content is not None
    return rollout_key(exo, content, current)


def _rollout(key: str) -> RolloutStatus:
    return RolloutStatus(key=key, revision="acme-1", number=1, started_at="2026-01-01T00:00:00Z")


def test_each_rollout_action_is_a_new_rollout_even_with_identical_content() -> None:
    first = _key(_exo("update", "2026-01-01T00:00:00Z"))
    second = _key(_exo("rollback", "2026-01-01T00:05:00Z"))
    assert first != second
    assert first.split(".")[0] == second.split(".")[0]


def test_pause_resume_and_stop_keep_the_current_rollout() -> None:
    key = _key(_exo("update"))
    assert _key(_exo("pause"), _rollout(key)) == key
    assert _key(_exo("stop", stopped=True), _rollout(key)) == key


def test_a_hand_edit_of_the_content_is_a_new_rollout() -> None:
    key = _key(_exo("pause"), _rollout(_key(_exo("update"))))
    edited = _exo("pause", rebuildNonce=5)
    assert _key(edited, _rollout(key)) != key


def test_restart_stamp_is_a_new_rollout() -> None:
    before = _key(_exo("update"))
    after = _key(_exo("restart", "2026-01-01T00:09:00Z", restartAt="2026-01-01T00:09:00Z"))
    assert before != after


async def test_work_queue_coalesces_and_never_runs_one_name_twice_at_once() -> None:
    running: set[str] = set()
    calls: list[str] = []
    overlap = False
    gate = asyncio.Event()

    async def handler(name: str) -> float | None:
        nonlocal overlap
        overlap |= name in running
        running.add(name)
        calls.append(name)
        await gate.wait()
        running.discard(name)
        return None

    queue = WorkQueue(handler, workers=4)
    queue.start()
    try:
        queue.add("a")
        await asyncio.sleep(0.05)
        for _ in range(10):  # triggered while running: one more pass afterwards, not ten
            queue.add("a")
        queue.add("b")
        queue.add("b")
        await asyncio.sleep(0.05)
        gate.set()
        await asyncio.sleep(0.2)
    finally:
        await queue.stop()
    assert not overlap
    assert sorted(calls) == ["a", "a", "b"]


async def test_work_queue_retries_after_a_failure() -> None:
    attempts = 0
    done = asyncio.Event()

    async def handler(name: str) -> float | None:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise RuntimeError("boom")
        done.set()
        return None

    queue = WorkQueue(handler, workers=1)
    queue.start()
    queue.add_after("x", 0)
    try:
        queue._handler = handler
        await asyncio.wait_for(done.wait(), 10)
    finally:
        await queue.stop()
    assert attempts == 2


def test_cache_keeps_the_newest_version_and_indexes_by_exocorp() -> None:
    cache = ObjectCache()
    new = {"metadata": {"name": "d", "namespace": "n", "resourceVersion": "10",
                        "labels": {"exocorp.io/exocorp": "acme"}}}
    old = {"metadata": {"name": "d", "namespace": "n", "resourceVersion": "9",
                        "labels": {"exocorp.io/exocorp": "acme"}}}
    cache.observe("Deployment", "MODIFIED", new)
    cache.store("Deployment", old)
    assert cache.get("Deployment", "d", "n") == new
    assert cache.owned("acme", "Deployment") == [new]
    cache.observe("Deployment", "DELETED", new)
    assert cache.owned("acme", "Deployment") == []


def test_throttle_counts_other_exocorps_rolling_out() -> None:
    cache = ObjectCache()
    for i in range(3):
        cache.store("Exocorp", {"metadata": {"name": f"e{i}", "resourceVersion": "1"},
                                "status": {"rollout": {"outcome": "Progressing"}}})
    reconciler = Reconciler(kube=None, cache=cache,  # type: ignore[arg-type]
                            settings=OperatorSettings(max_concurrent_rollouts=3))
    assert reconciler.rollouts.slot_available("e0")
    assert not reconciler.rollouts.slot_available("new")


def test_drift_detection_ignores_control_plane_writers() -> None:
    def live(*managers: tuple[str, dict[str, Any], str | None]) -> dict[str, Any]:
        return {"metadata": {"managedFields": [
            {"manager": m, "fieldsV1": f, **({"subresource": s} if s else {})}
            for m, f, s in managers]}}

    ours = ("exocorp", {"f:spec": {}}, None)
    assert not _edited_by_someone_else(live(ours, ("kube-controller-manager",
                                                   {"f:status": {}}, "status")))
    assert not _edited_by_someone_else(live(ours, ("kubectl-label", {"f:metadata": {}}, None)))
    assert _edited_by_someone_else(live(ours, ("kubectl-edit", {"f:spec": {}}, None)))
