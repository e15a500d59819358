"""kopf registrations: watch events feed the cache and the work queue; the deletion handler
tears a runtime down behind the finalizer. All decisions live in the reconciler."""

from __future__ import annotations

import logging
import time
from typing import Any

import kopf

from exocorp import names
from exocorp.k8s import Kube
from exocorp.k8s import resources as r
from exocorp.model import Phase
from exocorp.operator import destroy, metrics
from exocorp.operator.cache import ObjectCache
from exocorp.operator.reconciler import Reconciler
from exocorp.operator.settings import OperatorSettings
from exocorp.operator.sweep import Sweeper, Watched

log = logging.getLogger(__name__)
MANAGED = {names.LABEL_MANAGED_BY: names.MANAGER}
MANAGED_RESOURCES = (r.NAMESPACES, r.SERVICEACCOUNTS, r.RESOURCEQUOTAS, r.LIMITRANGES,
                     r.CONFIGMAPS, r.SERVICES, r.PVCS, r.DEPLOYMENTS, r.NETWORKPOLICIES,
                     r.INGRESSES, r.CONTROLLERREVISIONS)
# What the cache holds, listed as the handlers below watch it (for the sweeper).
WATCHED = (
    Watched("Exocorp", r.EXOCORPS),
    Watched("ExocorpRelease", r.RELEASES),
    Watched("Secret", r.SECRETS),
    Watched("Pod", r.PODS, names.LABEL_EXOCORP),
    *(Watched(resource.kind, resource, f"{names.LABEL_MANAGED_BY}={names.MANAGER}")
      for resource in MANAGED_RESOURCES),
)


class Operator:
    """The operator's shared state, set up at start-up."""

    kube: Kube
    cache: ObjectCache
    reconciler: Reconciler
    settings: OperatorSettings
    sweeper: Sweeper


STATE = Operator()


def _observe(kind: str, event: kopf.RawEvent) -> str | None:
    body: dict[str, Any] = dict(event.get("object") or {})
    STATE.cache.observe(kind, event.get("type"), body)
    if event.get("type") is None:  # kopf is (re)listing: it reports no deletion
        STATE.sweeper.listing_seen()
    metrics.LAST_WATCH_EVENT.set(STATE.cache.last_event_at)
    labels = body.get("metadata", {}).get("labels") or {}
    owner = labels.get(names.LABEL_EXOCORP)
    return str(owner) if owner else None


def register(registry: kopf.OperatorRegistry, settings: OperatorSettings) -> None:
    """Register every handler on ``registry`` (kept explicit so tests can build their own)."""

    @kopf.on.startup(registry=registry)
    async def startup(**_: Any) -> None:
        STATE.settings = settings
        STATE.kube = await Kube.connect(None)
        STATE.cache = ObjectCache()
        STATE.reconciler = Reconciler(STATE.kube, STATE.cache, settings)
        STATE.reconciler.queue.start()
        STATE.sweeper = Sweeper(STATE.kube, STATE.cache, WATCHED, STATE.reconciler.queue.add)
        await _ensure_platform_namespace(STATE.kube, settings.namespace)

    @kopf.on.cleanup(registry=registry)
    async def cleanup(**_: Any) -> None:
        await STATE.sweeper.stop()
        await STATE.reconciler.queue.stop()
        await STATE.kube.close()

    @kopf.on.event(names.GROUP, names.VERSION, names.EXOCORP_PLURAL, registry=registry)
    async def exocorp_event(event: kopf.RawEvent, name: str, **_: Any) -> None:
        _observe("Exocorp", event)
        body = event.get("object") or {}
        if event.get("type") != "DELETED" and not body["metadata"].get("deletionTimestamp"):
            STATE.reconciler.queue.add(name)
        _update_phase_gauge()

    @kopf.timer(names.GROUP, names.VERSION, names.EXOCORP_PLURAL, registry=registry,
                interval=settings.resync_seconds, idle=settings.resync_seconds)
    async def resync(name: str, **_: Any) -> None:
        STATE.reconciler.queue.add(name)

    @kopf.on.delete(names.GROUP, names.VERSION, names.EXOCORP_PLURAL, registry=registry)
    async def exocorp_deleted(name: str, body: kopf.Body, **_: Any) -> None:
        await destroy.tear_down(STATE.kube, STATE.cache, settings, name, dict(body))

    @kopf.on.event(names.GROUP, names.VERSION, names.RELEASE_PLURAL, registry=registry)
    async def release_event(event: kopf.RawEvent, **_: Any) -> None:
        _observe("ExocorpRelease", event)
        version = (event.get("object") or {}).get("spec", {}).get("version")
        for body in STATE.cache.of_kind("Exocorp"):
            if (body.get("spec", {}).get("release") or {}).get("version") == version:
                STATE.reconciler.queue.add(body["metadata"]["name"])

    # Provider credentials in the platform namespace: a rotation rolls the bound runtimes.
    @kopf.on.event("", "v1", "secrets", registry=registry,
                   when=lambda namespace, **_: namespace == settings.namespace)
    async def platform_secret_event(event: kopf.RawEvent, name: str, **_: Any) -> None:
        _observe("Secret", event)
        for body in STATE.cache.of_kind("Exocorp"):
            bindings = body.get("spec", {}).get("providerBindings") or []
            if any(b.get("secretName") == name for b in bindings):
                STATE.reconciler.queue.add(body["metadata"]["name"])

    for resource in MANAGED_RESOURCES:
        _register_managed(registry, resource.group, resource.version, resource.plural,
                          resource.kind)

    # Runtime secrets (the copied credentials; TLS certificates issued into the namespace).
    @kopf.on.event("", "v1", "secrets", registry=registry,
                   when=lambda namespace, **_: bool(namespace)
                   and namespace.startswith("exo-"))
    async def runtime_secret_event(event: kopf.RawEvent, **_: Any) -> None:
        _observe("Secret", event)
        ns = (event.get("object") or {}).get("metadata", {}).get("namespace", "")
        owner = _owner_of_namespace(ns)
        if owner:
            STATE.reconciler.queue.add(owner)

    # kopf's peering keep-alives arrive about once a minute: they keep the watch-freshness
    # metric meaningful on an idle cluster (no event for long means the watches are stuck).
    @kopf.on.event("kopf.dev", "v1", "clusterkopfpeerings", registry=registry)
    async def peering_event(**_: Any) -> None:
        STATE.cache.last_event_at = time.time()
        metrics.LAST_WATCH_EVENT.set(STATE.cache.last_event_at)

    @kopf.on.event("", "v1", "pods", registry=registry, labels={names.LABEL_EXOCORP: kopf.PRESENT})
    async def pod_event(event: kopf.RawEvent, **_: Any) -> None:
        owner = _observe("Pod", event)
        if owner:
            STATE.reconciler.queue.add(owner)


def _register_managed(registry: kopf.OperatorRegistry, group: str, version: str, plural: str,
                      kind: str) -> None:
    @kopf.on.event(group, version, plural, registry=registry, labels=MANAGED)
    async def managed_event(event: kopf.RawEvent, **_: Any) -> None:
        owner = _observe(kind, event)
        if owner:
            STATE.reconciler.queue.add(owner)


def _owner_of_namespace(namespace: str) -> str | None:
    body = STATE.cache.get("Namespace", namespace)
    if body is None:
        return None
    owner = body.get("metadata", {}).get("labels", {}).get(names.LABEL_EXOCORP)
    return str(owner) if owner else None


def _update_phase_gauge() -> None:
    counts: dict[str, int] = {}
    for body in STATE.cache.of_kind("Exocorp"):
        phase = (body.get("status") or {}).get("phase")
        if phase:
            counts[phase] = counts.get(phase, 0) + 1
    for phase_label in [p for p in counts] + [p.value for p in Phase]:
        metrics.EXOCORPS.labels(phase=phase_label).set(counts.get(phase_label, 0))


async def _ensure_platform_namespace(kube: Kube, namespace: str) -> None:
    if await kube.get_or_none(r.NAMESPACES, namespace) is None:
        await kube.create(r.NAMESPACES, {"metadata": {"name": namespace}})
