"""Destroy: everything an exocorp had (namespace with its workloads, volumes and routes;
revisions) is deleted before the finalizer lets the Exocorp object go."""

from __future__ import annotations

from typing import Any

from exocorp.k8s import Kube
from exocorp.k8s import resources as r
from exocorp.model import Phase
from exocorp.operator import events, ownership, revisions
from exocorp.operator.settings import OperatorSettings


async def tear_down(kube: Kube, settings: OperatorSettings, name: str,
                    body: dict[str, Any]) -> bool:
    """One step of the teardown; True once nothing of the exocorp is left. Every step is safe
    to repeat, so a crash at any point is harmless."""
    if (body.get("status") or {}).get("phase") != Phase.DESTROYING.value:
        await kube.patch(r.EXOCORPS, name, {"status": {"phase": Phase.DESTROYING.value}},
                         subresource="status")
        await events.post(kube, body, "Normal", "Destroying",
                          "deleting the runtime namespace, volumes, routes and revisions")
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
