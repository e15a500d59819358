"""Control-plane faults on a cluster of this module's own (the session's cluster is never
disturbed): the kube-apiserver restarted, and etcd down for a few seconds with the API server up.

Around each outage objects change: right before it; right after it while the operator is still
frozen (SIGSTOP: its watches broke unread, and etcd's history is compacted, so it must relist,
and a relist reports no deletion); and once it runs again (creations, spec changes, deletions).
Afterwards the gateway's watch cache must equal a fresh list (names and resourceVersions), and
the operator must have processed every change: each exocorp's observedGeneration caught up,
runtime objects deleted meanwhile restored, destroyed exocorps and their namespaces gone.
Neither process may die; the gateway stays ready (by design it serves reads from its cache
through an outage)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from exocorp import names
from exocorp.api_gateway.watch_cache import WatchCache
from exocorp.k8s import Kube
from exocorp.k8s import resources as r
from exocorp.k8s.informer import Informer
from exocorp.model import Exocorp
from exocorp.names import runtime_namespace
from exocorp.testing.controlplane import ControlPlane
from exocorp.testing.platform import PLATFORM_NAMESPACE, OperatorProcess
from exocorp.testing.waiting import eventually
from tests.plugins.cluster import private_plane
from tests.plugins.platform import Driver, published_platform

pytestmark = pytest.mark.integration

ETCD_DOWN_SECONDS = 4.0  # how long the fault lasts (not a threshold of any assertion)


@pytest.fixture(scope="module")
def outage_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    with private_plane(tmp_path_factory, "outage", nodes=1) as plane:
        yield plane


@pytest.fixture(scope="module")
async def outage_kube(outage_plane: ControlPlane) -> AsyncIterator[Kube]:
    async with published_platform(outage_plane) as kube:
        yield kube


@pytest.fixture(scope="module")
def outage_operator(outage_plane: ControlPlane, outage_kube: Kube,
                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    """One operator process for the module: it must live through every outage."""
    op = OperatorProcess(outage_plane.kubeconfig, tmp_path_factory.mktemp("outage-operator"),
                         resync_seconds=1.0)
    op.start()
    try:
        yield op
    finally:
        with contextlib.suppress(ProcessLookupError):
            if op.process is not None:
                os.kill(op.process.pid, signal.SIGCONT)
        op.stop()


@contextlib.contextmanager
def frozen(op: OperatorProcess) -> Iterator[None]:
    """SIGSTOP the operator (a stalled process or a partitioned node): it sees nothing until
    SIGCONT, by which time its watches have broken."""
    assert op.process is not None
    os.kill(op.process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(op.process.pid, signal.SIGCONT)


def _key(obj: dict[str, Any]) -> str:
    meta = obj["metadata"]
    return f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else str(meta["name"])


async def fresh_versions(kube: Kube, informer: Informer[Any]) -> dict[str, int | None]:
    """What the informer should hold: a fresh list, through the informer's own filter."""
    listed = await kube.list_all(informer.resource, informer.namespace,
                                 label_selector=informer.label_selector)
    return {_key(o): int(o["metadata"]["resourceVersion"]) for o in listed["items"]
            if informer.convert(o) is not None}


async def cache_diff(kube: Kube, cache: WatchCache) -> dict[str, dict[str, Any]]:
    """Per resource: keys whose resourceVersion differs between the cache and a fresh list."""
    out: dict[str, dict[str, Any]] = {}
    for informer in cache.informers:
        want = await fresh_versions(kube, informer)
        have = informer.versions()
        diff = {k: (have.get(k), want.get(k)) for k in want.keys() | have.keys()
                if have.get(k) != want.get(k)}
        if diff:
            out[informer.resource.plural] = diff
    return out


def _metric(op: OperatorProcess, name: str) -> float:
    for line in op.metrics().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


@pytest.mark.parametrize("fault", ["apiserver-restart", "etcd-down"])
async def test_watch_caches_recover_from_a_control_plane_outage_without_missing_updates(
    fault: str, outage_plane: ControlPlane, outage_kube: Kube,
    outage_operator: OperatorProcess,
) -> None:
    kube = outage_kube
    driver = await Driver.with_secret(kube, f"outage{fault[:4]}")
    keep, doomed, late = await asyncio.gather(*(
        driver.running(prefix) for prefix in ("keep", "doomed", "late")))
    draft_before, draft_after = await driver.create("dbefore"), await driver.create("dafter")
    for name in (draft_before, draft_after):
        await driver.wait(name, "Draft")

    swept_before = _metric(outage_operator, "exocorp_operator_cache_swept_total")
    cache = WatchCache(kube, platform_namespace=PLATFORM_NAMESPACE, timeout_seconds=60)
    await cache.start()
    try:
        await cache.wait_ready()
        keep_ns = runtime_namespace(keep)
        with frozen(outage_operator):
            # Right before the outage.
            await kube.patch(r.EXOCORPS, draft_before, {"spec": {"displayName": "Before"}})
            if fault == "apiserver-restart":
                await asyncio.to_thread(outage_plane.restart_apiserver)
            else:
                await asyncio.to_thread(outage_plane.stop_etcd)
                try:
                    await asyncio.sleep(ETCD_DOWN_SECONDS)
                    # Reads keep being served from the cache, and it stays ready meanwhile.
                    assert cache.ready
                    assert cache.exocorp(keep) is not None
                finally:
                    await asyncio.to_thread(outage_plane.start_etcd)
            # Back, but the operator is still cut off (its old connections broken, unread):
            # changes it cannot see on any watch it had.
            await driver.act(doomed, "destroy", confirm=doomed)
            await kube.delete(r.NETWORKPOLICIES, "allow-dns", keep_ns)
            await kube.delete(r.CONFIGMAPS, "effective-manifest", keep_ns)
            # History compacted meanwhile (the API server does it every five minutes): its
            # watches cannot resume; it must list again, and a list reports no deletion.
            await asyncio.to_thread(outage_plane.compact_etcd)
        back = time.monotonic()
        assert cache.ready, "the gateway's readiness dropped: it serves from its cache"

        # Right after it: a creation, spec changes and deletions.
        created = await driver.create("fresh")
        await kube.patch(r.EXOCORPS, draft_after, {"spec": {"displayName": "After"}})
        await driver.act(late, "destroy", confirm=late)
        await driver.act(keep, "pause", reason="after the outage")
        await kube.delete(r.SERVICEACCOUNTS, "exocorp-runtime", keep_ns)

        async def diff() -> dict[str, dict[str, Any]]:
            return await cache_diff(kube, cache)

        await eventually(diff, lambda d: d == {}, within=120, what="gateway cache == fresh list")
        cache_converged = time.monotonic() - back

        async def operator_done() -> list[str]:
            """What is still unprocessed (empty when the operator caught up)."""
            pending = []
            for body in (await kube.list(r.EXOCORPS))["items"]:
                exo = Exocorp.model_validate(body)
                if (exo.status.observed_generation or 0) < (exo.metadata.generation or 0):
                    pending.append(f"{exo.metadata.name} generation")
            for name in (doomed, late):
                if await kube.get_or_none(r.EXOCORPS, name) is not None:
                    pending.append(f"{name} exists")
                if await kube.get_or_none(r.NAMESPACES, runtime_namespace(name)) is not None:
                    pending.append(f"{runtime_namespace(name)} exists")
            for resource, obj in ((r.NETWORKPOLICIES, "allow-dns"),
                                  (r.CONFIGMAPS, "effective-manifest"),
                                  (r.SERVICEACCOUNTS, "exocorp-runtime")):
                if await kube.get_or_none(resource, obj, keep_ns) is None:
                    pending.append(f"{keep_ns}/{obj} missing")
            return pending

        await eventually(operator_done, lambda pending: pending == [], within=120,
                         what="operator processed every change")
        operator_converged = time.monotonic() - back
        await driver.wait(keep, "Paused")
        await driver.wait(created, "Draft")
        # The cache agrees again after the operator's last writes.
        await eventually(diff, lambda d: d == {}, within=60, what="gateway cache == fresh list")
        cached = cache.exocorp(draft_after)
        assert cached is not None
        assert cached.spec.display_name == "After"
        assert cache.exocorp(doomed) is None
        assert cache.exocorp(late) is None
        revisions = (await kube.list(r.CONTROLLERREVISIONS, PLATFORM_NAMESPACE,
                                     label_selector=f"{names.LABEL_EXOCORP} in ({doomed},{late})"))
        assert revisions["items"] == []
    finally:
        await cache.stop()

    assert outage_operator.process is not None
    assert outage_operator.process.alive(), "the operator died during the outage"
    assert outage_operator.starts == 1
    swept = _metric(outage_operator, "exocorp_operator_cache_swept_total") - swept_before
    if fault == "apiserver-restart":  # its watches cannot resume: 410 Gone, relist, sweep
        assert swept >= 1, "the relist's missed deletions were not swept"
    print(f"\nFIGURE {fault}: gateway cache diff 0 after {cache_converged:.1f}s, operator caught "
          f"up after {operator_converged:.1f}s, operator swept {swept:.0f}, gateway relists "
          f"{ {i.resource.plural: i.relists for i in cache.informers} }")
