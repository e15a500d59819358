"""Time as the store sees it: always timezone-aware UTC, always passed in where expiry matters."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]
"""A source of the current time; tests pass a fake one instead of sleeping."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def resolve(now: datetime | None) -> datetime:
    """``now`` if given (it must be timezone-aware), else the wall clock."""
    if now is None:
        return utcnow()
    if now.tzinfo is None:
        raise ValueError("times passed to the store must be timezone-aware")
    return now.astimezone(UTC)
