"""Metering marks (how far each exocorp component's running-time counter has been billed) and
the account-state transitions that credit enforcement needs.

A **mark** is the high-water mark of one (exocorp, component) counter: the operator's
``status.runningSeconds[component]`` value up to which usage events exist, the
``runningSecondsAccruedAt`` instant it was observed at, and the custom resource's uid
(*incarnation*) it belongs to. The metering loop writes a usage event and moves the mark in one
transaction, with the mark's previous value as a precondition (:func:`advance_mark`): of two
meterers billing the same range, one commits and the other changes nothing.

The model is declared here (not in ``exocorp.store.schema``) and registered on the same
``Base.metadata``; importing ``exocorp.store`` imports this module, so migrations and
``schema_diff`` see the table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String, and_, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from exocorp.store import clock
from exocorp.store.columns import UTCDateTime
from exocorp.store.schema import AccountState, BillingAccount, ExocorpRecord
from exocorp.store.schema.base import Base
from exocorp.store.schema.registry import NAME_LENGTH
from exocorp.store.statements import insert_ignoring_conflicts, rowcount

__all__ = [
    "INCARNATION_LENGTH",
    "MarkValue",
    "MeteringMark",
    "advance_mark",
    "exhausted_active_accounts",
    "list_marks",
    "lock_marks",
    "reactivate_if_funded",
    "suspend_if_exhausted",
    "suspended_accounts_exocorps",
    "usage_as_of",
]

INCARNATION_LENGTH = 64
"""Room for a Kubernetes uid (36 characters)."""


class MeteringMark(Base):
    """How far one component's running-time counter of one exocorp has been billed."""

    __tablename__ = "metering_marks"

    exocorp_id: Mapped[str] = mapped_column(
        String(NAME_LENGTH), ForeignKey("exocorps.id"), primary_key=True
    )
    component: Mapped[str] = mapped_column(String(NAME_LENGTH), primary_key=True)
    incarnation: Mapped[str] = mapped_column(String(INCARNATION_LENGTH))
    """metadata.uid of the Exocorp object whose counter this is (a re-created object restarts
    its counters at zero)."""
    incarnation_created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    """metadata.creationTimestamp of that object: orders incarnations."""
    counter: Mapped[int] = mapped_column(BigInteger)
    """runningSeconds[component] value billed up to (replica-seconds)."""
    accrued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    """runningSecondsAccruedAt observed with ``counter``: the start of the next window."""
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


@dataclass(frozen=True)
class MarkValue:
    """A mark's content, detached from any session (what a precondition compares against)."""

    incarnation: str
    incarnation_created_at: datetime
    counter: int
    accrued_at: datetime

    @classmethod
    def of(cls, mark: MeteringMark) -> MarkValue:
        return cls(
            incarnation=mark.incarnation,
            incarnation_created_at=mark.incarnation_created_at,
            counter=mark.counter,
            accrued_at=mark.accrued_at,
        )


async def list_marks(session: AsyncSession) -> dict[tuple[str, str], MarkValue]:
    """Every mark, keyed by (exocorp id, component): one query per metering pass."""
    rows = (await session.execute(select(MeteringMark))).scalars().all()
    return {(m.exocorp_id, m.component): MarkValue.of(m) for m in rows}


async def usage_as_of(session: AsyncSession, exocorp_id: str) -> datetime | None:
    """The instant an exocorp's usage is billed up to: the oldest of its components' marks
    (None before its first metering pass)."""
    result = await session.execute(
        select(func.min(MeteringMark.accrued_at)).where(MeteringMark.exocorp_id == exocorp_id))
    oldest: datetime | None = result.scalar_one_or_none()
    return oldest


async def lock_marks(session: AsyncSession, exocorp_id: str) -> dict[str, MarkValue]:
    """One exocorp's marks, read for update: on PostgreSQL a concurrent meterer of the same
    exocorp waits here until this transaction ends and then reads what it committed. (SQLite
    transactions are serialised by ``BEGIN IMMEDIATE`` already.)"""
    rows = (
        (
            await session.execute(
                select(MeteringMark)
                .where(MeteringMark.exocorp_id == exocorp_id)
                .order_by(MeteringMark.component)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
        )
        .scalars()
        .all()
    )
    return {m.component: MarkValue.of(m) for m in rows}


async def advance_mark(
    session: AsyncSession,
    *,
    exocorp_id: str,
    component: str,
    expected: MarkValue | None,
    new: MarkValue,
    now: datetime | None = None,
) -> bool:
    """Move a mark from ``expected`` (None: no mark yet) to ``new``, only if it still holds
    ``expected`` (incarnation and counter: a counter only grows within one incarnation, so the
    pair identifies the mark's state). False when another writer moved it first: the caller
    must roll back."""
    at = clock.resolve(now)
    if expected is None:
        inserted = await session.execute(
            insert_ignoring_conflicts(
                session,
                MeteringMark,
                {
                    "exocorp_id": exocorp_id,
                    "component": component,
                    "incarnation": new.incarnation,
                    "incarnation_created_at": new.incarnation_created_at,
                    "counter": new.counter,
                    "accrued_at": new.accrued_at,
                    "updated_at": at,
                },
                conflict_on=("exocorp_id", "component"),
            ).returning(MeteringMark.counter)
        )
        return inserted.scalar_one_or_none() is not None
    result = await session.execute(
        update(MeteringMark)
        .where(
            MeteringMark.exocorp_id == exocorp_id,
            MeteringMark.component == component,
            MeteringMark.incarnation == expected.incarnation,
            MeteringMark.counter == expected.counter,
        )
        .values(
            incarnation=new.incarnation,
            incarnation_created_at=new.incarnation_created_at,
            counter=new.counter,
            accrued_at=new.accrued_at,
            updated_at=at,
        )
        .execution_options(synchronize_session=False)
    )
    return rowcount(result) == 1


# Account states for credit enforcement. Conditional updates: a concurrent top-up or debit is
# never overwritten by a decision taken on a stale balance.


async def exhausted_active_accounts(session: AsyncSession) -> list[BillingAccount]:
    """Active accounts whose balance is zero or below."""
    result = await session.execute(
        select(BillingAccount)
        .where(BillingAccount.state == AccountState.ACTIVE, BillingAccount.balance <= 0)
        .order_by(BillingAccount.id)
    )
    return list(result.scalars())


async def suspend_if_exhausted(
    session: AsyncSession, account_id: str, *, now: datetime | None = None
) -> bool:
    """active -> suspended if the balance is still zero or below; True if it changed."""
    at = clock.resolve(now)
    result = await session.execute(
        update(BillingAccount)
        .where(
            BillingAccount.id == account_id,
            BillingAccount.state == AccountState.ACTIVE,
            BillingAccount.balance <= 0,
        )
        .values(state=AccountState.SUSPENDED, updated_at=at, suspended_at=at)
        .execution_options(synchronize_session=False)
    )
    return rowcount(result) == 1


async def reactivate_if_funded(
    session: AsyncSession, account_id: str, *, now: datetime | None = None
) -> bool:
    """suspended -> active if the balance is above zero; True if it changed."""
    result = await session.execute(
        update(BillingAccount)
        .where(
            BillingAccount.id == account_id,
            BillingAccount.state == AccountState.SUSPENDED,
            BillingAccount.balance > 0,
        )
        .values(state=AccountState.ACTIVE, updated_at=clock.resolve(now), suspended_at=None)
        .execution_options(synchronize_session=False)
    )
    return rowcount(result) == 1


async def suspended_accounts_exocorps(
    session: AsyncSession,
) -> list[tuple[ExocorpRecord, BillingAccount]]:
    """Every exocorp (not destroyed) whose owner's account is suspended."""
    result = await session.execute(
        select(ExocorpRecord, BillingAccount)
        .join(BillingAccount, BillingAccount.user_id == ExocorpRecord.owner_user_id)
        .where(
            and_(
                BillingAccount.state == AccountState.SUSPENDED,
                ExocorpRecord.destroyed_at.is_(None),
            )
        )
        .order_by(ExocorpRecord.id)
    )
    return [(record, account) for record, account in result.all()]
