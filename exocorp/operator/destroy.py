"""Destroy: everything an exocorp had (namespace with its workloads, volumes and routes;
revisions) is deleted before the finalizer lets the Exocorp object go."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from exocorp.k8s import Kube
from exocorp.k8s import resources as r
from exocorp.model import Condition, ConditionStatus, ConditionType, Phase
from exocorp.model.conditions import Reason, set_condition
from exocorp.operator import events, ownership, revisions
from exocorp.operator.settings import OperatorSettings


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
