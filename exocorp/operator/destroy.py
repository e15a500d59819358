"""Destroy: everything an exocorp had (namespace with its workloads, volumes and routes;
revisions) is deleted before the finalizer lets the Exocorp object go. The finalizer is set
before anything exists and removed once nothing is left."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from exocorp import names
from exocorp.k8s import Kube, Obj
from exocorp.k8s import resources as r
from exocorp.model import Condition, ConditionStatus, ConditionType, Phase
from exocorp.model.conditions import Reason, set_condition
from exocorp.operator import events, ownership, revisions
from exocorp.operator.cache import ObjectCache
from exocorp.operator.settings import OperatorSettings

log = logging.getLogger(__name__)


async def tear_down(kube: Kube, settings: OperatorSettings, name: str,
                    body: dict[str, Any]) -> bool:
    """One step of the teardown; True once nothing of the exocorp is left. Every step is safe
    to repeat, so a crash at any point is harmless."""
    status = body.get("status") or {}
    if status.get("phase") != Phase.DESTROYING.value:
        # Not Ready any more: the READY column and the API say it no longer serves.
        conditions = set_condition(
            [Condition.model_validate(c) for c in status.get("conditions") or []],
            ConditionType.READY,
            ConditionStatus.FALSE, reason=Reason.DESTROYING, message="being destroyed",
            now=datetime.now(UTC))
        await kube.patch(r.EXOCORPS, name, {"status": {
            "phase": Phase.DESTROYING.value,
            "conditions": [c.to_wire() for c in conditions]}}, subresource="status")
        await events.post(kube, body, "Normal", "Destroying",
                          "deleting the runtime namespace, volumes, routes and revisions",
                          action=events.DESTROY)
    for rev in await revisions.list_revisions(kube, settings.namespace, name):
        await kube.delete(r.CONTROLLERREVISIONS, rev["metadata"]["name"], settings.namespace)
    ns, ours = await ownership.namespace_to_delete(kube, body)
    if ours:
        await kube.delete(r.NAMESPACES, ns, propagation="Foreground")
        return False
    if ours is False:  # a namespace of the same name that is someone else's: never deleted
        await events.post(kube, body, "Warning", ownership.NAMESPACE_NOT_OWNED,
                          f"{ownership.not_owned_message(ns)}; left in place")
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
