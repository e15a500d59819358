"""Stored responses for requests carrying an ``Idempotency-Key`` header."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from exocorp.store.columns import ID_LENGTH, JSONType, UTCDateTime
from exocorp.store.schema.base import Base


class IdempotencyRecord(Base):
    """Keys are scoped per caller: two users may pick the same key without meeting.

    ``user_id`` is the scope: the user a request acts for, or ``anonymous`` for requests without
    credentials (whose keys are stored as digests; see ``exocorp.api_gateway.idempotency``). It
    is not a foreign key, so anonymous records need no user."""

    __tablename__ = "idempotency_records"

    user_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(String(2048))
    fingerprint: Mapped[str] = mapped_column(String(64))
    """SHA-256 of the request (method, path, body): a reused key with another request is a 409."""
    response_status: Mapped[int | None] = mapped_column(Integer)
    """None while the first request is still being processed."""
    response_body: Mapped[Any | None] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
