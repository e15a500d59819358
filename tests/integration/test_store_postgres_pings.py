"""Pooled PostgreSQL connections are pinged before use unless they were in use a moment ago
(exocorp.store.postgres_pings), and a dead one is replaced without an error."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import text

from exocorp.store import Database, open_database
from exocorp.store.postgres_pings import PING_BYPASS_SECONDS

pytestmark = pytest.mark.integration


@pytest.fixture
def postgres_url(_postgresql_empty_url: str) -> str:
    return _postgresql_empty_url


@pytest.fixture
async def postgres(postgres_url: str) -> Any:
    db = open_database(postgres_url, pool_size=1, max_overflow=0)
    try:
        yield db
    finally:
        await db.dispose()


def _count_pings(db: Database, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    dialect = db.engine.sync_engine.dialect
    ping = dialect.do_ping
    pings = [0]

    def counted(dbapi_connection: Any) -> bool:
        pings[0] += 1
        return ping(dbapi_connection)

    monkeypatch.setattr(dialect, "do_ping", counted)
    return pings


async def _backend_pid(db: Database) -> int:
    async with db.engine.connect() as conn:
        return int(await conn.scalar(text("SELECT pg_backend_pid()")))


async def test_a_connection_just_used_is_not_pinged_an_idle_one_is(
        postgres: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    pings = _count_pings(postgres, monkeypatch)
    first = await _backend_pid(postgres)  # a new connection: alive, no ping
    for _ in range(5):
        assert await _backend_pid(postgres) == first
    assert pings == [0]
    await asyncio.sleep(PING_BYPASS_SECONDS + 0.1)
    assert await _backend_pid(postgres) == first
    assert pings == [1]


async def test_a_connection_that_died_while_idle_is_replaced(
        postgres: Database, postgres_url: str) -> None:
    dead = await _backend_pid(postgres)
    killer = open_database(postgres_url)
    try:
        async with killer.engine.connect() as conn:
            assert await conn.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": dead})
    finally:
        await killer.dispose()
    await asyncio.sleep(PING_BYPASS_SECONDS + 0.1)
    assert await _backend_pid(postgres) != dead  # no error: the ping found it dead
