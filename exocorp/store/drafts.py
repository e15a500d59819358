"""Drafts: an exocorp's editable configuration, saved with optimistic concurrency.

Every save names the version it was based on; a save based on an older version is refused with
``StaleVersion`` (carrying the current version) instead of silently overwriting someone's edit.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from exocorp.store import clock
from exocorp.store.columns import new_id
from exocorp.store.conflicts import conflicts_as
from exocorp.store.errors import Conflict, NotFound, StaleVersion
from exocorp.store.registry import get_exocorp
from exocorp.store.schema import Draft
from exocorp.store.statements import rowcount, table_of

__all__ = [
    "bind_draft",
    "create_draft",
    "exocorp_draft_config",
    "get_draft",
    "get_exocorp_draft",
    "save_draft",
]


async def create_draft(
    session: AsyncSession,
    *,
    config: dict[str, Any],
    exocorp_id: str | None = None,
    now: datetime | None = None,
) -> Draft:
    """A new draft at version 1, optionally bound to an exocorp (one draft per exocorp)."""
    at = clock.resolve(now)
    if exocorp_id is not None:
        await get_exocorp(session, exocorp_id)
    draft = Draft(
        id=new_id("drf"),
        exocorp_id=exocorp_id,
        config=config,
        version=1,
        created_at=at,
        updated_at=at,
    )
    async with conflicts_as(session, "the exocorp already has a draft", field="exocorp_id"):
        session.add(draft)
    return draft


async def get_draft(session: AsyncSession, draft_id: str) -> Draft:
    draft = await session.get(Draft, draft_id, populate_existing=True)
    if draft is None:
        raise NotFound(f"draft {draft_id} not found")
    return draft


async def get_exocorp_draft(session: AsyncSession, exocorp_id: str) -> Draft:
    result = await session.execute(
        select(Draft)
        .where(Draft.exocorp_id == exocorp_id)
        .execution_options(populate_existing=True)
    )
    draft = result.scalar_one_or_none()
    if draft is None:
        raise NotFound(f"exocorp {exocorp_id} has no draft")
    return draft


_CONFIG_OF_EXOCORP = select(table_of(Draft).c.config).where(
    table_of(Draft).c.exocorp_id == bindparam("exocorp_id"))


async def exocorp_draft_config(session: AsyncSession, exocorp_id: str) -> dict[str, Any] | None:
    """The configuration of the exocorp's draft, or None. Every lifecycle action plans with it:
    one column through Core, a statement built once (half the CPU of loading the ORM object,
    ``bench/action_profile.py``)."""
    config: dict[str, Any] | None = await session.scalar(_CONFIG_OF_EXOCORP,
                                                         {"exocorp_id": exocorp_id})
    return config


async def save_draft(
    session: AsyncSession,
    draft_id: str,
    *,
    config: dict[str, Any],
    expected_version: int,
    now: datetime | None = None,
) -> Draft:
    """Replace the draft's config if it is still at ``expected_version``; returns the new draft."""
    result = await session.execute(
        update(Draft)
        .where(Draft.id == draft_id, Draft.version == expected_version)
        .values(config=config, version=Draft.version + 1, updated_at=clock.resolve(now))
        .execution_options(synchronize_session=False)
    )
    current = await get_draft(session, draft_id)
    if rowcount(result) != 1:
        raise StaleVersion(
            f"draft {draft_id} is at version {current.version}, not {expected_version}",
            current_version=current.version,
        )
    return current


async def bind_draft(session: AsyncSession, draft_id: str, exocorp_id: str) -> Draft:
    """Attach an agent's free-standing draft to the exocorp made from it."""
    draft = await get_draft(session, draft_id)
    if draft.exocorp_id == exocorp_id:
        return draft
    if draft.exocorp_id is not None:
        raise Conflict("the draft already belongs to another exocorp", field="draft_id")
    await get_exocorp(session, exocorp_id)
    async with conflicts_as(session, "the exocorp already has a draft", field="exocorp_id"):
        draft.exocorp_id = exocorp_id
    return draft
