"""Exocorp registry rows (names and domains reserved for good), memberships and drafts."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from exocorp.store.columns import ID_LENGTH, JSONType, UTCDateTime, enum_type
from exocorp.store.schema.base import Base

NAME_LENGTH = 63  # a DNS label: the Exocorp custom resource's name and its slug
DOMAIN_LENGTH = 253


class Role(StrEnum):
    """What a person may do with an exocorp (docs/api.md, "Roles")."""

    OWNER = "owner"
    """Everything, alone: destroy, credentials, members."""
    MEMBER = "member"
    """Read, save the draft, drive the lifecycle (never destroy)."""
    VIEWER = "viewer"
    """Read only."""


class ExocorpRecord(Base):
    """An exocorp's platform record. Runtime state lives in its Kubernetes custom resource.

    The slug and both domains stay reserved after ``destroyed_at`` is set: a name once used is
    never handed to another owner, so old links and audit entries cannot point at a stranger.
    """

    __tablename__ = "exocorps"

    id: Mapped[str] = mapped_column(String(NAME_LENGTH), primary_key=True)
    """The Exocorp custom resource's name."""
    slug: Mapped[str] = mapped_column(String(NAME_LENGTH), unique=True)
    owner_user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    display_name: Mapped[str] = mapped_column(String(200))
    portal_domain: Mapped[str] = mapped_column(String(DOMAIN_LENGTH), unique=True)
    app_domain: Mapped[str] = mapped_column(String(DOMAIN_LENGTH), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    destroyed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Membership(Base):
    __tablename__ = "memberships"

    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    exocorp_id: Mapped[str] = mapped_column(
        ForeignKey("exocorps.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[Role] = mapped_column(enum_type(Role, "role"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Invitation(Base):
    """An invitation of an e-mail address to an exocorp, until accepted, declined or revoked
    (then the row goes; the audit trail keeps the story). The address need not have an account
    yet: whoever signs up with it sees the invitation on `me`."""

    __tablename__ = "invitations"
    __table_args__ = (UniqueConstraint("exocorp_id", "email_normalized"),)

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    exocorp_id: Mapped[str] = mapped_column(ForeignKey("exocorps.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(320))
    email_normalized: Mapped[str] = mapped_column(String(320), index=True)
    role: Mapped[Role] = mapped_column(enum_type(Role, "invitation_role"))
    invited_by: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Draft(Base):
    """An exocorp's editable configuration, versioned for optimistic concurrency.

    A coding agent may create a draft before any exocorp (or user) exists, so the draft has its own
    id and ``exocorp_id`` is filled in when the draft is bound to an exocorp.
    """

    __tablename__ = "drafts"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    exocorp_id: Mapped[str | None] = mapped_column(
        ForeignKey("exocorps.id", ondelete="CASCADE"), unique=True
    )
    config: Mapped[dict[str, Any]] = mapped_column(JSONType)
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
