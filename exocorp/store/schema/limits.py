"""Abuse limits kept where every gateway replica sees them: attempt counters (login, signup) and
exocorp limits (per account, a default for every account, and a platform-wide cap)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from exocorp.store.columns import UTCDateTime
from exocorp.store.schema.base import Base


class ThrottleCounter(Base):
    """Attempts counted under one key (``login:account:<email>``, ``login:client:<address>``,
    ``signup:client:<address>``) in a fixed window that starts at ``window_start``."""

    __tablename__ = "throttle_counters"

    key: Mapped[str] = mapped_column(String(320), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    attempts: Mapped[int] = mapped_column(Integer)


class ResourceLimits(Base):
    """How many exocorps may exist and how much CPU, memory and storage their runtimes may
    request. ``scope`` is a user id (that account's own limits), ``default`` (every account
    without its own) or ``platform`` (all accounts together). A None bound is unlimited."""

    __tablename__ = "resource_limits"

    scope: Mapped[str] = mapped_column(String(64), primary_key=True)
    max_exocorps: Mapped[int | None] = mapped_column(Integer)
    max_cpu_millicores: Mapped[int | None] = mapped_column(BigInteger)
    max_memory_bytes: Mapped[int | None] = mapped_column(BigInteger)
    max_storage_bytes: Mapped[int | None] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_by: Mapped[str | None] = mapped_column(String(64))
