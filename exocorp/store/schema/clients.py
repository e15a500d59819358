"""Operator clients (coding agents) and their tokens: draft access and trusted-client bearer."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Integer, String, false, text
from sqlalchemy.orm import Mapped, mapped_column

from exocorp.store.columns import ID_LENGTH, UTCDateTime, enum_type
from exocorp.store.schema.base import Base


class TokenKind(StrEnum):
    DRAFT_ACCESS = "draft_access"
    """Short-lived, scoped to one draft, redeemable once for a bearer token after approval."""
    CLIENT_BEARER = "client_bearer"
    """Long-lived, bound to the approving user, revocable."""


class OperatorClient(Base):
    __tablename__ = "operator_clients"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    """What the agent calls itself; shown to the human who approves it."""
    draft_id: Mapped[str | None] = mapped_column(
        ForeignKey("drafts.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    approved_by: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    may_destroy: Mapped[bool] = mapped_column(Boolean, server_default=false())
    """Granted by the human at approval: the agent may destroy the exocorps in its scope."""
    may_write_secrets: Mapped[bool] = mapped_column(Boolean, server_default=false())
    """Granted by the human at approval: the agent may add, rotate and delete the human's
    provider credentials."""
    pairing_code_hash: Mapped[str | None] = mapped_column(String(64))
    """SHA-256 of the code the agent shows its human; approval must present it."""
    pairing_failures: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    """Wrong codes presented; at the limit the request is denied."""


class OperatorClientExocorp(Base):
    """The exocorps an agent's bearer token may reach: those the human named at approval and
    those the agent created with the token."""

    __tablename__ = "operator_client_exocorps"

    client_id: Mapped[str] = mapped_column(
        ForeignKey("operator_clients.id", ondelete="CASCADE"), primary_key=True
    )
    exocorp_id: Mapped[str] = mapped_column(
        ForeignKey("exocorps.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class OperatorToken(Base):
    __tablename__ = "operator_tokens"
    __table_args__ = (
        CheckConstraint(
            "(kind = 'draft_access' AND draft_id IS NOT NULL)"
            " OR (kind = 'client_bearer' AND user_id IS NOT NULL)",
            name="scope",
        ),
    )

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[TokenKind] = mapped_column(enum_type(TokenKind, "token_kind"))
    client_id: Mapped[str] = mapped_column(
        ForeignKey("operator_clients.id", ondelete="CASCADE"), index=True
    )
    draft_id: Mapped[str | None] = mapped_column(
        ForeignKey("drafts.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    redeemed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """Draft access tokens are single-use: set when exchanged for a bearer token."""
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
