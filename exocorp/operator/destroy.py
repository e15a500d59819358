"""Destroy: everything an exocorp had (namespace with its workloads, volumes and routes;
revisions) is deleted before the finalizer lets the Exocorp object go."""

from __future__ import annotations

from typing import Any

from exocorp import names
from exocorp.k8s import Kube
from exocorp.k8s import resources as r
from exocorp.model import Phase
from exocorp.operator import events, revisions
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
    ns = names.runtime_namespace(name)
    for rev in await revisions.list_revisions(kube, settings.namespace, name):
        await kube.delete(r.CONTROLLERREVISIONS, rev["metadata"]["name"], settings.namespace)
    if await kube.get_or_none(r.NAMESPACES, ns) is not None:
        await kube.delete(r.NAMESPACES, ns, propagation="Foreground")
        return False
    return True
