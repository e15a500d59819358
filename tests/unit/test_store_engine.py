"""How the store sets SQLite up (exocorp/store/engine.py): transactions that only read take no
write lock. (The store's behaviour on both databases is in tests/integration/test_store_*.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from exocorp.store import engine, open_database

pytestmark = pytest.mark.unit


async def test_a_reader_reads_its_snapshot_while_a_writer_holds_the_lock(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "SQLITE_BUSY_TIMEOUT_MS", 0)  # waiting would fail at once
    db = open_database(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}")
    try:
        async with db.sessionmaker.begin() as s:
            await s.execute(text("CREATE TABLE notes (body TEXT)"))
            await s.execute(text("INSERT INTO notes VALUES ('kept')"))
        async with db.sessionmaker.begin() as writer:
            await writer.execute(text("INSERT INTO notes VALUES ('not yet committed')"))
            async with db.reader.begin() as reader:
                rows = (await reader.execute(text("SELECT body FROM notes"))).scalars().all()
            assert rows == ["kept"]
        async with db.reader.begin() as reader:
            count = await reader.scalar(text("SELECT count(*) FROM notes"))
        assert count == 2
    finally:
        await db.dispose()


async def test_writers_still_queue_for_the_lock(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A writing transaction takes the lock at BEGIN (no deferred read-then-write failures):
    with no busy timeout, a second writer is refused at once, before it reads anything."""
    monkeypatch.setattr(engine, "SQLITE_BUSY_TIMEOUT_MS", 0)
    db = open_database(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}")
    try:
        async with db.sessionmaker.begin() as s:
            await s.execute(text("CREATE TABLE notes (body TEXT)"))
        async with db.sessionmaker.begin() as writer:
            await writer.execute(text("INSERT INTO notes VALUES ('first')"))
            with pytest.raises(Exception, match="database is locked"):
                async with db.sessionmaker.begin() as second:
                    await second.execute(text("SELECT 1"))
    finally:
        await db.dispose()
