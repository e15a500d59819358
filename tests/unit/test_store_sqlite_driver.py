"""The SQLite driver adapter (exocorp/store/sqlite_driver.py): a statement is one round trip
into aiosqlite's worker thread, a committed connection goes back to the pool without one, and
nothing of a failed or unfinished transaction survives into the next checkout."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import exc, text

from exocorp.store import Database, open_database

pytestmark = pytest.mark.unit


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    # One pooled connection: every checkout gets the connection the previous one returned.
    database = open_database(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}",
                             pool_size=1, max_overflow=0)
    async with database.sessionmaker.begin() as s:
        await s.execute(text("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT UNIQUE)"))
    yield database
    await database.dispose()


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The calls into aiosqlite's worker thread, by function name."""
    calls: list[str] = []
    original = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(fn.__name__)
        return await original(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    return calls


async def bodies(db: Database) -> list[str]:
    async with db.reader.begin() as s:
        return list((await s.execute(text("SELECT body FROM notes ORDER BY id"))).scalars())


async def write(db: Database, *statements: str) -> None:
    """``statements`` in one writing transaction."""
    async with db.sessionmaker.begin() as s:
        for statement in statements:
            await s.execute(text(statement))


async def test_a_transaction_costs_one_trip_per_statement_and_one_for_its_commit(
        db: Database, trips: list[str]) -> None:
    async with db.sessionmaker.begin() as s:
        await s.execute(text("INSERT INTO notes (body) VALUES ('a'), ('b')"))
        rows = (await s.execute(text("SELECT id, body FROM notes ORDER BY id"))).all()
    # BEGIN IMMEDIATE with the INSERT, the SELECT, the COMMIT; the pool takes the connection
    # back without a rollback (nothing to roll back after the commit).
    assert trips == ["_run", "_run", "commit"]
    assert [tuple(row) for row in rows] == [(1, "a"), (2, "b")]


async def test_the_transaction_begins_with_its_first_statement(db: Database,
                                                              tmp_path: Path) -> None:
    """Its BEGIN goes out with the first statement: the reads after it see one snapshot."""
    other = open_database(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}")
    try:
        async with db.reader.begin() as reader:
            before = await reader.scalar(text("SELECT count(*) FROM notes"))
            async with other.sessionmaker.begin() as writer:
                await writer.execute(text("INSERT INTO notes (body) VALUES ('meanwhile')"))
            after = await reader.scalar(text("SELECT count(*) FROM notes"))
        assert (before, after) == (0, 0)
        assert await bodies(db) == ["meanwhile"]
    finally:
        await other.dispose()


async def test_a_transaction_without_statements_opens_none(db: Database,
                                                           trips: list[str]) -> None:
    async with db.engine.begin():
        pass
    assert trips == ["commit"]  # its BEGIN never went out
    async with db.engine.connect() as conn:
        await conn.execute(text("INSERT INTO notes (body) VALUES ('kept')"))
        await conn.commit()
    assert await bodies(db) == ["kept"]


async def test_what_a_statement_reports_is_kept(db: Database) -> None:
    async with db.sessionmaker.begin() as s:
        inserted = await s.execute(text("INSERT INTO notes (body) VALUES ('a')"))
        assert inserted.lastrowid == 1  # type: ignore[attr-defined]
        await s.execute(text("INSERT INTO notes (body) VALUES (:body)"),
                        [{"body": "b"}, {"body": "c"}, {"body": "d"}])  # executemany
        updated = await s.execute(text("UPDATE notes SET body = body || '!' WHERE id > 2"))
        assert updated.rowcount == 2  # type: ignore[attr-defined]
        returned = await s.execute(text("DELETE FROM notes WHERE id = 4 RETURNING body"))
        assert returned.scalars().all() == ["d!"]
        described = await s.execute(text("SELECT id AS n, body AS said FROM notes LIMIT 1"))
        assert list(described.keys()) == ["n", "said"]
    assert await bodies(db) == ["a", "b", "c!"]


async def test_an_error_inside_a_transaction_rolls_all_of_it_back(db: Database,
                                                                  trips: list[str]) -> None:
    with pytest.raises(exc.IntegrityError):  # the driver's error, as SQLAlchemy's
        await write(db, "INSERT INTO notes (body) VALUES ('lost')",
                    "INSERT INTO notes (body) VALUES ('lost')")
    assert trips[-1] == "rollback"
    assert await bodies(db) == []
    async with db.sessionmaker.begin() as s:  # the connection starts afresh
        await s.execute(text("INSERT INTO notes (body) VALUES ('kept')"))
    assert await bodies(db) == ["kept"]


async def test_a_transaction_left_open_is_rolled_back_when_its_connection_returns(
        db: Database) -> None:
    async with db.engine.connect() as conn:  # begins on first use; closed without a commit
        await conn.execute(text("INSERT INTO notes (body) VALUES ('never committed')"))
    async with db.engine.connect() as conn:
        raw = await conn.get_raw_connection()
        assert raw.driver_connection is not None
        assert not raw.driver_connection.in_transaction
    assert await bodies(db) == []
    async with db.sessionmaker.begin() as s:  # and BEGIN IMMEDIATE works on it again
        await s.execute(text("INSERT INTO notes (body) VALUES ('kept')"))
    assert await bodies(db) == ["kept"]


async def test_a_failed_commit_is_rolled_back_before_the_connection_is_reused(
        db: Database, trips: list[str]) -> None:
    """A commit that raises leaves the transaction open: the pool's rollback is sent."""
    async with db.sessionmaker.begin() as s:
        await s.execute(text(
            "CREATE TABLE children (parent INTEGER REFERENCES notes (id) "
            "DEFERRABLE INITIALLY DEFERRED)"))
    with pytest.raises(exc.IntegrityError):  # the deferred foreign key fails at COMMIT
        await write(db, "INSERT INTO notes (body) VALUES ('lost')",
                    "INSERT INTO children (parent) VALUES (99)")
    assert trips[-2:] == ["commit", "rollback"]
    assert await bodies(db) == []


async def test_a_reading_transaction_runs_on_the_loop_thread(db: Database,
                                                             trips: list[str]) -> None:
    """A reader's statements and its commit make no trip into the worker thread (WAL: a
    reader never waits for a writer); writers still go through the thread."""
    await write(db, "INSERT INTO notes (body) VALUES ('a')")
    trips.clear()
    async with db.reader.begin() as s:
        count = await s.scalar(text("SELECT count(*) FROM notes"))
        body = await s.scalar(text("SELECT body FROM notes WHERE id = 1"))
    assert (count, body) == (1, "a")
    assert trips == []
    await write(db, "INSERT INTO notes (body) VALUES ('b')")
    assert trips == ["_run", "commit"]


async def test_a_reader_never_shares_the_connection_with_a_cancelled_statement(
        db: Database) -> None:
    """A statement cancelled while it runs in the worker thread: the connection goes back to
    the pool, and the next reader on it (the only one) reads correctly once it is free."""
    slow = ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000000) "
            "SELECT count(*) FROM c")
    await write(db, "INSERT INTO notes (body) VALUES ('kept')")

    async def long_write() -> None:
        await write(db, "INSERT INTO notes (body) VALUES ('cancelled')", slow)

    task = asyncio.create_task(long_write())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await bodies(db) == ["kept"]
    await write(db, "INSERT INTO notes (body) VALUES ('after')")
    assert await bodies(db) == ["kept", "after"]
