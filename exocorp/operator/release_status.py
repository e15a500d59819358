"""An ExocorpRelease's status: its channels as one line (kubectl's CHANNELS column; a printer
column shows only a list's first element) and the generation that line was written for.

Every shard watches every release, so each may write; a write happens only when the cached
status differs from the wanted one, so the shards agree and a steady state writes nothing."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from pydantic import ValidationError

from exocorp.k8s import ApiError, Kube
from exocorp.k8s import resources as r
from exocorp.model.release import ExocorpReleaseSpec, release_status
from exocorp.operator.cache import ObjectCache

log = logging.getLogger(__name__)
RETRY_SECONDS = 5.0


def wanted_status(body: dict[str, Any]) -> dict[str, Any] | None:
    """The status ``body`` should have, or None when it already has it (or is unreadable)."""
    try:
        spec = ExocorpReleaseSpec.model_validate(body.get("spec") or {})
    except ValidationError:
        return None  # the API server validated it; a newer schema is not ours to summarise
    generation = int((body.get("metadata") or {}).get("generation") or 0)
    wanted = release_status(spec, generation).to_wire()
    current = body.get("status") or {}
    return None if all(current.get(k) == v for k, v in wanted.items()) else wanted


class ReleaseStatusWriter:
    """Writes the status of releases whose spec changed, one at a time, in its own task."""

    def __init__(self, kube: Kube, cache: ObjectCache) -> None:
        self.kube = kube
        self.cache = cache
        self._pending: dict[str, None] = {}  # insertion-ordered set: repeated changes coalesce
        self._wake = asyncio.Event()

    def changed(self, body: dict[str, Any]) -> None:
        if wanted_status(body) is not None:
            self._pending[body["metadata"]["name"]] = None
            self._wake.set()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                name = next(iter(self._pending))
                del self._pending[name]
                if not await self._write(name):
                    self._pending[name] = None
                    await asyncio.sleep(RETRY_SECONDS)

    async def _write(self, name: str) -> bool:
        """Write ``name``'s status from the cache's latest body; False when worth a retry."""
        body = self.cache.get("ExocorpRelease", name)
        wanted = wanted_status(body) if body is not None else None
        if wanted is None:
            return True
        try:
            await self.kube.patch(r.RELEASES, name, {"status": wanted}, subresource="status")
        except ApiError as error:
            if error.status in (403, 404, 422):  # gone, or not ours to write: retrying won't help
                log.warning("release %s: status not written: %s", name, error)
                return True
            log.info("release %s: status write failed, will retry: %s", name, error)
            return False
        except OSError as error:
            log.info("release %s: status write failed, will retry: %r", name, error)
            return False
        return True
