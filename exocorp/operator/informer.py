"""List + watch of one kind into the operator's cache, with a server-side label selector so the
API server sends only the objects this operator cares about.

The operator watches through these rather than kopf's handlers: kopf filters labels on the
client (every pod of the cluster would cross the wire and be parsed), and keeps a record per
object it has seen (~0.9 KB each, 25,000 objects at 1,000 exocorps) plus per-event work this
operator does not use. A list is also where deletions missed while the watch was down show up:
what the cache holds and a fresh list does not is dropped (a relist reports no DELETED events).

The loop is ``exocorp.k8s.informer.Informer`` (the gateway's too), so no error, in the stream or
in a handler, ends a watch: it starts over from a list. The operator's cache holds the bodies;
the informer keeps nothing of its own.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

from exocorp.k8s import Kube, Obj
from exocorp.k8s import informer as k8s_informer
from exocorp.k8s import resources as r
from exocorp.operator import metrics
from exocorp.operator.cache import ObjectCache

log = logging.getLogger(__name__)
OnChange = Callable[[str, Obj], None]
"""``on_change(event_type, body)``: ADDED, MODIFIED or DELETED, after the cache has it."""


def _keep_nothing(_: Obj) -> None:
    return None


class Informer:
    def __init__(self, kube: Kube, cache: ObjectCache, kind: str, resource: r.Resource,
                 on_change: OnChange, *, namespace: str | None = None,
                 label_selector: str | None = None, timeout_seconds: int = 300) -> None:
        self.cache = cache
        self.kind = kind
        self.resource = resource
        self.on_change = on_change
        self.lists = 0
        self._loop: k8s_informer.Informer[None] = k8s_informer.Informer(
            kube, resource, _keep_nothing, namespace=namespace, label_selector=label_selector,
            on_event=self._observe, on_list=self._sweep, on_activity=self._fresh,
            timeout_seconds=timeout_seconds)
        self.synced = self._loop.synced
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name=f"informer-{self.resource.plural}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def run(self) -> None:
        await self._loop.run()

    async def list(self) -> str | None:
        """Fill the cache from a list; drop what it no longer has. Returns the list's RV."""
        return await self._loop.list()

    def _sweep(self, items: Sequence[Obj], resource_version: str | None) -> None:
        gone = self.cache.sweep(self.kind, items, int(resource_version or 0))
        for body in gone:
            meta = body.get("metadata", {})
            log.info("%s %s/%s was deleted while the watch was down; dropped from the cache",
                     self.kind, meta.get("namespace", ""), meta.get("name"))
            self.on_change("DELETED", body)
        metrics.CACHE_SWEPT.inc(len(gone))
        self.lists += 1

    def _observe(self, event_type: str, obj: Obj) -> None:
        if not (obj.get("metadata") or {}).get("name"):
            return
        self.cache.observe(self.kind, event_type, obj)
        self.on_change(event_type, obj)

    def _fresh(self) -> None:
        """Bookmarks too: the watch is alive."""
        self.cache.last_event_at = time.time()
        metrics.LAST_WATCH_EVENT.set(self.cache.last_event_at)
