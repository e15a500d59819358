"""Unique-key collisions as a typed ``Conflict`` instead of a raw driver error."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from exocorp.store.errors import Conflict


@asynccontextmanager
async def conflicts_as(
    session: AsyncSession, message: str, *, field: str | None = None
) -> AsyncIterator[None]:
    """Run the block in a savepoint; a constraint violation becomes ``Conflict(message)``.

    The savepoint keeps the caller's transaction usable (PostgreSQL aborts a whole transaction
    on an error otherwise). The driver error is not chained: its text carries row values.
    """
    try:
        async with session.begin_nested():
            yield
    except IntegrityError:
        raise Conflict(message, field=field) from None
