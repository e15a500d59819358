"""A user's fleet in the gateway's access cache (``AccessCache.fleet_once``): requests that miss
at once share one load, a change overtaking a load is never served after it, and a caller that
goes away does not cancel the others' load."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from exocorp.api_gateway.access_cache import AccessCache
from exocorp.store.registry import MemberExocorp

pytestmark = pytest.mark.unit


class Loads:
    """A fleet load that waits until released, and counts its calls."""

    def __init__(self) -> None:
        self.calls = 0
        self.release = asyncio.Event()
        self.fail = False

    async def __call__(self) -> list[MemberExocorp]:
        self.calls += 1
        version = self.calls
        await self.release.wait()
        if self.fail:
            raise RuntimeError("database gone")
        return [MemberExocorp(exocorp=f"row of load {version}", role="owner")]  # type: ignore[arg-type]


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 5, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def rows_of(result: list[MemberExocorp]) -> list[Any]:
    return [row.exocorp for row in result]


async def test_requests_that_miss_together_share_one_load() -> None:
    cache, load = AccessCache(5, Clock()), Loads()
    waiting = [asyncio.ensure_future(cache.fleet_once("ada", load)) for _ in range(50)]
    await asyncio.sleep(0)
    load.release.set()
    results = await asyncio.gather(*waiting)
    assert load.calls == 1
    assert all(rows_of(r) == ["row of load 1"] for r in results)
    assert rows_of(await cache.fleet_once("ada", load)) == ["row of load 1"]  # cached
    assert load.calls == 1


async def test_the_entry_expires() -> None:
    clock = Clock()
    cache, load = AccessCache(5, clock), Loads()
    load.release.set()
    await cache.fleet_once("ada", load)
    clock.now += timedelta(seconds=5)
    assert rows_of(await cache.fleet_once("ada", load)) == ["row of load 2"]


async def test_a_change_during_a_load_is_never_served_after_it() -> None:
    cache, load = AccessCache(5, Clock()), Loads()
    before = asyncio.ensure_future(cache.fleet_once("ada", load))
    await asyncio.sleep(0)
    cache.forget_exocorp("acme")  # e.g. this process created an exocorp meanwhile
    after = asyncio.ensure_future(cache.fleet_once("ada", load))
    await asyncio.sleep(0)
    load.release.set()
    assert rows_of(await before) == ["row of load 1"]  # asked before the change
    assert rows_of(await after) == ["row of load 2"]  # a load of its own, after it
    # The overtaken load was not kept; the later one was.
    assert rows_of(await cache.fleet_once("ada", load)) == ["row of load 2"]
    assert load.calls == 2


async def test_a_caller_that_goes_away_does_not_cancel_the_load() -> None:
    cache, load = AccessCache(5, Clock()), Loads()
    first = asyncio.ensure_future(cache.fleet_once("ada", load))
    second = asyncio.ensure_future(cache.fleet_once("ada", load))
    await asyncio.sleep(0)
    first.cancel()
    load.release.set()
    assert rows_of(await second) == ["row of load 1"]
    assert first.cancelled()
    assert load.calls == 1


async def test_a_failed_load_fails_its_waiters_and_the_next_request_tries_again() -> None:
    cache, load = AccessCache(5, Clock()), Loads()
    load.fail = True
    waiting = [asyncio.ensure_future(cache.fleet_once("ada", load)) for _ in range(3)]
    await asyncio.sleep(0)
    load.release.set()
    for outcome in await asyncio.gather(*waiting, return_exceptions=True):
        assert isinstance(outcome, RuntimeError)
    load.fail = False
    assert rows_of(await cache.fleet_once("ada", load)) == ["row of load 2"]


async def test_without_a_cache_every_request_loads() -> None:
    cache, load = AccessCache(0, Clock()), Loads()
    load.release.set()
    await cache.fleet_once("ada", load)
    await cache.fleet_once("ada", load)
    assert load.calls == 2
