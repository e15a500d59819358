"""What a relist cannot report. kopf lists a resource again when its watch cannot resume (410
Gone: the resourceVersion was compacted away, as after the operator was cut off from the API
server for minutes) and then reports only the objects the list contains: an object deleted while
the watch was down never gets a DELETED event, and the cache would keep it for ever (a runtime
object deleted by hand never recreated, a deleted pod holding the health gate).

So whenever kopf lists (its listing events have no type), the sweeper waits until the listing
is over, lists every watched kind itself and drops what the API server no longer has; the
exocorps those objects belonged to are queued again."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import aiohttp

from exocorp import names
from exocorp.k8s import ApiError, Kube
from exocorp.k8s import resources as r
from exocorp.operator import metrics
from exocorp.operator.cache import ObjectCache

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Watched:
    """One kind the operator watches, listed as kopf watches it."""

    kind: str
    resource: r.Resource
    label_selector: str | None = None


class Sweeper:
    def __init__(self, kube: Kube, cache: ObjectCache, watched: Sequence[Watched],
                 on_removed: Callable[[str], None], *, quiet: float = 1.0,
                 retry: float = 5.0) -> None:
        """``on_removed(exocorp)`` is called for the owner of every dropped object; a sweep
        starts once no listing event came for ``quiet`` seconds."""
        self.kube = kube
        self.cache = cache
        self.watched = tuple(watched)
        self.on_removed = on_removed
        self.quiet = quiet
        self.retry = retry
        self.sweeps = 0
        self._last_listing = 0.0
        self._task: asyncio.Task[None] | None = None

    def listing_seen(self) -> None:
        """kopf reported an object from a (re)list: sweep once the listing is over."""
        self._last_listing = asyncio.get_running_loop().time()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="cache-sweeper")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        swept_at = float("-inf")
        while self._last_listing >= swept_at:  # again if a listing came during the sweep
            wait = self._last_listing + self.quiet - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            swept_at = loop.time()
            try:
                await self.sweep()
            except (ApiError, aiohttp.ClientError, OSError, TimeoutError) as error:
                log.warning("cache sweep failed: %r; retrying in %.0fs", error, self.retry)
                await asyncio.sleep(self.retry)
                swept_at = float("-inf")

    async def sweep(self) -> int:
        """List every watched kind; drop from the cache what is gone. Returns the count."""
        removed = 0
        for watched in self.watched:
            listed = await self.kube.list_all(watched.resource,
                                              label_selector=watched.label_selector)
            list_rv = int(listed.get("metadata", {}).get("resourceVersion") or 0)
            for body in self.cache.sweep(watched.kind, listed.get("items", []), list_rv):
                removed += 1
                meta = body.get("metadata", {})
                log.info("%s %s/%s was deleted while the watch was down; dropped from the cache",
                         watched.kind, meta.get("namespace", ""), meta.get("name"))
                owner = (meta.get("labels") or {}).get(names.LABEL_EXOCORP)
                if owner:
                    self.on_removed(str(owner))
        self.sweeps += 1
        metrics.CACHE_SWEPT.inc(removed)
        return removed
