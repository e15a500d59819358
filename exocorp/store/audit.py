"""The audit trail: append and query. There is deliberately no update or delete here, and the
database refuses both (triggers installed by the initial migration).

Record a refused or failed action in its own transaction: an event written inside the
transaction of an action that then rolls back would vanish with it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from exocorp.store import clock
from exocorp.store.pages import Page, clamp_limit, page_of
from exocorp.store.schema import ActorKind, AuditEvent, Outcome
from exocorp.store.statements import advisory_xact_lock

__all__ = ["query_audit_events", "record_audit_event", "record_audit_event_once"]

_MAX_TEXT = 4000


def _clip(text: str | None) -> str | None:
    return text[:_MAX_TEXT] if text is not None else None


async def record_audit_event(
    session: AsyncSession,
    *,
    actor_kind: ActorKind,
    actor_id: str | None,
    action: str,
    outcome: Outcome,
    exocorp_id: str | None = None,
    reason: str | None = None,
    error: str | None = None,
    request_id: str | None = None,
    details: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> AuditEvent:
    """Append one event. ``error`` and ``details`` must already be free of secret values."""
    event = AuditEvent(
        created_at=clock.resolve(now),
        actor_kind=actor_kind,
        actor_id=actor_id,
        action=action,
        exocorp_id=exocorp_id,
        reason=_clip(reason),
        outcome=outcome,
        error=_clip(error),
        request_id=request_id,
        details=details,
    )
    session.add(event)
    await session.flush()
    return event


async def record_audit_event_once(
    session: AsyncSession,
    *,
    lock: int,
    exocorp_id: str,
    request_id: str,
    actor_kind: ActorKind,
    actor_id: str | None,
    action: str,
    outcome: Outcome,
    reason: str | None = None,
    details: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> AuditEvent | None:
    """Append the event unless the trail holds one of this exocorp with this request id (None
    then). Writers that may race to record the same event (gateway replicas) pass the same
    ``lock``: the check and the write hold it as an advisory lock until the transaction ends."""
    await advisory_xact_lock(session, lock)
    seen = await session.scalar(select(AuditEvent.id).where(
        AuditEvent.exocorp_id == exocorp_id, AuditEvent.request_id == request_id).limit(1))
    if seen is not None:
        return None
    return await record_audit_event(
        session, actor_kind=actor_kind, actor_id=actor_id, action=action, outcome=outcome,
        exocorp_id=exocorp_id, reason=reason, request_id=request_id, details=details, now=now)


async def query_audit_events(
    session: AsyncSession,
    *,
    actor_id: str | None = None,
    actor_kind: ActorKind | None = None,
    exocorp_id: str | None = None,
    action: str | None = None,
    outcome: Outcome | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: int | None = None,
    limit: int = 50,
    newest_first: bool = True,
) -> Page[AuditEvent]:
    """Events matching every given filter; ``since`` inclusive, ``until`` exclusive.

    Keyset pagination by id: pass the page's ``next_cursor`` back as ``cursor``. Events appended
    meanwhile never shift or repeat rows between pages.
    """
    limit = clamp_limit(limit)
    order = AuditEvent.id.desc() if newest_first else AuditEvent.id.asc()
    query = select(AuditEvent).order_by(order).limit(limit + 1)
    if actor_id is not None:
        query = query.where(AuditEvent.actor_id == actor_id)
    if actor_kind is not None:
        query = query.where(AuditEvent.actor_kind == actor_kind)
    if exocorp_id is not None:
        query = query.where(AuditEvent.exocorp_id == exocorp_id)
    if action is not None:
        query = query.where(AuditEvent.action == action)
    if outcome is not None:
        query = query.where(AuditEvent.outcome == outcome)
    if since is not None:
        query = query.where(AuditEvent.created_at >= since)
    if until is not None:
        query = query.where(AuditEvent.created_at < until)
    if cursor is not None:
        query = query.where(AuditEvent.id < cursor if newest_first else AuditEvent.id > cursor)
    rows = (await session.execute(query)).scalars().all()
    return page_of(rows, limit, lambda event: event.id)
