"""Billing operations beyond the store's primitives (the HTTP routes in
``exocorp.api_gateway.billing.routes`` call these and ``exocorp.store.billing``).

Every function takes an ``AsyncSession`` and never commits (the caller owns the transaction).
The HTTP layer audits the requests; the start-up creation of the default price book is audited
here (system actor). Errors are the store's typed ones (``NotFound`` 404, ``Conflict`` 409) or
``ValueError`` (400).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from exocorp.billing.enforcement import account_is_active
from exocorp.billing.settings import DefaultPriceBook
from exocorp.model import BILLING_ACTOR
from exocorp.store import NotFound, accounts, audit, billing, registry
from exocorp.store import metering as repo
from exocorp.store.schema import (
    ActorKind,
    BillingAccount,
    Outcome,
    PriceBook,
    User,
)

__all__ = [
    "AccountSummary",
    "CreditOutcome",
    "PriceBookSource",
    "account_summary",
    "credit_account",
    "ensure_default_price_book",
    "list_account_summaries",
    "price_book_for_exocorp",
]

PriceBookSource = str
"""How an account's price book applies: ``"assigned"``, ``"default"`` or ``"none"``."""


# Price books


async def ensure_default_price_book(
    session: AsyncSession, config: DefaultPriceBook | None, *, now: datetime | None = None
) -> PriceBook | None:
    """At start-up: if no default price book exists, make the configured one the default
    (creating it, or reusing a book of that name). Returns the default book, if any.
    Safe to run from several replicas at once: a loser gets ``Conflict``; retry or ignore."""
    current = await billing.get_default_price_book(session)
    if current is not None or config is None:
        return current
    existing = {book.name: book for book in await billing.list_price_books(session)}
    book = existing.get(config.name)
    if book is None:
        book = await billing.create_price_book(
            session, name=config.name, currency=config.currency, rates=config.rates,
            is_default=True, now=now,
        )
        await audit.record_audit_event(
            session, actor_kind=ActorKind.SYSTEM, actor_id=BILLING_ACTOR,
            action="billing.price_book.create", outcome=Outcome.SUCCEEDED,
            details={"priceBookId": book.id, "name": book.name, "source": "configuration"},
            now=now)
        return book
    return await billing.set_default_price_book(session, book.id)


async def price_book_for_exocorp(session: AsyncSession, exocorp_id: str) -> PriceBook | None:
    """The price book an exocorp's running time is charged by (its owner's effective book):
    what the exocorp's details show. ``NotFound`` for an unknown exocorp."""
    record = await registry.get_exocorp(session, exocorp_id)
    try:
        account = await billing.get_account_for_user(session, record.owner_user_id)
    except NotFound:
        return None
    return await billing.effective_price_book(session, account)


# Accounts and credits


@dataclass(frozen=True)
class AccountSummary:
    """One billing account as the admin listing shows it."""

    account: BillingAccount
    email: str | None
    price_book: PriceBook | None
    """The effective book (assigned, else the default)."""
    price_book_source: PriceBookSource
    user_disabled: bool = False
    """The owner is disabled (cannot log in; its sessions and agents were signed out)."""

    @property
    def active(self) -> bool:
        return account_is_active(self.account)


async def list_account_summaries(session: AsyncSession) -> list[AccountSummary]:
    """Every account with its owner's email, whether the owner is disabled, and the effective
    price book."""
    users = {user.id: user for user in await accounts.list_users(session)}
    books = {book.id: book for book in await billing.list_price_books(session)}
    default = next((book for book in books.values() if book.is_default), None)
    out = []
    for account in await billing.list_accounts(session):
        if account.price_book_id is not None:
            book, source = books.get(account.price_book_id), "assigned"
        else:
            book, source = default, "default" if default is not None else "none"
        owner = users.get(account.user_id)
        out.append(AccountSummary(account=account, email=owner.email if owner else None,
                                  price_book=book, price_book_source=source,
                                  user_disabled=bool(owner and owner.disabled)))
    return out


@dataclass(frozen=True)
class CreditOutcome:
    entry_id: int
    amount: int
    reference: str | None
    created: bool
    """False when the reference had been applied already (nothing changed)."""
    account: BillingAccount
    reactivated: bool
    """The top-up brought a suspended account back above zero and made it active."""


async def credit_account(
    session: AsyncSession, account_id: str, *, amount: int, reference: str,
    reason: str | None = None, actor_id: str | None = None, now: datetime | None = None,
) -> CreditOutcome:
    """Top an account up, idempotently by ``reference`` (a payment id): the same reference with
    the same account and amount again changes nothing; with another one it is a ``Conflict``.
    A suspended account whose balance ends above zero becomes active (its paused exocorps stay
    paused until their owner resumes them)."""
    if not reference:
        raise ValueError("a top-up needs a reference (e.g. the payment id)")
    result = await billing.top_up(
        session, account_id=account_id, amount=amount, reference=reference, reason=reason,
        actor_id=actor_id, now=now,
    )
    reactivated = False
    if result.created:
        reactivated = await repo.reactivate_if_funded(session, account_id, now=now)
    account = await billing.get_account(session, account_id)
    return CreditOutcome(entry_id=result.entry.id, amount=result.entry.amount,
                         reference=result.entry.reference, created=result.created,
                         account=account, reactivated=reactivated)


async def account_summary(session: AsyncSession, account_id: str) -> AccountSummary:
    """One account as the admin listing shows it; ``NotFound`` if unknown."""
    account = await billing.get_account(session, account_id)
    user = await session.get(User, account.user_id)
    book = await billing.effective_price_book(session, account)
    source = "assigned" if account.price_book_id else ("default" if book else "none")
    return AccountSummary(account=account, email=user.email if user else None, price_book=book,
                          price_book_source=source, user_disabled=bool(user and user.disabled))
