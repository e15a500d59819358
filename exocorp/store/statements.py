"""Dialect-aware statement helpers shared by the repositories."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Table, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import Insert

from exocorp.store.schema import Base


def insert_ignoring_conflicts(
    session: AsyncSession, model: type[Base] | Table, values: Mapping[str, Any],
    conflict_on: Sequence[str],
) -> Insert:
    """``INSERT ... ON CONFLICT (conflict_on) DO NOTHING`` for the session's dialect (into a
    mapped class, or a table: see :func:`table_of`).

    Unlike catching an error, a concurrent duplicate simply inserts nothing: on PostgreSQL the
    statement waits for the other transaction and then sees its committed row.
    """
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return (
            postgresql.insert(model)
            .values(**values)
            .on_conflict_do_nothing(index_elements=list(conflict_on))
        )
    if dialect == "sqlite":
        return (
            sqlite.insert(model)
            .values(**values)
            .on_conflict_do_nothing(index_elements=list(conflict_on))
        )
    raise NotImplementedError(f"unsupported dialect {dialect}")


def table_of(model: type[Base]) -> Table:
    """The table of ``model``, for Core statements: an INSERT/UPDATE/DELETE on the mapped class
    runs through the ORM's bulk statement machinery (~0.15 ms more per statement, measured with
    bench/action_profile.py's setup), which only matters when objects of the same session
    must follow the change."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


def rowcount(result: object) -> int:
    """Rows matched by an UPDATE or DELETE (typed access to ``CursorResult.rowcount``)."""
    assert isinstance(result, CursorResult)
    return int(result.rowcount)


async def advisory_xact_lock(session: AsyncSession, key: int) -> None:
    """Hold PostgreSQL's transaction-level advisory lock ``key`` until the session's transaction
    ends (other replicas asking for it wait). Nothing on SQLite: it serialises writers itself."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
