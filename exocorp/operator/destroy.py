"""Destroy: everything an exocorp had (namespace with its workloads, volumes and routes;
revisions) is deleted before the finalizer lets the Exocorp object go. The finalizer is set
before anything exists and removed once nothing is left."""

from __future__ import annotations

import logging
from typing import Any

from exocorp import names
from exocorp.k8s import Kube, Obj
from exocorp.k8s import resources as r
from exocorp.model import Phase
from exocorp.operator import events, revisions
from exocorp.operator.cache import ObjectCache
from exocorp.operator.settings import OperatorSettings

log = logging.getLogger(__name__)


async def tear_down(kube: Kube, settings: OperatorSettings, name: str,
                    body: dict[str, Any]) -> bool:
    """One step of the teardown; True once nothing of the exocorp is left. Every step is safe
    to repeat, so a crash at any point is harmless."""
    if (body.get("status") or {}).get("phase") != Phase.DESTROYING.value:
        await kube.patch(r.EXOCORPS, name, {"status": {"phase": Phase.DESTROYING.value}},
                         subresource="status")
        await events.post(kube, body, "Normal", "Destroying",
                          "deleting the runtime namespace, volumes, routes and revisions")
    ns = names.runtime_namespace(name)
    for rev in await revisions.list_revisions(kube, settings.namespace, name):
        await kube.delete(r.CONTROLLERREVISIONS, rev["metadata"]["name"], settings.namespace)
    if await kube.get_or_none(r.NAMESPACES, ns) is not None:
        await kube.delete(r.NAMESPACES, ns, propagation="Foreground")
        return False
    return True


async def set_finalizer(kube: Kube, cache: ObjectCache, body: Obj, *, present: bool) -> Obj:
    """Add or remove our finalizer; the resourceVersion guards the rest of the list."""
    meta = body["metadata"]
    finalizers = [f for f in meta.get("finalizers") or [] if f != names.FINALIZER]
    if present:
        finalizers.append(names.FINALIZER)
    written: Obj = await kube.patch(r.EXOCORPS, meta["name"], {"metadata": {
        "finalizers": finalizers, "resourceVersion": meta["resourceVersion"]}})
    cache.store("Exocorp", written)
    return written


async def destroy_pass(kube: Kube, cache: ObjectCache, settings: OperatorSettings, name: str,
                       body: Obj) -> float | None:
    """Tear the runtime down, then let the object go. Level-based like any pass: a pass
    after a crash simply continues the teardown."""
    if names.FINALIZER not in (body["metadata"].get("finalizers") or []):
        return None
    if not await tear_down(kube, settings, name, body):
        return 2.0  # the namespace is still terminating
    await set_finalizer(kube, cache, body, present=False)
    log.info("exocorp %s destroyed", name)
    return None
