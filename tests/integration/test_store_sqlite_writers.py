"""SQLite's write transactions take turns in the event loop (exocorp.store.sqlite_writers): all
of many concurrent writers commit, never two at once, and a writer that fails, is cancelled or
waits too long never leaves the others stuck."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from exocorp.store import Database, audit
from exocorp.store.schema import ActorKind, AuditEvent, Outcome
from exocorp.store.sqlite_writers import SerialWriterSessions

pytestmark = pytest.mark.integration


async def _append(s: AsyncSession, actor: str) -> None:
    await audit.record_audit_event(s, actor_kind=ActorKind.USER, actor_id=actor,
                                   action="stop", outcome=Outcome.SUCCEEDED)


async def _events(db: Database) -> list[str | None]:
    async with db.reader() as s:
        return list(await s.scalars(select(AuditEvent.actor_id).order_by(AuditEvent.id)))


async def test_concurrent_writers_all_commit_one_at_a_time(sqlite_database: Database) -> None:
    inside = 0
    most = 0

    async def writer(n: int) -> None:
        nonlocal inside, most
        async with sqlite_database.sessionmaker.begin() as s:
            inside += 1
            most = max(most, inside)
            await _append(s, f"usr_{n}")
            await asyncio.sleep(0)  # let the others try to begin meanwhile
            inside -= 1

    await asyncio.gather(*(writer(n) for n in range(40)))
    assert most == 1
    assert sorted(map(str, await _events(sqlite_database))) == sorted(f"usr_{n}" for n in range(40))


async def test_a_failed_or_cancelled_writer_lets_the_next_one_in(
        sqlite_database: Database) -> None:
    async def failing() -> None:
        async with sqlite_database.sessionmaker.begin() as s:
            await _append(s, "usr_failed")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await failing()

    started = asyncio.Event()

    async def stuck() -> None:
        async with sqlite_database.sessionmaker.begin() as s:
            await _append(s, "usr_cancelled")
            started.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(stuck())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    async with asyncio.timeout(10):  # would wait for ever if either left the gate held
        async with sqlite_database.sessionmaker.begin() as s:
            await _append(s, "usr_next")
    assert await _events(sqlite_database) == ["usr_next"]  # the others rolled back


async def test_a_writer_waiting_past_the_timeout_goes_ahead_without_the_gate(
        sqlite_database: Database) -> None:
    sessions: async_sessionmaker[AsyncSession] = SerialWriterSessions(
        sqlite_database.engine, expire_on_commit=False, gate_timeout=0.05)
    # The outer transaction holds the gate but has not begun in SQLite (no statement yet), so
    # the inner one, once past its wait, commits on SQLite's own terms.
    async with sessions.begin() as outer:
        async with asyncio.timeout(10), sessions.begin() as inner:
            await _append(inner, "usr_inner")
        async with sqlite_database.reader() as s:
            assert await s.scalar(select(func.count()).select_from(AuditEvent)) == 1
        await _append(outer, "usr_outer")
    assert await _events(sqlite_database) == ["usr_inner", "usr_outer"]
