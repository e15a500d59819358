"""Billing: price books, accounts, credits and usage, kept as a ledger.

Every balance change is a ledger row written in the same transaction as the balance update:
credits (signup, top-ups) add, usage events subtract, so
``balance == sum(credit amounts) - sum(usage amounts)`` always holds (:func:`ledger_balance`).
Usage may take a balance below zero: time already run is charged, never dropped; enforcement
(pausing exocorps) is the caller's job.

Usage events are idempotent on (exocorp, component, window start): recording the same window
twice, sequentially or concurrently, leaves one event and one debit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from exocorp.model.footprint import FALLBACK_RATE_KEY, rate_of
from exocorp.store import clock
from exocorp.store.columns import new_id
from exocorp.store.conflicts import conflicts_as
from exocorp.store.errors import Conflict, NotFound
from exocorp.store.pages import Page, clamp_limit, page_of
from exocorp.store.registry import get_exocorp
from exocorp.store.schema import (
    AccountState,
    BillingAccount,
    CreditEntry,
    CreditKind,
    PriceBook,
    UsageEvent,
)
from exocorp.store.statements import insert_ignoring_conflicts, table_of

__all__ = [
    "FALLBACK_RATE_KEY",
    "AccountStanding",
    "CreditResult",
    "UsageResult",
    "account_standing",
    "assign_price_book",
    "create_price_book",
    "effective_price_book",
    "get_account",
    "get_account_for_user",
    "get_default_price_book",
    "get_price_book",
    "ledger_balance",
    "list_accounts",
    "list_credits",
    "list_price_books",
    "list_usage",
    "rate_for",
    "record_usage",
    "set_account_state",
    "set_default_price_book",
    "top_up",
    "update_price_book_rates",
]



@dataclass(frozen=True)
class CreditResult:
    entry: CreditEntry
    created: bool
    """False when ``reference`` had been applied already: nothing changed."""


@dataclass(frozen=True)
class UsageResult:
    event: UsageEvent
    created: bool
    """False when the window had been recorded already: nothing changed."""


def _check_rates(rates: Mapping[str, int]) -> dict[str, int]:
    for component, rate in rates.items():
        if not isinstance(rate, int) or isinstance(rate, bool) or rate < 0:
            raise ValueError(f"rate for {component!r} must be a non-negative integer")
    return dict(rates)


def _check_currency(currency: str) -> str:
    if len(currency) != 3 or not currency.isalpha():
        raise ValueError("currency must be a three-letter ISO 4217 code")
    return currency.upper()


def rate_for(book: PriceBook, component: str) -> int:
    """Minor units per second for ``component`` under ``book``."""
    return rate_of(book.rates, component)


# Price books


async def create_price_book(
    session: AsyncSession,
    *,
    name: str,
    currency: str,
    rates: Mapping[str, int],
    is_default: bool = False,
    now: datetime | None = None,
) -> PriceBook:
    book = PriceBook(
        id=new_id("pb"),
        name=name,
        currency=_check_currency(currency),
        rates=_check_rates(rates),
        is_default=False,
        created_at=clock.resolve(now),
    )
    async with conflicts_as(session, f"price book {name!r} already exists", field="name"):
        session.add(book)
    if is_default:
        await set_default_price_book(session, book.id)
    return book


async def get_price_book(session: AsyncSession, price_book_id: str) -> PriceBook:
    book = await session.get(PriceBook, price_book_id)
    if book is None:
        raise NotFound(f"price book {price_book_id} not found")
    return book


async def get_default_price_book(session: AsyncSession) -> PriceBook | None:
    result = await session.execute(select(PriceBook).where(PriceBook.is_default.is_(True)))
    return result.scalar_one_or_none()


async def list_price_books(session: AsyncSession) -> list[PriceBook]:
    result = await session.execute(select(PriceBook).order_by(PriceBook.created_at, PriceBook.id))
    return list(result.scalars())


async def set_default_price_book(session: AsyncSession, price_book_id: str) -> PriceBook:
    """Make a book the default; a unique index guarantees there is never more than one."""
    book = await get_price_book(session, price_book_id)
    async with conflicts_as(session, "the default price book changed concurrently; retry"):
        await session.execute(
            update(PriceBook)
            .where(PriceBook.is_default.is_(True), PriceBook.id != price_book_id)
            .values(is_default=False)
            .execution_options(synchronize_session=False)
        )
        book.is_default = True
    await session.refresh(book)
    return book


async def update_price_book_rates(
    session: AsyncSession, price_book_id: str, rates: Mapping[str, int]
) -> PriceBook:
    """New rates apply to usage recorded from now on; past events keep the rate they used."""
    book = await get_price_book(session, price_book_id)
    book.rates = _check_rates(rates)
    await session.flush()
    return book


# Accounts


async def get_account(session: AsyncSession, account_id: str) -> BillingAccount:
    account = await session.get(BillingAccount, account_id, populate_existing=True)
    if account is None:
        raise NotFound(f"billing account {account_id} not found")
    return account


async def get_account_for_user(session: AsyncSession, user_id: str) -> BillingAccount:
    result = await session.execute(
        select(BillingAccount)
        .where(BillingAccount.user_id == user_id)
        .execution_options(populate_existing=True)
    )
    account = result.scalar_one_or_none()
    if account is None:
        raise NotFound(f"user {user_id} has no billing account")
    return account


@dataclass(frozen=True)
class AccountStanding:
    """What a lifecycle action reads of its owner's account: :func:`account_standing`."""

    state: AccountState
    balance: int
    currency: str
    rates: dict[str, int] | None
    """The effective price book's rates (:func:`effective_price_book`); None without one."""


_ACCOUNTS = table_of(BillingAccount)
_OWN_BOOK = table_of(PriceBook).alias("own_book")
_DEFAULT_BOOK = table_of(PriceBook).alias("default_book")
_STANDING = (
    select(_ACCOUNTS.c.state, _ACCOUNTS.c.balance, _ACCOUNTS.c.currency,
           _ACCOUNTS.c.price_book_id, _OWN_BOOK.c.rates,
           _DEFAULT_BOOK.c.rates.label("default_rates"))
    .select_from(_ACCOUNTS
                 .outerjoin(_OWN_BOOK, _OWN_BOOK.c.id == _ACCOUNTS.c.price_book_id)
                 .outerjoin(_DEFAULT_BOOK, _DEFAULT_BOOK.c.is_default.is_(True)))
    .where(_ACCOUNTS.c.user_id == bindparam("user_id"))
)


async def account_standing(session: AsyncSession, user_id: str) -> AccountStanding | None:
    """The user's account and its effective book's rates, or None without an account.

    What :func:`get_account_for_user` and :func:`effective_price_book` read, in one Core
    statement built once: every lifecycle action reads it, and two ORM loads cost ~3x the CPU
    (``bench/action_profile.py``). At most one book is the default (a unique index)."""
    row = (await session.execute(_STANDING, {"user_id": user_id})).first()
    if row is None:
        return None
    rates = row.rates if row.price_book_id is not None else row.default_rates
    return AccountStanding(state=row.state, balance=row.balance, currency=row.currency,
                           rates=dict(rates) if rates is not None else None)


async def list_accounts(session: AsyncSession) -> list[BillingAccount]:
    result = await session.execute(
        select(BillingAccount).order_by(BillingAccount.created_at, BillingAccount.id)
    )
    return list(result.scalars())


async def assign_price_book(
    session: AsyncSession,
    account_id: str,
    price_book_id: str | None,
    *,
    now: datetime | None = None,
) -> BillingAccount:
    """Price an account by a specific book, or (None) by whatever book is the default."""
    account = await get_account(session, account_id)
    if price_book_id is not None:
        book = await get_price_book(session, price_book_id)
        if book.currency != account.currency:
            raise Conflict(
                f"price book is in {book.currency}, the account in {account.currency}",
                field="price_book_id",
            )
    account.price_book_id = price_book_id
    account.updated_at = clock.resolve(now)
    await session.flush()
    return account


async def effective_price_book(session: AsyncSession, account: BillingAccount) -> PriceBook | None:
    """The account's own book, else the default; None means provisioning must be refused."""
    if account.price_book_id is not None:
        return await get_price_book(session, account.price_book_id)
    return await get_default_price_book(session)


async def set_account_state(
    session: AsyncSession,
    account_id: str,
    state: AccountState,
    *,
    now: datetime | None = None,
) -> BillingAccount:
    account = await get_account(session, account_id)
    at = clock.resolve(now)
    if state != account.state:
        account.suspended_at = at if state == AccountState.SUSPENDED else None
    account.state = state
    account.updated_at = at
    await session.flush()
    return account


async def _adjust_balance(session: AsyncSession, account_id: str, delta: int, at: datetime) -> None:
    # Relative update in SQL: concurrent writers add up instead of overwriting each other.
    await session.execute(
        update(BillingAccount)
        .where(BillingAccount.id == account_id)
        .values(balance=BillingAccount.balance + delta, updated_at=at)
        .execution_options(synchronize_session=False)
    )


# Ledger


async def top_up(
    session: AsyncSession,
    *,
    account_id: str,
    amount: int,
    reference: str | None = None,
    reason: str | None = None,
    actor_id: str | None = None,
    now: datetime | None = None,
) -> CreditResult:
    """Credit an account. A ``reference`` (payment id) makes the top-up idempotent: the same
    reference again returns the first entry and changes nothing."""
    if amount <= 0:
        raise ValueError("a top-up must be a positive amount")
    at = clock.resolve(now)
    await get_account(session, account_id)
    entry = CreditEntry(
        account_id=account_id,
        kind=CreditKind.TOP_UP,
        amount=amount,
        reference=reference,
        reason=reason,
        actor_id=actor_id,
        created_at=at,
    )
    try:
        async with session.begin_nested():
            session.add(entry)
    except IntegrityError:
        existing = (
            await session.execute(select(CreditEntry).where(CreditEntry.reference == reference))
        ).scalar_one_or_none()
        if existing is None or existing.account_id != account_id or existing.amount != amount:
            raise Conflict(
                "this payment reference was already used for another credit", field="reference"
            ) from None
        return CreditResult(entry=existing, created=False)
    await _adjust_balance(session, account_id, amount, at)
    return CreditResult(entry=entry, created=True)


async def record_usage(
    session: AsyncSession,
    *,
    exocorp_id: str,
    component: str,
    window_start: datetime,
    seconds: int,
    now: datetime | None = None,
) -> UsageResult:
    """Charge ``seconds`` of ``component``'s running time in the window starting at
    ``window_start`` to the exocorp owner's account, exactly once.

    The event and the debit are written together; a window already recorded returns the existing
    event unchanged (``created=False``), even when the duplicate arrives concurrently.
    ``Conflict`` when the account has no price book.
    """
    if seconds < 0:
        raise ValueError("seconds cannot be negative")
    if window_start.tzinfo is None:
        raise ValueError("window_start must be timezone-aware")
    at = clock.resolve(now)
    exocorp = await get_exocorp(session, exocorp_id)
    account = await get_account_for_user(session, exocorp.owner_user_id)
    book = await effective_price_book(session, account)
    if book is None:
        raise Conflict("the billing account has no price book", field="price_book_id")
    rate = rate_for(book, component)
    inserted = await session.execute(
        insert_ignoring_conflicts(
            session,
            UsageEvent,
            {
                "account_id": account.id,
                "exocorp_id": exocorp_id,
                "component": component,
                "window_start": window_start,
                "seconds": seconds,
                "price_book_id": book.id,
                "rate": rate,
                "amount": seconds * rate,
                "created_at": at,
            },
            conflict_on=("exocorp_id", "component", "window_start"),
        ).returning(UsageEvent.id)
    )
    new_id_ = inserted.scalar_one_or_none()
    key = (
        UsageEvent.exocorp_id == exocorp_id,
        UsageEvent.component == component,
        UsageEvent.window_start == window_start,
    )
    event = (
        await session.execute(
            select(UsageEvent).where(*key).execution_options(populate_existing=True)
        )
    ).scalar_one()
    if new_id_ is None:
        return UsageResult(event=event, created=False)
    await _adjust_balance(session, account.id, -event.amount, at)
    return UsageResult(event=event, created=True)


async def list_usage(
    session: AsyncSession,
    *,
    exocorp_id: str | None = None,
    account_id: str | None = None,
    component: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: int | None = None,
    limit: int = 100,
) -> Page[UsageEvent]:
    """Usage events, oldest first; ``since``/``until`` bound the window start (until exclusive)."""
    limit = clamp_limit(limit)
    query = select(UsageEvent).order_by(UsageEvent.id).limit(limit + 1)
    if exocorp_id is not None:
        query = query.where(UsageEvent.exocorp_id == exocorp_id)
    if account_id is not None:
        query = query.where(UsageEvent.account_id == account_id)
    if component is not None:
        query = query.where(UsageEvent.component == component)
    if since is not None:
        query = query.where(UsageEvent.window_start >= since)
    if until is not None:
        query = query.where(UsageEvent.window_start < until)
    if cursor is not None:
        query = query.where(UsageEvent.id > cursor)
    rows = (await session.execute(query)).scalars().all()
    return page_of(rows, limit, lambda event: event.id)


async def list_credits(session: AsyncSession, account_id: str) -> list[CreditEntry]:
    result = await session.execute(
        select(CreditEntry).where(CreditEntry.account_id == account_id).order_by(CreditEntry.id)
    )
    return list(result.scalars())


async def ledger_balance(session: AsyncSession, account_id: str) -> int:
    """The balance as the ledger says it is: credits minus usage (equals the stored balance)."""
    credits = await session.scalar(
        select(func.coalesce(func.sum(CreditEntry.amount), 0)).where(
            CreditEntry.account_id == account_id
        )
    )
    debits = await session.scalar(
        select(func.coalesce(func.sum(UsageEvent.amount), 0)).where(
            UsageEvent.account_id == account_id
        )
    )
    return int(credits or 0) - int(debits or 0)
