"""Limits per account (its own row, else the ``default`` row) and platform-wide (the ``platform``
row): how many exocorps may exist, and how much CPU, memory and storage their runtimes may
request.

The exocorp count is checked here, when an exocorp is created, in the creating transaction; on
PostgreSQL the owner's user row and the platform row are locked first, so two concurrent
creations cannot both take the last place. The resource bounds are read here and checked by the
lifecycle (``exocorp.lifecycle.allowance``) against what the action would make the exocorp
request."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from exocorp.store import clock
from exocorp.store.errors import Conflict
from exocorp.store.schema import ExocorpRecord, ResourceLimits, User
from exocorp.store.statements import table_of

__all__ = [
    "DEFAULT_SCOPE",
    "PLATFORM_SCOPE",
    "ExocorpLimit",
    "LimitExceeded",
    "Limits",
    "account_and_platform_limits",
    "account_limit",
    "account_limits",
    "check_new_exocorp",
    "count_exocorps",
    "get_limit",
    "get_limits",
    "set_limits",
]

DEFAULT_SCOPE = "default"
PLATFORM_SCOPE = "platform"


class LimitExceeded(Conflict):
    """Creating one more exocorp would exceed a limit (HTTP 409 ``limit_exceeded``)."""


@dataclass(frozen=True)
class ExocorpLimit:
    max_exocorps: int | None
    """None: unlimited."""
    exocorps: int
    """Exocorps (not destroyed) counted against it now."""


async def get_limit(session: AsyncSession, scope: str) -> int | None:
    row = await session.get(ResourceLimits, scope)
    return row.max_exocorps if row is not None else None


class _Bounds(Protocol):
    """A ``resource_limits`` row: the ORM object or a Core row of its bound columns."""

    @property
    def max_exocorps(self) -> int | None: ...
    @property
    def max_cpu_millicores(self) -> int | None: ...
    @property
    def max_memory_bytes(self) -> int | None: ...
    @property
    def max_storage_bytes(self) -> int | None: ...


@dataclass(frozen=True)
class Limits:
    """The bounds of one scope; None: unlimited."""

    max_exocorps: int | None = None
    max_cpu_millicores: int | None = None
    max_memory_bytes: int | None = None
    max_storage_bytes: int | None = None

    @classmethod
    def of(cls, row: _Bounds | None) -> Limits:
        if row is None:
            return cls()
        return cls(row.max_exocorps, row.max_cpu_millicores, row.max_memory_bytes,
                   row.max_storage_bytes)


async def get_limits(session: AsyncSession, scope: str) -> Limits:
    return Limits.of(await session.get(ResourceLimits, scope))


async def set_limits(session: AsyncSession, scope: str, limits: Limits, *,
                     by: str | None = None, now: datetime | None = None) -> None:
    """Set every bound of ``scope`` (a user id, ``default`` or ``platform``) at once; a None
    bound lifts it."""
    values = (limits.max_exocorps, limits.max_cpu_millicores, limits.max_memory_bytes,
              limits.max_storage_bytes)
    if any(value is not None and value < 0 for value in values):
        raise ValueError("a limit cannot be negative")
    at = clock.resolve(now)
    row = await session.get(ResourceLimits, scope)
    if row is None:
        row = ResourceLimits(scope=scope)
        session.add(row)
    row.max_exocorps, row.max_cpu_millicores, row.max_memory_bytes, row.max_storage_bytes = values
    row.updated_at, row.updated_by = at, by
    await session.flush()


async def count_exocorps(session: AsyncSession, owner_user_id: str | None = None) -> int:
    """Exocorps not destroyed (of one owner, or all)."""
    query = select(func.count()).select_from(ExocorpRecord).where(
        ExocorpRecord.destroyed_at.is_(None))
    if owner_user_id is not None:
        query = query.where(ExocorpRecord.owner_user_id == owner_user_id)
    return int(await session.scalar(query) or 0)


async def account_limits(session: AsyncSession, user_id: str) -> Limits:
    """The bounds that apply to ``user_id``: its own row, else the default row (a whole row
    applies: an account's own row with an unlimited bound lifts the default's)."""
    return (await account_and_platform_limits(session, user_id))[0]


_LIMITS = table_of(ResourceLimits)
_ACTION_SCOPES = select(_LIMITS.c.scope, _LIMITS.c.max_exocorps, _LIMITS.c.max_cpu_millicores,
                        _LIMITS.c.max_memory_bytes, _LIMITS.c.max_storage_bytes).where(
    _LIMITS.c.scope.in_(bindparam("scopes", expanding=True)))
"""Built once, through Core: every lifecycle action reads it (about half an ORM load's CPU)."""


async def account_and_platform_limits(session: AsyncSession, user_id: str,
                                      ) -> tuple[Limits, Limits]:
    """(:func:`account_limits` of ``user_id``, the platform's bounds), in one query: what a
    lifecycle action is planned with."""
    result = await session.execute(_ACTION_SCOPES,
                                   {"scopes": (user_id, DEFAULT_SCOPE, PLATFORM_SCOPE)})
    rows = {row.scope: row for row in result}
    own = rows.get(user_id) or rows.get(DEFAULT_SCOPE)
    return Limits.of(own), Limits.of(rows.get(PLATFORM_SCOPE))


async def account_limit(session: AsyncSession, user_id: str) -> ExocorpLimit:
    """The limit that applies to ``user_id`` (its own, else the default) and its use."""
    limit = (await account_limits(session, user_id)).max_exocorps
    return ExocorpLimit(max_exocorps=limit, exocorps=await count_exocorps(session, user_id))


async def check_new_exocorp(session: AsyncSession, owner_user_id: str) -> None:
    """``LimitExceeded`` unless ``owner_user_id`` may own one more exocorp and the platform may
    run one more. Call it in the transaction that creates the exocorp."""
    await session.execute(select(User.id).where(User.id == owner_user_id).with_for_update())
    await session.execute(select(ResourceLimits.scope)
                          .where(ResourceLimits.scope == PLATFORM_SCOPE).with_for_update())
    mine = await account_limit(session, owner_user_id)
    if mine.max_exocorps is not None and mine.exocorps >= mine.max_exocorps:
        raise LimitExceeded(f"this account may own at most {mine.max_exocorps} exocorps; "
                            "destroy one, or ask a platform owner to raise the limit")
    platform = await get_limit(session, PLATFORM_SCOPE)
    if platform is not None and await count_exocorps(session) >= platform:
        raise LimitExceeded(f"the platform runs at most {platform} exocorps, all taken; ask a "
                            "platform owner")
