"""The gate that holds our own work queue while kopf's peering (cluster-wide; its objects are in
:mod:`exocorp.k8s.peering`) has this replica paused, so only one operator replica acts at a time."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from exocorp.k8s import ApiError, Kube
from exocorp.k8s import resources as r
from exocorp.operator.workqueue import WorkQueue

log = logging.getLogger(__name__)


def own_identity() -> str:
    """This replica's peer id, given to kopf so both sides agree: the pod name when set (as
    kopf does), else host and process; unique per start."""
    return os.environ.get("POD_ID") or \
        f"{socket.gethostname()}/{os.getpid()}/{secrets.token_hex(4)}"


def paused_by_peers(status: Mapping[str, Any], identity: str, priority: int,
                    now: datetime) -> bool:
    """kopf's rule, by which it pauses its watches: another live peer (last seen within its
    lifetime) with a higher priority, or the same one, pauses this replica."""
    for peer, info in status.items():
        if peer == identity or not isinstance(info, Mapping):
            continue
        try:
            seen = datetime.fromisoformat(str(info["lastseen"]))
            lifetime = timedelta(seconds=int(info.get("lifetime", 60)))
            peer_priority = int(info.get("priority", 0))
        except (KeyError, ValueError, TypeError):
            continue
        if seen.tzinfo is None:
            seen = seen.replace(tzinfo=UTC)
        if seen + lifetime > now and peer_priority >= priority:
            return True
    return False


class PeeringGate:
    """kopf pauses its watches when another peer takes over, but the work queue re-queues every
    exocorp after each pass on its own; this gate closes the queue while the peering object says
    this replica is paused, so a standby never reconciles."""

    def __init__(self, kube: Kube, name: str, identity: str, priority: int, queue: WorkQueue,
                 *, interval: float = 2.0) -> None:
        self.kube = kube
        self.name = name
        self.identity = identity
        self.priority = priority
        self.queue = queue
        self.interval = interval

    async def check(self) -> None:
        body = await self.kube.get_or_none(r.CLUSTER_PEERINGS, self.name) or {}
        paused = paused_by_peers(body.get("status") or {}, self.identity, self.priority,
                                 datetime.now(UTC))
        if paused and self.queue.open:
            log.info("another peer is active: reconciling paused")
            self.queue.pause()
        elif not paused and not self.queue.open:
            log.info("this replica is the active peer: reconciling resumed")
            self.queue.resume()

    async def run(self) -> None:
        while True:
            try:
                await self.check()
            except (ApiError, OSError, TimeoutError) as err:  # keep the last decision
                log.warning("peering check failed: %r", err)
            await asyncio.sleep(self.interval)
