"""On PostgreSQL, ``Database.reader`` runs each statement as a transaction of its own (no
BEGIN or COMMIT round trips for an action's planning reads), and the pooled connection it used
is transactional again for the next writer."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import text

from exocorp.store import open_database

pytestmark = pytest.mark.integration


@pytest.fixture
async def postgres(_postgresql_empty_url: str) -> Any:
    db = open_database(_postgresql_empty_url, pool_size=1, max_overflow=0)
    try:
        yield db
    finally:
        await db.dispose()


async def _transaction_starts(session: Any) -> tuple[Any, Any]:
    """now() is when the transaction started: equal twice within one transaction."""
    first = await session.scalar(text("SELECT now()"))
    await asyncio.sleep(0.01)
    return first, await session.scalar(text("SELECT now()"))


async def test_reader_statements_are_not_wrapped_in_a_transaction(postgres: Any) -> None:
    async with postgres.reader.begin() as s:
        first, second = await _transaction_starts(s)
    assert first != second
    # The same pooled connection (the only one) is transactional again for a writer.
    async with postgres.sessionmaker.begin() as s:
        first, second = await _transaction_starts(s)
        assert first == second
        await s.execute(text("CREATE TABLE notes (body text)"))
    async with postgres.sessionmaker() as s:
        await s.execute(text("INSERT INTO notes VALUES ('rolled back')"))
        await s.rollback()
    async with postgres.reader.begin() as s:
        assert await s.scalar(text("SELECT count(*) FROM notes")) == 0
