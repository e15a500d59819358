"""A bound on concurrent password hashes.

Each argon2id hash holds its memory cost (64 MiB with the default parameters) for its duration;
unbounded, a dozen concurrent logins exhaust a 512 MiB replica. The gate admits as many hashes as
half the container's memory limit holds, lets a short queue wait for a slot (a waiting request
holds no hash memory), and refuses the rest at once (503 with Retry-After), so a flood costs the
attacker requests, not the replica memory.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

__all__ = ["DEFAULT_SLOTS", "HashBusy", "HashGate", "hash_slots", "memory_limit_bytes"]

DEFAULT_SLOTS = 4
"""Slots when the memory limit is unknown (no cgroup limit, no setting)."""
_CGROUP_FILES = (Path("/sys/fs/cgroup/memory.max"),
                 Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"))
_UNLIMITED = 1 << 60


class HashBusy(Exception):  # noqa: N818 (a condition, not a failure)
    """Every hash slot is taken."""


def hash_slots(*, memory_limit_bytes: int, hash_memory_bytes: int) -> int:
    """Concurrent hashes that fit in half the memory limit (at least one)."""
    return max(1, (memory_limit_bytes // 2) // max(1, hash_memory_bytes))


def memory_limit_bytes() -> int | None:
    """This container's memory limit from its cgroup, or None when there is none."""
    for path in _CGROUP_FILES:
        try:
            text = path.read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < _UNLIMITED:
            return int(text)
        return None
    return None


class HashGate:
    """``slots`` hashes at once; up to ``queue`` more requests wait for a slot (waiting holds
    no hash memory); beyond that ``HashBusy`` at once."""

    def __init__(self, slots: int, queue: int | None = None) -> None:
        if slots < 1:
            raise ValueError("at least one hash slot is needed")
        self.slots = slots
        self.queue = 4 * slots if queue is None else queue
        self._free = asyncio.Semaphore(slots)
        self._waiting = 0

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold a slot for one hash; ``HashBusy`` when none is free and the queue is full."""
        if self._free.locked():
            if self._waiting >= self.queue:
                raise HashBusy
            self._waiting += 1
            try:
                await self._free.acquire()
            finally:
                self._waiting -= 1
        else:
            await self._free.acquire()
        try:
            yield
        finally:
            self._free.release()
