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
from collections.abc import Callable

from exocorp.k8s import Kube, Obj
from exocorp.k8s import resources as r
from exocorp.k8s.informer import Informer
from exocorp.operator.cache import ObjectCache

KIND = "Secret"


def _name(obj: Obj) -> str | None:
    name = (obj.get("metadata") or {}).get("name")
    return name if isinstance(name, str) else None


class PlatformSecretWatch:
    """List + watch of the Secrets of ``namespace`` into ``cache``; ``on_change(name)`` for each
    Secret that appeared, changed or went away. Built on ``exocorp.k8s.informer``, so that no
    error (the stream's, the cache's or ``on_change``'s) ends it: it starts over from a list."""

    def __init__(self, kube: Kube, cache: ObjectCache, namespace: str,
                 on_change: Callable[[str], None], *, timeout_seconds: int = 300) -> None:
        self.cache = cache
        self.namespace = namespace
        self.on_change = on_change
        # The informer keeps names only: the operator's cache holds the bodies.
        self.informer: Informer[str] = Informer(kube, r.SECRETS, _name, namespace=namespace,
                                                on_event=self._observe,
                                                timeout_seconds=timeout_seconds)
        self.synced = self.informer.synced
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="platform-secret-watch")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def run(self) -> None:
        await self.informer.run()

    def _observe(self, event_type: str, obj: Obj) -> None:
        name = _name(obj)
        if name is None:
            return
        self.cache.observe(KIND, event_type, obj)
        self.on_change(name)
