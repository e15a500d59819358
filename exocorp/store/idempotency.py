"""Stripe-style ``Idempotency-Key`` support: the first response to a key is stored and replayed.

Protocol for a handler (three short transactions):

1. :func:`begin_request` and commit. ``None`` means "first time: go ahead"; a record means
   "replay this stored response"; ``Conflict`` means the key is in use by a request still being
   processed, or was used for a different request.
2. Do the work; in the same transaction, :func:`complete_request` with the response.
3. If the work failed in a way worth retrying (5xx), :func:`abandon_request` frees the key.

A request that crashed between 1 and 2 leaves a pending record; after ``stale_after`` the next
request with that key takes it over.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession

from exocorp.store import clock
from exocorp.store.errors import Conflict, NotFound
from exocorp.store.schema import IdempotencyRecord
from exocorp.store.statements import insert_ignoring_conflicts, rowcount, table_of

__all__ = [
    "ANONYMOUS_SCOPE",
    "DEFAULT_STALE_AFTER",
    "KeyReused",
    "RequestInProgress",
    "abandon_request",
    "begin_request",
    "complete_request",
    "purge_idempotency_records",
    "request_fingerprint",
]

DEFAULT_STALE_AFTER = timedelta(minutes=5)
ANONYMOUS_SCOPE = "anonymous"
"""The scope (``user_id``) of requests made without credentials."""
_FIELD = "Idempotency-Key"
_RECORDS = table_of(IdempotencyRecord)
"""Writes are Core statements on the table (every request with a key makes two): no caller
holds a record object in the session that writes it."""


class RequestInProgress(Conflict):
    """The key belongs to a request still being processed; ``retry_after`` seconds until a
    retry may take it over (if its owner is gone by then)."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message, field=_FIELD)
        self.retry_after = retry_after


class KeyReused(Conflict):
    """The key was used for a different request (another method, path or body)."""


def request_fingerprint(method: str, path: str, body: bytes) -> str:
    """What makes two requests "the same": method, path and exact body."""
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path.encode(), body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


async def begin_request(
    session: AsyncSession,
    *,
    user_id: str,
    key: str,
    method: str,
    path: str,
    fingerprint: str,
    stale_after: timedelta = DEFAULT_STALE_AFTER,
    now: datetime | None = None,
) -> IdempotencyRecord | None:
    """Claim ``key`` for this request, or return the completed record to replay."""
    at = clock.resolve(now)
    if not key or len(key) > 255:
        raise ValueError("an Idempotency-Key must be 1 to 255 characters")
    claimed = await session.execute(
        insert_ignoring_conflicts(
            session,
            _RECORDS,
            {
                "user_id": user_id,
                "key": key,
                "method": method.upper(),
                "path": path,
                "fingerprint": fingerprint,
                "created_at": at,
            },
            conflict_on=("user_id", "key"),
        ).returning(_RECORDS.c.key)
    )
    if claimed.scalar_one_or_none() is not None:
        return None
    record = await session.get(IdempotencyRecord, (user_id, key), populate_existing=True)
    if record is None:  # deleted between the two statements
        raise Conflict("the idempotency key is being released; retry", field=_FIELD)
    if (record.method, record.path, record.fingerprint) != (method.upper(), path, fingerprint):
        raise KeyReused("this Idempotency-Key was used for a different request", field=_FIELD)
    if record.response_status is not None:
        return record
    if at - record.created_at < stale_after:
        raise RequestInProgress(
            "a request with this Idempotency-Key is still in progress",
            retry_after=(stale_after - (at - record.created_at)).total_seconds())
    taken = await session.execute(
        update(_RECORDS)
        .where(
            _RECORDS.c.user_id == user_id,
            _RECORDS.c.key == key,
            _RECORDS.c.created_at == record.created_at,
            _RECORDS.c.response_status.is_(None),
        )
        .values(created_at=at)
    )
    if rowcount(taken) != 1:
        raise RequestInProgress("a request with this Idempotency-Key is still in progress",
                                retry_after=stale_after.total_seconds())
    return None


async def complete_request(
    session: AsyncSession,
    *,
    user_id: str,
    key: str,
    status: int,
    body: Any,
    now: datetime | None = None,
) -> None:
    """Store the response (JSON-serialisable ``body``) to replay for this key (one UPDATE)."""
    stored = await session.execute(
        update(_RECORDS)
        .where(_RECORDS.c.user_id == user_id, _RECORDS.c.key == key)
        .values(response_status=status, response_body=body, completed_at=clock.resolve(now))
    )
    if rowcount(stored) != 1:
        raise NotFound("no pending request for this Idempotency-Key")


async def abandon_request(session: AsyncSession, *, user_id: str, key: str) -> None:
    """Free a key whose request failed before completing, so that a retry runs afresh."""
    await session.execute(
        delete(_RECORDS).where(
            _RECORDS.c.user_id == user_id,
            _RECORDS.c.key == key,
            _RECORDS.c.response_status.is_(None),
        )
    )


async def purge_idempotency_records(
    session: AsyncSession,
    *,
    older_than: timedelta = timedelta(hours=24),
    now: datetime | None = None,
) -> int:
    """Forget keys older than ``older_than`` (Stripe keeps them 24 hours)."""
    result = await session.execute(
        delete(_RECORDS).where(_RECORDS.c.created_at < clock.resolve(now) - older_than)
    )
    return rowcount(result)
