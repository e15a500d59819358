"""The audit trail. Append-only: the migration adds triggers that refuse UPDATE and DELETE."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from exocorp.store.columns import JSONType, SerialID, UTCDateTime, enum_type
from exocorp.store.schema.base import Base


class ActorKind(StrEnum):
    USER = "user"
    OPERATOR_CLIENT = "operator_client"
    SYSTEM = "system"
    ANONYMOUS = "anonymous"


class Outcome(StrEnum):
    SUCCEEDED = "succeeded"
    REFUSED = "refused"
    """Rejected before anything changed (validation, authorization, state conflict)."""
    FAILED = "failed"
    """Accepted but did not complete."""


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (
        Index(None, "exocorp_id", "id"),
        Index(None, "actor_id", "id"),
        Index(None, "action", "id"),
    )

    id: Mapped[int] = mapped_column(SerialID, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor_kind: Mapped[ActorKind] = mapped_column(enum_type(ActorKind, "actor_kind"))
    actor_id: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    exocorp_id: Mapped[str | None] = mapped_column(String(63))
    """No foreign key: refused actions on unknown ids are recorded too."""
    reason: Mapped[str | None] = mapped_column(Text)
    outcome: Mapped[Outcome] = mapped_column(enum_type(Outcome, "outcome"))
    error: Mapped[str | None] = mapped_column(Text)
    request_id: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
