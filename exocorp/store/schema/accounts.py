"""Users, their login sessions and recovery kits."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, false
from sqlalchemy.orm import Mapped, mapped_column

from exocorp.store.columns import ID_LENGTH, UTCDateTime
from exocorp.store.schema.base import Base


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    """As the user typed it (shown back to them)."""
    email_normalized: Mapped[str] = mapped_column(String(320), unique=True)
    """Lower-cased: what uniqueness and login look up, so emails are unique case-insensitively."""
    password_hash: Mapped[str] = mapped_column(String(255))
    platform_owner: Mapped[bool] = mapped_column(Boolean, server_default=false())
    disabled: Mapped[bool] = mapped_column(Boolean, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class UserSession(Base):
    """A server-side login session. Only the SHA-256 of the cookie value is stored."""

    __tablename__ = "sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    idle_expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    """Pushed forward on use, never past ``absolute_expires_at``."""
    absolute_expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    user_agent: Mapped[str | None] = mapped_column(String(512))
    ip_address: Mapped[str | None] = mapped_column(String(64))
    password_change_required: Mapped[bool] = mapped_column(Boolean, server_default=false())
    """Opened with the recovery kit: may only set a new password (or log out) until it does."""


class RecoveryKit(Base):
    """The one active recovery kit of a user (a row per user: replacing it is rotation)."""

    __tablename__ = "recovery_kits"

    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    kit_hash: Mapped[str] = mapped_column(String(64), unique=True)
    generation: Mapped[int] = mapped_column(Integer)
    """1 for the kit issued at signup, +1 for every rotation."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
