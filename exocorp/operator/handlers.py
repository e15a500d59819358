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
from exocorp.operator import metrics
from exocorp.operator.cache import ObjectCache
from exocorp.operator.platform_secrets import PlatformSecretWatch
from exocorp.operator.reconciler import Reconciler
from exocorp.operator.settings import OperatorSettings
from exocorp.operator.sweep import Sweeper, Watched

log = logging.getLogger(__name__)
MANAGED = {names.LABEL_MANAGED_BY: names.MANAGER}
MANAGED_RESOURCES = (r.NAMESPACES, r.SERVICEACCOUNTS, r.RESOURCEQUOTAS, r.LIMITRANGES,
                     r.CONFIGMAPS, r.SERVICES, r.PVCS, r.DEPLOYMENTS, r.NETWORKPOLICIES,
                     r.INGRESSES, r.CONTROLLERREVISIONS)
# What the cache holds through kopf, listed as the handlers below watch it (for the sweeper).
# Not Secrets: platform_secrets lists and watches them in the platform namespace only, and
# sweeps on its own relists.
WATCHED = (
    Watched("Exocorp", r.EXOCORPS),
    Watched("ExocorpRelease", r.RELEASES),
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
    secrets: PlatformSecretWatch
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
        metrics.EXOCORPS.phases = lambda: ((body.get("status") or {}).get("phase")
                                           for body in STATE.cache.of_kind("Exocorp"))
        STATE.sweeper = Sweeper(STATE.kube, STATE.cache, WATCHED, STATE.reconciler.queue.add)
        await _ensure_platform_namespace(STATE.kube, settings.namespace)
        STATE.secrets = PlatformSecretWatch(STATE.kube, STATE.cache, settings.namespace,
                                            _secret_changed)
        STATE.secrets.start()

    @kopf.on.cleanup(registry=registry)
    async def cleanup(**_: Any) -> None:
        await STATE.secrets.stop()
        await STATE.sweeper.stop()
        await STATE.reconciler.queue.stop()
        await STATE.kube.close()

    # No kopf timer for the periodic resync: every pass re-queues its exocorp in the work
    # queue, and a per-object timer would cost a task and a copy of the body per interval.
    @kopf.on.event(names.GROUP, names.VERSION, names.EXOCORP_PLURAL, registry=registry)
    async def exocorp_event(event: kopf.RawEvent, name: str, **_: Any) -> None:
        _observe("Exocorp", event)
        if event.get("type") != "DELETED":  # a deletion in progress is the pass's job too
            STATE.reconciler.queue.add(name)

    @kopf.on.event(names.GROUP, names.VERSION, names.RELEASE_PLURAL, registry=registry)
    async def release_event(event: kopf.RawEvent, **_: Any) -> None:
        _observe("ExocorpRelease", event)
        version = (event.get("object") or {}).get("spec", {}).get("version")
        for body in STATE.cache.of_kind("Exocorp"):
            if (body.get("spec", {}).get("release") or {}).get("version") == version:
                STATE.reconciler.queue.add(body["metadata"]["name"])

    # Provider credentials in the platform namespace are watched there only (platform_secrets):
    # Secrets are read in no other namespace, so there is no kopf handler for them.

    for resource in MANAGED_RESOURCES:
        _register_managed(registry, resource.group, resource.version, resource.plural,
                          resource.kind)

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


def _secret_changed(name: str) -> None:
    """A provider credential changed: a rotation rolls the runtimes bound to it."""
    for body in STATE.cache.of_kind("Exocorp"):
        bindings = body.get("spec", {}).get("providerBindings") or []
        if any(b.get("secretName") == name for b in bindings):
            STATE.reconciler.queue.add(body["metadata"]["name"])


async def _ensure_platform_namespace(kube: Kube, namespace: str) -> None:
    if await kube.get_or_none(r.NAMESPACES, namespace) is None:
        await kube.create(r.NAMESPACES, {"metadata": {"name": namespace}})
