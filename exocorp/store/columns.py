"""Column types and id helpers shared by every table."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Dialect, Enum, Integer
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator, TypeEngine

__all__ = ["ID_LENGTH", "JSONType", "SerialID", "UTCDateTime", "enum_type", "new_id"]

ID_LENGTH = 40
"""Room for ``<prefix>_<26 chars>`` ids."""

SerialID: TypeEngine[int] = BigInteger().with_variant(Integer(), "sqlite")
"""Autoincrementing 64-bit key; SQLite needs exactly INTEGER to alias the rowid."""

JSONType: TypeEngine[Any] = JSON().with_variant(JSONB(), "postgresql")


def new_id(prefix: str) -> str:
    """A random, prefixed, URL-safe id such as ``usr_4f3kq...``: the prefix says what it names."""
    return f"{prefix}_{secrets.token_hex(13)}"


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every dialect.

    PostgreSQL stores ``timestamptz``. SQLite has no time zones, so values are stored as naive UTC
    (which also keeps their text sortable) and come back marked UTC. Naive input is refused: it
    is always a bug about which clock was meant.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def enum_type(enum: type[StrEnum], name: str) -> Enum:
    """A portable enum: a VARCHAR with a CHECK constraint, storing the members' values.

    Native PostgreSQL enums would need their own migration steps for every new member.
    """
    return Enum(
        enum,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=32,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )
