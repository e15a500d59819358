"""A release's status (kubectl's CHANNELS column) is written once per spec change, from the
cache's latest body; and the operator's cleanup stops its background tasks (the release status
writer, the peering gate) before it closes the client they use."""

from __future__ import annotations

import asyncio
from typing import Any

import kopf
import pytest
from kopf._core.intents.causes import Activity

from exocorp.k8s import ApiError
from exocorp.k8s import resources as r
from exocorp.operator import handlers
from exocorp.operator.cache import ObjectCache
from exocorp.operator.release_status import ReleaseStatusWriter, wanted_status
from exocorp.operator.settings import OperatorSettings
from exocorp.testing import samples

pytestmark = pytest.mark.unit


def release(channels: tuple[str, ...], generation: int = 1,
            status: dict[str, Any] | None = None) -> dict[str, Any]:
    body = samples.release("1.2.0", channels)
    body["metadata"] = {**body["metadata"], "generation": generation, "resourceVersion": "7"}
    if status is not None:
        body["status"] = status
    return body


class FakeKube:
    def __init__(self, fail_with: list[BaseException] | None = None) -> None:
        self.patches: list[tuple[str, dict[str, Any], str | None]] = []
        self.fail_with = fail_with or []
        self.closed = False

    async def patch(self, resource: Any, name: str, patch: dict[str, Any], *,
                    subresource: str | None = None, **_: Any) -> dict[str, Any]:
        assert resource is r.RELEASES
        if self.closed:
            raise RuntimeError("Session is closed")  # what aiohttp says after close()
        if self.fail_with:
            raise self.fail_with.pop(0)
        self.patches.append((name, patch, subresource))
        return {}

    async def close(self) -> None:
        self.closed = True


def test_the_wanted_status_joins_the_channels_and_is_none_once_written() -> None:
    assert wanted_status(release(("beta", "canary"), generation=3)) == {
        "channels": "beta,canary", "observedGeneration": 3}
    written = release(("beta", "canary"), 3, {"channels": "beta,canary", "observedGeneration": 3})
    assert wanted_status(written) is None
    # An edit of the channels bumps the generation: the old line is stale.
    assert wanted_status(release(("stable",), 4, written["status"])) == {
        "channels": "stable", "observedGeneration": 4}


async def _until(predicate: Any) -> None:
    for _ in range(200):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


async def test_the_writer_patches_the_status_subresource_once_per_change() -> None:
    kube, cache = FakeKube(), ObjectCache()
    writer = ReleaseStatusWriter(kube, cache)  # type: ignore[arg-type]
    task = asyncio.create_task(writer.run())
    try:
        body = release(("stable", "beta"))
        cache.store("ExocorpRelease", body)
        writer.changed(body)
        writer.changed(body)  # repeated events of one change coalesce
        await _until(lambda: kube.patches)
        name = body["metadata"]["name"]
        assert kube.patches == [(name, {"status": {"channels": "stable,beta",
                                                   "observedGeneration": 1}}, "status")]
        # The write's own event comes back with the status: nothing more to write.
        written = {**body, "status": {"channels": "stable,beta", "observedGeneration": 1}}
        cache.store("ExocorpRelease", {**written, "metadata": {**body["metadata"],
                                                                "resourceVersion": "8"}})
        writer.changed(written)
        await asyncio.sleep(0.05)
        assert len(kube.patches) == 1
    finally:
        task.cancel()


async def test_a_failed_write_is_retried_and_a_refused_one_is_not(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("exocorp.operator.release_status.RETRY_SECONDS", 0.01)
    kube = FakeKube([ApiError(500, "InternalError", "etcd leader changed"),
                     ApiError(403, "Forbidden", "no RBAC for exocorpreleases/status")])
    cache = ObjectCache()
    writer = ReleaseStatusWriter(kube, cache)  # type: ignore[arg-type]
    task = asyncio.create_task(writer.run())
    try:
        body = release(("stable",))
        cache.store("ExocorpRelease", body)
        writer.changed(body)
        await _until(lambda: not kube.fail_with)  # 500, retried; then 403, given up
        await asyncio.sleep(0.05)
        assert kube.patches == []
        other = release(("beta",))
        other["metadata"]["name"] = "other"
        cache.store("ExocorpRelease", other)
        writer.changed(other)  # the writer still runs after both failures
        await _until(lambda: kube.patches)
        assert kube.patches[0][0] == "other"
    finally:
        task.cancel()


async def test_cleanup_stops_background_tasks_before_closing_the_client() -> None:
    registry = kopf.OperatorRegistry()
    handlers.register(registry, OperatorSettings())
    cleanup: list[Any] = [h.fn for h in registry._activities.get_handlers(
        activity=Activity.CLEANUP)]
    assert len(cleanup) == 1
    memo = handlers.Operator()
    kube, failures = FakeKube(), list[BaseException]()

    async def uses_the_client() -> None:  # as the peering gate does, every few seconds
        while True:
            try:
                await kube.patch(r.RELEASES, "x", {})
            except RuntimeError as error:
                failures.append(error)
                raise
            await asyncio.sleep(0)

    class Stopped:
        async def stop(self) -> None:
            return None

    memo.kube = kube  # type: ignore[assignment]
    memo.informers = []
    memo.reconciler = type("R", (), {"queue": Stopped()})()
    memo.background = [asyncio.create_task(uses_the_client())]
    await asyncio.sleep(0.01)
    await cleanup[0](memo=memo)
    assert kube.closed
    assert failures == []
    assert memo.background[0].cancelled()
