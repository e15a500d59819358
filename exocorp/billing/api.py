"""Request and response bodies of the billing endpoints (camelCase on the wire, like every
other API model; the gateway's OpenAPI document can take their JSON schemas from here)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from pydantic import Field, field_validator

from exocorp.billing.admin import AccountSummary, CreditOutcome
from exocorp.model.base import DNS_LABEL_PATTERN, Printable, SpecModel, WireModel
from exocorp.store.billing import FALLBACK_RATE_KEY
from exocorp.store.schema import PriceBook, UsageEvent

__all__ = [
    "AccountList",
    "AccountView",
    "AssignPriceBookBody",
    "CreditView",
    "PriceBookBody",
    "PriceBookList",
    "PriceBookRef",
    "PriceBookUpdateBody",
    "PriceBookView",
    "TopUpBody",
    "UsageEventView",
    "UsagePage",
]

_LABEL = re.compile(DNS_LABEL_PATTERN)
_MAX_RATE = 10**9
"""Minor units per replica-second; a sanity bound far above any real price."""

Rate = Annotated[int, Field(ge=0, le=_MAX_RATE, strict=True)]
Rates = Annotated[dict[str, Rate], Field(min_length=1, max_length=64)]


def _check_rate_keys(rates: dict[str, int]) -> dict[str, int]:
    for key in rates:
        if key != FALLBACK_RATE_KEY and not (len(key) <= 63 and _LABEL.fullmatch(key)):
            raise ValueError(
                f"rate key {key!r} must be a component name (a DNS label) or {FALLBACK_RATE_KEY!r}"
            )
    return rates


class PriceBookBody(SpecModel):
    """A new price book."""

    name: Annotated[str, Field(min_length=1, max_length=200), Printable]
    """Unique name."""
    currency: Annotated[str, Field(pattern=r"^[A-Za-z]{3}$")]
    """ISO 4217 code; amounts are integers in its minor units."""
    rates: Rates
    """Component name -> minor units per replica-second; "*" prices every other component
    (components with no rate and no "*" are free)."""
    is_default: bool = False
    """Make it the default book (the one for accounts without an assigned book)."""

    _keys = field_validator("rates")(_check_rate_keys)


class PriceBookUpdateBody(SpecModel):
    """New rates for a price book (replacing all of its rates)."""

    rates: Rates
    """Component name -> minor units per replica-second; "*" prices every other component."""

    _keys = field_validator("rates")(_check_rate_keys)


class AssignPriceBookBody(SpecModel):
    """Which price book an account is charged by."""

    price_book_id: Annotated[str, Field(min_length=1, max_length=40)] | None
    """A price book id, or null for "the default book"."""


class TopUpBody(SpecModel):
    """A credit top-up."""

    amount: Annotated[int, Field(gt=0, le=10**12, strict=True)]
    """Minor units of the account's currency."""
    reference: Annotated[str, Field(min_length=1, max_length=200)]
    """A payment reference: the same reference again is applied once (idempotent)."""
    reason: Annotated[str, Field(max_length=500), Printable] | None = None
    """Why (recorded with the credit)."""


class PriceBookView(WireModel):
    id: str
    name: str
    currency: str
    rates: dict[str, int]
    is_default: bool
    created_at: datetime

    @classmethod
    def of(cls, book: PriceBook) -> PriceBookView:
        return cls(id=book.id, name=book.name, currency=book.currency, rates=dict(book.rates),
                   is_default=book.is_default, created_at=book.created_at)


class PriceBookList(WireModel):
    items: list[PriceBookView]


class PriceBookRef(WireModel):
    id: str
    name: str
    source: str
    """"assigned" (this account's own book) or "default"."""


class AccountView(WireModel):
    id: str
    user_id: str
    email: str | None
    balance: int
    """Minor units; negative when running time outran the credit."""
    currency: str
    state: str
    """"active" or "suspended" (credit exhausted: running exocorps paused, no resume or
    provision until topped up)."""
    billing_active: bool
    """Whether resume and provision are allowed (active and balance above zero)."""
    price_book: PriceBookRef | None
    """The effective price book; null when none applies (provisioning is refused)."""
    updated_at: datetime

    @classmethod
    def of(cls, summary: AccountSummary) -> AccountView:
        account, book = summary.account, summary.price_book
        return cls(
            id=account.id, user_id=account.user_id, email=summary.email,
            balance=account.balance, currency=account.currency, state=account.state.value,
            billing_active=summary.active,
            price_book=PriceBookRef(id=book.id, name=book.name, source=summary.price_book_source)
            if book is not None else None,
            updated_at=account.updated_at,
        )


class AccountList(WireModel):
    items: list[AccountView]


class CreditView(WireModel):
    entry_id: int
    account_id: str
    amount: int
    reference: str | None
    applied: bool
    """False when this reference had been applied before (nothing changed this time)."""
    balance: int
    state: str
    reactivated: bool

    @classmethod
    def of(cls, outcome: CreditOutcome) -> CreditView:
        return cls(entry_id=outcome.entry_id, account_id=outcome.account.id,
                   amount=outcome.amount, reference=outcome.reference, applied=outcome.created,
                   balance=outcome.account.balance, state=outcome.account.state.value,
                   reactivated=outcome.reactivated)


class UsageEventView(WireModel):
    id: int
    company_id: str
    component: str
    window_start: datetime
    """Start of the metering window (the accrual instant its counter range begins at)."""
    seconds: int
    """Replica-seconds of running time (ready replicas x seconds)."""
    rate: int
    """Minor units per replica-second applied."""
    amount: int
    """seconds x rate, in minor units, debited from the owner's account."""
    price_book_id: str | None
    created_at: datetime

    @classmethod
    def of(cls, event: UsageEvent) -> UsageEventView:
        return cls(id=event.id, company_id=event.exocorp_id, component=event.component,
                   window_start=event.window_start, seconds=event.seconds, rate=event.rate,
                   amount=event.amount, price_book_id=event.price_book_id,
                   created_at=event.created_at)


class UsagePage(WireModel):
    items: list[UsageEventView]
    next_cursor: str | None
    """Pass back as ?cursor= for the next page; null on the last page."""
    usage_as_of: datetime | None = None
    """The instant the exocorp's running time is billed up to (its oldest component's mark);
    null before the first metering pass. Later running time is not billed yet: it trails the
    operator's counter by up to its status flush (a minute) plus one metering interval."""
