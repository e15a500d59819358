"""Attempt counters on SQLite and PostgreSQL: concurrent attempts let exactly the limit through."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from exocorp.store import Database, throttle
from tests.plugins.database import FakeClock

pytestmark = pytest.mark.integration
WINDOW = timedelta(minutes=15)


async def test_concurrent_attempts_pass_exactly_the_limit(database: Database,
                                                          clock: FakeClock) -> None:
    async def attempt() -> int | None:
        async with database.sessionmaker.begin() as s:
            return await throttle.take(s, "login:account:ada@example.com", limit=5,
                                       window=WINDOW, now=clock())

    waits = await asyncio.gather(*(attempt() for _ in range(30)))
    assert waits.count(None) == 5
    assert all(wait is not None and 0 < wait <= 15 * 60 for wait in waits if wait is not None)


async def test_a_window_ends_and_refunds_and_clears_give_attempts_back(
        database: Database, clock: FakeClock) -> None:
    key = "login:client:203.0.113.7"
    async with database.sessionmaker.begin() as s:
        assert [await throttle.take(s, key, limit=2, window=WINDOW, now=clock())
                for _ in range(2)] == [None, None]
        assert await throttle.take(s, key, limit=2, window=WINDOW, now=clock()) == 900
        await throttle.refund(s, key)
        await throttle.refund(s, key)
        assert await throttle.take(s, key, limit=2, window=WINDOW, now=clock()) is None
        assert await throttle.attempts(s, key) == 2
        await throttle.clear(s, key)
        assert await throttle.attempts(s, key) == 0
        for _ in range(3):
            await throttle.take(s, key, limit=2, window=WINDOW, now=clock())
    clock.advance(WINDOW)
    async with database.sessionmaker.begin() as s:
        assert await throttle.take(s, key, limit=2, window=WINDOW, now=clock()) is None
        assert await throttle.purge(s, older_than=WINDOW, now=clock()) == 0
    clock.advance(WINDOW * 2)
    async with database.sessionmaker.begin() as s:
        assert await throttle.purge(s, older_than=WINDOW, now=clock()) == 1
