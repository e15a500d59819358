"""Attempt counters in the database, so that every gateway replica counts against the same limit.

An attempt is counted *before* the work it guards (a password hash, a signup): the counter is
raised with one atomic ``UPDATE ... SET attempts = attempts + 1`` whose row lock serialises
concurrent requests on PostgreSQL (and SQLite's single writer does the same), so N concurrent
attempts against a limit of L let exactly L through, never more. Windows are fixed: the first
attempt after a window ended starts a new one.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from sqlalchemy import case, delete, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from exocorp.store import clock
from exocorp.store.columns import UTCDateTime
from exocorp.store.schema import ThrottleCounter
from exocorp.store.statements import insert_ignoring_conflicts, rowcount

__all__ = ["attempts", "clear", "purge", "refund", "take"]


async def take(
    session: AsyncSession, key: str, *, limit: int, window: timedelta,
    now: datetime | None = None,
) -> int | None:
    """Count one attempt under ``key``: None when it is within ``limit`` for the current window,
    else the seconds until the window ends (the attempt is refused, and still counted)."""
    at = clock.resolve(now)
    await session.execute(insert_ignoring_conflicts(
        session, ThrottleCounter, {"key": key, "window_start": at, "attempts": 0}, ["key"]))
    expired = ThrottleCounter.window_start <= literal(at - window, UTCDateTime())
    result = await session.execute(
        update(ThrottleCounter)
        .where(ThrottleCounter.key == key)
        .values(
            attempts=case((expired, 1), else_=ThrottleCounter.attempts + 1),
            window_start=case((expired, literal(at, UTCDateTime())),
                              else_=ThrottleCounter.window_start),
        )
        .returning(ThrottleCounter.attempts, ThrottleCounter.window_start)
        .execution_options(synchronize_session=False)
    )
    attempts, started = result.one()
    if attempts <= limit:
        return None
    return max(1, math.ceil((started + window - at).total_seconds()))


async def refund(session: AsyncSession, key: str) -> None:
    """Give one attempt back (it turned out to be legitimate, e.g. a successful login)."""
    await session.execute(
        update(ThrottleCounter)
        .where(ThrottleCounter.key == key, ThrottleCounter.attempts > 0)
        .values(attempts=ThrottleCounter.attempts - 1)
        .execution_options(synchronize_session=False)
    )


async def clear(session: AsyncSession, key: str) -> None:
    await session.execute(delete(ThrottleCounter).where(ThrottleCounter.key == key))


async def purge(session: AsyncSession, *, older_than: timedelta,
                now: datetime | None = None) -> int:
    """Forget counters whose window started before ``older_than`` ago (they count nothing)."""
    cutoff = clock.resolve(now) - older_than
    result = await session.execute(
        delete(ThrottleCounter).where(ThrottleCounter.window_start < cutoff)
    )
    return rowcount(result)


async def attempts(session: AsyncSession, key: str) -> int:
    """Attempts counted under ``key`` in its current window (0 when none)."""
    found = await session.scalar(select(ThrottleCounter.attempts).where(ThrottleCounter.key == key))
    return int(found or 0)
