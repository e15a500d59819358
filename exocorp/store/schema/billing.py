"""Billing accounts, price books and the ledger (credit entries in, usage events out).

Every amount is an integer in the currency's minor units (cents for USD). The ledger invariant:
``billing_accounts.balance == sum(credit_entries.amount) - sum(usage_events.amount)``.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from exocorp.store.columns import ID_LENGTH, JSONType, SerialID, UTCDateTime, enum_type
from exocorp.store.schema.base import Base
from exocorp.store.schema.registry import NAME_LENGTH


class AccountState(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"


class CreditKind(StrEnum):
    SIGNUP = "signup"
    TOP_UP = "top_up"


class PriceBook(Base):
    __tablename__ = "price_books"
    __table_args__ = (
        # At most one default book: a partial unique index, so two concurrent "make default"
        # writes cannot both succeed.
        Index(
            "uq_price_books_default",
            "is_default",
            unique=True,
            sqlite_where=text("is_default"),
            postgresql_where=text("is_default"),
        ),
    )

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    currency: Mapped[str] = mapped_column(String(3))
    rates: Mapped[dict[str, int]] = mapped_column(JSONType)
    """Component name -> minor units per second of running time; ``"*"`` prices the rest."""
    is_default: Mapped[bool] = mapped_column(Boolean, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class BillingAccount(Base):
    __tablename__ = "billing_accounts"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    balance: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    state: Mapped[AccountState] = mapped_column(enum_type(AccountState, "account_state"))
    price_book_id: Mapped[str | None] = mapped_column(ForeignKey("price_books.id"), index=True)
    """None means "the default price book"."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    suspended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """When the account was last suspended (None while active): enforcement stops its exocorps
    once the suspension outlasts the grace period."""


class CreditEntry(Base):
    __tablename__ = "credit_entries"
    __table_args__ = (CheckConstraint("amount > 0", name="positive_amount"),)

    id: Mapped[int] = mapped_column(SerialID, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(
        ForeignKey("billing_accounts.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[CreditKind] = mapped_column(enum_type(CreditKind, "credit_kind"))
    amount: Mapped[int] = mapped_column(BigInteger)
    reference: Mapped[str | None] = mapped_column(String(200), unique=True)
    """An external payment id: a top-up with a reference already seen is not applied twice."""
    reason: Mapped[str | None] = mapped_column(String(500))
    actor_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class UsageEvent(Base):
    """Running time of one component of one exocorp in one metering window, and its price.

    (exocorp, component, window start) is the idempotency key: the metering loop may retry a
    window after any crash and the second write is a no-op.
    """

    __tablename__ = "usage_events"
    __table_args__ = (
        UniqueConstraint("exocorp_id", "component", "window_start"),
        CheckConstraint("seconds >= 0", name="nonnegative_seconds"),
        CheckConstraint("amount >= 0", name="nonnegative_amount"),
    )

    id: Mapped[int] = mapped_column(SerialID, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(
        ForeignKey("billing_accounts.id", ondelete="CASCADE"), index=True
    )
    exocorp_id: Mapped[str] = mapped_column(String(NAME_LENGTH), ForeignKey("exocorps.id"))
    component: Mapped[str] = mapped_column(String(NAME_LENGTH))
    window_start: Mapped[datetime] = mapped_column(UTCDateTime)
    seconds: Mapped[int] = mapped_column(Integer)
    price_book_id: Mapped[str | None] = mapped_column(ForeignKey("price_books.id"))
    rate: Mapped[int] = mapped_column(BigInteger)
    """Minor units per second applied (copied: later price changes do not rewrite history)."""
    amount: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
