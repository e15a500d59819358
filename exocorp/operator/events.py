"""Kubernetes Events on an Exocorp, so `kubectl describe exocorp` tells its story."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from exocorp import names
from exocorp.k8s import ApiError, Kube
from exocorp.k8s import resources as r

log = logging.getLogger(__name__)


async def post(kube: Kube, exocorp: dict[str, object], event_type: str, reason: str,
               message: str) -> None:
    meta = exocorp.get("metadata", {})
    assert isinstance(meta, dict)
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = {
        "metadata": {"generateName": f"{meta.get('name', 'exocorp')}.",
                     "namespace": names.EVENT_NAMESPACE},
        "involvedObject": {"apiVersion": names.API_VERSION, "kind": names.EXOCORP_KIND,
                           "name": meta.get("name"), "uid": meta.get("uid"),
                           "resourceVersion": meta.get("resourceVersion")},
        "type": event_type, "reason": reason, "message": message[:1024],
        "source": {"component": names.MANAGER},
        "reportingComponent": names.MANAGER, "reportingInstance": names.MANAGER,
        "firstTimestamp": now, "lastTimestamp": now, "count": 1,
    }
    try:
        await kube.create(r.EVENTS, body, names.EVENT_NAMESPACE)
    except ApiError as err:  # an event is best effort; never fail a reconcile over it
        log.warning("could not post event %s on %s: %s", reason, meta.get("name"), err)
