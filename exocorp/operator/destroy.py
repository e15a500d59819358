"""Destroy: everything an exocorp had (namespace with its workloads, volumes and routes;
revisions) is deleted before the finalizer lets the Exocorp object go."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from exocorp import names
from exocorp.k8s import Kube
from exocorp.k8s import resources as r
from exocorp.model import Condition, ConditionStatus, ConditionType, Phase
from exocorp.model.conditions import Reason, set_condition
from exocorp.operator import events, revisions
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
    ns = names.runtime_namespace(name)
    for rev in await revisions.list_revisions(kube, settings.namespace, name):
        await kube.delete(r.CONTROLLERREVISIONS, rev["metadata"]["name"], settings.namespace)
    if await kube.get_or_none(r.NAMESPACES, ns) is not None:
        await kube.delete(r.NAMESPACES, ns, propagation="Foreground")
        return False
    return True
