"""Kubernetes Events on an Exocorp, so `kubectl describe exocorp` tells its story.

Posted through events.k8s.io/v1 with a microsecond ``eventTime`` and no second-precision
``lastTimestamp``: kubectl sorts by the latter when present, which scrambled the order of the
several events one reconcile pass posts within a second (``Provisioning -> Running`` listed
before ``Draft -> Provisioning``).
"""

from __future__ import annotations

import logging
import socket
import uuid
from datetime import UTC, datetime

from exocorp import names
from exocorp.k8s import ApiError, Kube
from exocorp.k8s import resources as r

log = logging.getLogger(__name__)
# events.k8s.io/v1 limits the note to 1 KiB (bytes, not characters).
NOTE_BYTES = 1024
RECONCILE = "Reconcile"
DESTROY = "Destroy"


def micro_time(now: datetime) -> str:
    """Kubernetes MicroTime: RFC 3339 with microseconds, in UTC."""
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_body(exocorp: dict[str, object], event_type: str, reason: str, message: str, *,
               action: str, now: datetime, instance: str) -> dict[str, object]:
    """The events.k8s.io/v1 Event about ``exocorp``."""
    meta = exocorp.get("metadata", {})
    assert isinstance(meta, dict)
    note = message.encode()[:NOTE_BYTES].decode(errors="ignore")
    return {
        "apiVersion": r.EVENTS_V1.api_version, "kind": "Event",
        # An explicit name: events.k8s.io/v1 refuses a generateName ending in "." (core/v1
        # accepted it). The time in hex first, as client-go's recorder names events: kubectl
        # describe sorts by the (unset) lastTimestamp, so the list order, by name, is the order.
        "metadata": {"name": f"{meta.get('name', 'exocorp')}."
                             f"{int(now.timestamp() * 1_000_000):x}{uuid.uuid4().hex[:6]}",
                     "namespace": names.EVENT_NAMESPACE},
        "eventTime": micro_time(now),
        "regarding": {"apiVersion": names.API_VERSION, "kind": names.EXOCORP_KIND,
                      "name": meta.get("name"), "uid": meta.get("uid"),
                      "resourceVersion": meta.get("resourceVersion")},
        "type": event_type, "reason": reason, "note": note, "action": action,
        "reportingController": names.MANAGER, "reportingInstance": instance,
    }


async def post(kube: Kube, exocorp: dict[str, object], event_type: str, reason: str,
               message: str, *, action: str = RECONCILE) -> None:
    body = event_body(exocorp, event_type, reason, message, action=action,
                      now=datetime.now(UTC), instance=socket.gethostname()[:128])
    try:
        await kube.create(r.EVENTS_V1, body, names.EVENT_NAMESPACE)
    except ApiError as err:  # an event is best effort; never fail a reconcile over it
        log.warning("could not post event %s on %s: %s", reason, body["regarding"], err)
