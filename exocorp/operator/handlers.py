"""What the operator watches and what it does on start-up and shutdown. Informers (list +
watch with server-side label selectors) feed the cache and the work queue; kopf runs the
process: login, peering, start-up and cleanup. All decisions live in the reconciler."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from typing import Any

import kopf

from exocorp import names
from exocorp.k8s import Kube, Obj
from exocorp.k8s import resources as r
from exocorp.operator import metrics
from exocorp.operator.cache import ObjectCache
from exocorp.operator.informer import Informer
from exocorp.operator.reconciler import Reconciler
from exocorp.operator.release_status import ReleaseStatusWriter
from exocorp.operator.settings import OperatorSettings

log = logging.getLogger(__name__)
MANAGED_SELECTOR = f"{names.LABEL_MANAGED_BY}={names.MANAGER}"
MANAGED_RESOURCES = (r.NAMESPACES, r.SERVICEACCOUNTS, r.RESOURCEQUOTAS, r.LIMITRANGES,
                     r.CONFIGMAPS, r.SERVICES, r.PVCS, r.DEPLOYMENTS, r.NETWORKPOLICIES,
                     r.INGRESSES, r.CONTROLLERREVISIONS)


class Operator:
    """The operator's shared state, set up at start-up. Passed to kopf as its ``memo`` (see
    ``main.run``), so every handler gets it as ``memo`` and nothing lives in a module global."""

    kube: Kube
    cache: ObjectCache
    reconciler: Reconciler
    settings: OperatorSettings
    informers: list[Informer]
    release_status: ReleaseStatusWriter
    # Tasks started beside the informers (the peering gate): cancelled before the client closes.
    background: list[asyncio.Task[None]]


def informers(state: Operator) -> list[Informer]:
    """One informer per watched kind. Provider credentials (Secrets) are watched in the
    platform namespace only: the operator may read Secrets nowhere else, and the copies in
    exocorp namespaces are written, never read."""
    kube, cache, settings = state.kube, state.cache, state.settings

    def on(change: Callable[[Operator, str, Obj], None]) -> Callable[[str, Obj], None]:
        return functools.partial(change, state)

    return [
        Informer(kube, cache, "Exocorp", r.EXOCORPS, on(_exocorp_changed),
                 label_selector=settings.shard_selector()),
        Informer(kube, cache, "ExocorpRelease", r.RELEASES, on(_release_changed)),
        Informer(kube, cache, "Pod", r.PODS, on(_owned_changed),
                 label_selector=settings.shard_selector(names.LABEL_EXOCORP)),
        Informer(kube, cache, "Secret", r.SECRETS, on(_secret_changed),
                 namespace=settings.namespace),
        *(Informer(kube, cache, resource.kind, resource, on(_owned_changed),
                   label_selector=settings.shard_selector(MANAGED_SELECTOR))
          for resource in MANAGED_RESOURCES),
    ]


def register(registry: kopf.OperatorRegistry, settings: OperatorSettings) -> None:
    """Register every handler on ``registry`` (kept explicit so tests can build their own)."""

    @kopf.on.startup(registry=registry)
    async def startup(memo: Operator, **_: Any) -> None:
        memo.settings = settings
        memo.background = []
        memo.kube = await Kube.connect(None)
        memo.cache = cache = ObjectCache()
        memo.reconciler = Reconciler(memo.kube, cache, settings)
        memo.reconciler.queue.start()
        metrics.EXOCORPS.phases = lambda: ((body.get("status") or {}).get("phase")
                                           for body in cache.of_kind("Exocorp"))
        await _ensure_platform_namespace(memo.kube, settings.namespace)
        memo.release_status = ReleaseStatusWriter(memo.kube, cache)
        memo.background.append(asyncio.create_task(memo.release_status.run(),
                                                   name="release-status"))
        memo.informers = informers(memo)
        for informer in memo.informers:
            informer.start()

    @kopf.on.cleanup(registry=registry)
    async def cleanup(memo: Operator, **_: Any) -> None:
        for task in memo.background:
            task.cancel()
        await asyncio.gather(*memo.background, return_exceptions=True)
        await asyncio.gather(*(informer.stop() for informer in memo.informers))
        await memo.reconciler.queue.stop()
        await memo.kube.close()

    # kopf's peering keep-alives arrive about once a minute: they keep the watch-freshness
    # metric meaningful on an idle cluster (no event for long means the watches are stuck).
    @kopf.on.event("kopf.dev", "v1", "clusterkopfpeerings", registry=registry)
    async def peering_event(memo: Operator, **_: Any) -> None:
        memo.cache.last_event_at = time.time()
        metrics.LAST_WATCH_EVENT.set(memo.cache.last_event_at)


# No periodic timer for the resync: every pass re-queues its exocorp in the work queue.
def _exocorp_changed(state: Operator, event_type: str, body: Obj) -> None:
    if event_type != "DELETED":  # a deletion in progress is the pass's job too
        state.reconciler.queue.add(body["metadata"]["name"])


def _release_changed(state: Operator, event_type: str, body: Obj) -> None:
    if event_type != "DELETED":
        state.release_status.changed(body)
    version = (body.get("spec") or {}).get("version")
    for exocorp in state.cache.of_kind("Exocorp"):
        if (exocorp.get("spec", {}).get("release") or {}).get("version") == version:
            state.reconciler.queue.add(exocorp["metadata"]["name"])


def _owned_changed(state: Operator, event_type: str, body: Obj) -> None:
    owner = ((body.get("metadata") or {}).get("labels") or {}).get(names.LABEL_EXOCORP)
    if owner:
        state.reconciler.queue.add(str(owner))


def _secret_changed(state: Operator, event_type: str, body: Obj) -> None:
    """A provider credential changed: a rotation rolls the runtimes bound to it."""
    name = body["metadata"]["name"]
    for exocorp in state.cache.of_kind("Exocorp"):
        bindings = exocorp.get("spec", {}).get("providerBindings") or []
        if any(b.get("secretName") == name for b in bindings):
            state.reconciler.queue.add(exocorp["metadata"]["name"])


async def _ensure_platform_namespace(kube: Kube, namespace: str) -> None:
    if await kube.get_or_none(r.NAMESPACES, namespace) is None:
        await kube.create(r.NAMESPACES, {"metadata": {"name": namespace}})
