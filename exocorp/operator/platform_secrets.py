"""Provider credentials in the platform namespace, watched there and only there.

The operator reads Secrets in exactly one namespace (its own: where the gateway stores provider
credentials), so this is a namespaced list + watch of its own rather than a kopf handler: kopf,
running cluster-wide, would watch Secrets in every namespace, and the operator's RBAC does not
allow reading them anywhere else. Events land in the shared object cache (``Secret`` entries of
the platform namespace) and a change re-queues every exocorp bound to that Secret, so a rotation
rolls the runtimes that use it. The copies in exocorp namespaces are written, never read.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import aiohttp

from exocorp.k8s import ApiError, Kube
from exocorp.k8s import resources as r
from exocorp.operator.cache import ObjectCache

log = logging.getLogger(__name__)
KIND = "Secret"
_BACKOFF_START = 0.5
_BACKOFF_MAX = 30.0


class PlatformSecretWatch:
    """List + watch of the Secrets of ``namespace`` into ``cache``; ``on_change(name)`` for each
    Secret that appeared, changed or went away."""

    def __init__(self, kube: Kube, cache: ObjectCache, namespace: str,
                 on_change: Callable[[str], None], *, timeout_seconds: int = 300) -> None:
        self.kube = kube
        self.cache = cache
        self.namespace = namespace
        self.on_change = on_change
        self.timeout_seconds = timeout_seconds
        self.synced = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._known: set[str] = set()

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="platform-secret-watch")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def run(self) -> None:
        backoff = _BACKOFF_START
        resource_version: str | None = None
        while True:
            try:
                if resource_version is None:
                    resource_version = await self._list()
                async for event in self.kube.watch(r.SECRETS, self.namespace,
                                                   resource_version=resource_version,
                                                   timeout_seconds=self.timeout_seconds):
                    obj = event.get("object") or {}
                    rv = (obj.get("metadata") or {}).get("resourceVersion")
                    if event.get("type") in ("ADDED", "MODIFIED", "DELETED"):
                        self._observe(event["type"], obj)
                    if rv:
                        resource_version = rv
                backoff = _BACKOFF_START
            except ApiError as error:
                if error.gone:
                    resource_version = None  # relist
                    continue
                log.warning("platform Secret watch failed: %s; retrying in %.1fs", error.reason,
                            backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX)
            except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as error:
                log.warning("platform Secret watch connection lost: %s; retrying in %.1fs",
                            type(error).__name__, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX)

    async def _list(self) -> str | None:
        result = await self.kube.list_all(r.SECRETS, self.namespace)
        present = set()
        for obj in result.get("items", []):
            self._observe("ADDED", obj)
            present.add(obj["metadata"]["name"])
        for gone in self._known - present:  # deleted while the watch was down
            self._observe("DELETED", {"metadata": {"name": gone, "namespace": self.namespace}})
        self.synced.set()
        rv: str | None = result.get("metadata", {}).get("resourceVersion")
        return rv

    def _observe(self, event_type: str, obj: dict[str, object]) -> None:
        meta = obj.get("metadata")
        name = meta.get("name") if isinstance(meta, dict) else None
        if not isinstance(name, str):
            return
        self.cache.observe(KIND, event_type, obj)
        if event_type == "DELETED":
            self._known.discard(name)
        else:
            self._known.add(name)
        self.on_change(name)
