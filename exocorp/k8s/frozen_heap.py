"""A process that holds a watch cache keeps it out of the garbage collector's full passes.

Most of the objects in a gateway are its watch cache: with 10,000 exocorps, about 900,000
objects the cyclic garbage collector tracks. CPython's full (generation 2) collection walks every
one of them, and the process serves nothing meanwhile. On this machine that is 480 ms a pass,
the 1.1 s p99 of ``my-companies`` at 10,000 exocorps (``uv run python bench/gc_pause.py``). The
collector starts one whenever the survivors since the last one reach a quarter of the old ones,
so every few thousand writes a fleet pays it again.

``gc.freeze()`` moves every object alive now into a permanent generation that no collection
walks; it is what the collector's documentation suggests for a heap built once at start.
:func:`keep_frozen` freezes once the caches are loaded, then again every
:data:`REFREEZE_SECONDS`, after collecting the garbage of what changed since (a short pass: only
the objects created since the last freeze are walked). Cached objects replaced later are freed
by reference counting as before: they hold no reference cycles (``bench/gc_pause.py`` replaces
every one and finds no cyclic garbage). What could leak is a reference cycle alive at a freeze
and dropped after it (an in-flight request's state); the collection just before each freeze
bounds that to what is in flight at that moment.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Final

__all__ = ["REFREEZE_SECONDS", "freeze_now", "keep_frozen"]

log = logging.getLogger(__name__)

REFREEZE_SECONDS: Final = 600.0


def freeze_now() -> tuple[int, float]:
    """Collect the garbage among the unfrozen objects, then freeze the survivors; (objects
    frozen in all, seconds the collection took)."""
    started = time.perf_counter()
    gc.collect()
    took = time.perf_counter() - started
    gc.freeze()
    return gc.get_freeze_count(), took


async def keep_frozen(loaded: Callable[[], Awaitable[None]],
                      every: float = REFREEZE_SECONDS) -> None:
    """Run until cancelled: wait for ``loaded`` (the caches' first full list), freeze, and
    freeze again every ``every`` seconds."""
    await loaded()
    while True:
        frozen, took = freeze_now()
        log.debug("froze the heap: %d objects kept out of full collections (the collection "
                  "before took %.3f s)", frozen, took)
        await asyncio.sleep(every)
