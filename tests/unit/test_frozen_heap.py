"""A watch cache's objects are kept out of full garbage collections (exocorp.k8s.frozen_heap),
and freezing them leaks nothing: a replaced cache entry is freed by reference counting."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Iterator
from typing import Any

import pytest

from exocorp.api_gateway.watch_cache import WatchCache
from exocorp.k8s.frozen_heap import keep_frozen
from exocorp.testing import samples

pytestmark = pytest.mark.unit


@pytest.fixture
def thawed() -> Iterator[None]:
    """Whatever a test freezes goes back to the collector afterwards."""
    gc.unfreeze()
    yield
    gc.unfreeze()


def _exocorp(name: str, rv: int) -> dict[str, Any]:
    body = samples.exocorp(name, "usr_1")
    body["metadata"].update({"resourceVersion": str(rv), "generation": 1})
    return body


@pytest.mark.usefixtures("thawed")
async def test_the_heap_is_frozen_once_the_caches_are_loaded_and_again_later() -> None:
    loaded = asyncio.Event()
    freezer = asyncio.create_task(keep_frozen(loaded.wait, every=0.05))
    await asyncio.sleep(0.05)
    assert gc.get_freeze_count() == 0  # not before the first list
    loaded.set()
    await asyncio.sleep(0.02)
    first = gc.get_freeze_count()
    assert first > 0
    kept = [object() for _ in range(100)] + [[] for _ in range(1000)]  # noqa: F841 (new objects)
    await asyncio.sleep(0.1)
    assert gc.get_freeze_count() >= first + 1000  # the refreeze took the new ones in
    freezer.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await freezer


def test_a_replaced_cache_entry_leaves_no_cyclic_garbage() -> None:
    cache = WatchCache(None, platform_namespace="exocorp-system")  # type: ignore[arg-type]
    gc.disable()
    try:
        gc.collect()
        for i in range(20):
            cache.exocorps.observe(_exocorp(f"corp-{i}", 1))
        for i in range(20):
            cache.exocorps.observe(_exocorp(f"corp-{i}", 2))
        assert [e.model.metadata.resource_version for e in cache.exocorps.values()] == ["2"] * 20
        assert gc.collect() == 0  # the first versions went with their last reference
    finally:
        gc.enable()
