"""Billing: price books, billing accounts and credit top-ups (platform owners), and an exocorp's
usage events (its owner, members and platform owners). See docs/billing.md.

The handlers are thin: the work is in :mod:`exocorp.billing.admin`. Writes are audited with
:func:`~exocorp.api_gateway.audited.audited` (``billing.price_book.create``, ``.update``,
``.set_default``, ``billing.price_book.assign``, ``billing.top_up``).

Metering and enforcement are not started by this table: they are the gateway process's
background work (``api_gateway.workers.billing``), which also creates the configured default
price book at start-up.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from aiohttp import web
from pydantic import Field

from exocorp.api_gateway.access import exocorp_access, require_platform_owner, require_user
from exocorp.api_gateway.allowances import limit_usage
from exocorp.api_gateway.audited import audited
from exocorp.api_gateway.errors import bad_request, not_found
from exocorp.api_gateway.idempotency import complete_in
from exocorp.api_gateway.keys import CLOCK, DATABASE
from exocorp.api_gateway.routing import Auth, RouteTable, json_body, json_response, query_params
from exocorp.api_gateway.schemas import LimitUsage
from exocorp.billing import admin
from exocorp.billing.api import (
    AccountView,
    AssignPriceBookBody,
    CreditView,
    PriceBookBody,
    PriceBookList,
    PriceBookUpdateBody,
    PriceBookView,
    TopUpBody,
    UsageEventView,
    UsagePage,
)
from exocorp.model.base import SpecModel, WireModel
from exocorp.store import NotFound, billing, metering, registry
from exocorp.store.pages import MAX_PAGE_SIZE

__all__ = ["UsageQuery", "routes"]

routes = RouteTable("billing", "Price books, billing accounts, credits and usage events.")


def _account_id(request: web.Request) -> str:
    value = request.match_info["account_id"]
    if len(value) > 40:
        raise not_found(f"billing account {value[:40]!r}... not found")
    return value


# -- admin: accounts --------------------------------------------------------------------------


class AdminAccountView(AccountView):
    limits: LimitUsage
    """The account's limits and what it uses of each (as its ``me`` shows them)."""
    user_disabled: bool
    """Its owner is disabled (``POST /api/admin/users/{user_id}/disable``): no login, no
    session, no agent until enabled again."""


class AdminAccountList(WireModel):
    items: list[AdminAccountView]


@routes.get("/api/admin/billing/accounts", summary="All billing accounts",
            auth=Auth.PLATFORM_OWNER, response=AdminAccountList)
async def list_billing_accounts(request: web.Request) -> web.Response:
    """Every billing account: owner, balance (integer minor units; negative when running time
    outran the credit), state (``active`` or ``suspended``), whether resume and provision are
    allowed (``billingActive``), and the effective price book (``assigned`` or ``default``;
    absent when none applies, which refuses provisioning), its ``limits`` with what it uses
    of each, and whether its owner is disabled (``userDisabled``)."""
    require_platform_owner(request)
    async with request.app[DATABASE].sessionmaker() as s:
        summaries = await admin.list_account_summaries(s)
        items = [AdminAccountView(**AccountView.of(x).model_dump(),
                                  limits=await limit_usage(request.app, s, x.account.user_id),
                                  user_disabled=x.user_disabled)
                 for x in summaries]
    return json_response(AdminAccountList(items=items))


@routes.put("/api/admin/billing/accounts/{account_id}/price-book",
            summary="Assign a price book to an account", auth=Auth.PLATFORM_OWNER,
            body=AssignPriceBookBody, response=AccountView, errors=(404, 409))
async def assign_price_book(request: web.Request) -> web.Response:
    """Charge an account by one price book, or (``priceBookId: null``) by the default book.
    409 when the book's currency is not the account's."""
    account_id = _account_id(request)
    async with audited(request, "billing.price_book.assign") as note:
        require_platform_owner(request)
        body = await json_body(request, AssignPriceBookBody)
        note.details.update(accountId=account_id, priceBookId=body.price_book_id)
        async with request.app[DATABASE].sessionmaker.begin() as s:
            await billing.assign_price_book(s, account_id, body.price_book_id,
                                            now=request.app[CLOCK]())
            summary = await admin.account_summary(s, account_id)
        return json_response(AccountView.of(summary))


@routes.post("/api/admin/billing/accounts/{account_id}/credits", summary="Top up an account",
             auth=Auth.PLATFORM_OWNER, body=TopUpBody, response=CreditView, status=201,
             errors=(404, 409))
async def top_up(request: web.Request) -> web.Response:
    """Credit an account, idempotently by ``reference`` (a payment id): 201 when applied; 200
    with ``applied: false`` and the first entry when that reference was applied already; 409
    when the reference was used for another account or amount. A suspended account whose
    balance ends above zero becomes active again (its paused exocorps stay paused until their
    owner resumes them)."""
    account_id = _account_id(request)
    async with audited(request, "billing.top_up") as note:
        principal = require_platform_owner(request)
        body = await json_body(request, TopUpBody)
        note.reason = body.reason
        note.details.update(accountId=account_id, amount=body.amount, reference=body.reference)
        async with request.app[DATABASE].sessionmaker.begin() as s:
            outcome = await admin.credit_account(
                s, account_id, amount=body.amount, reference=body.reference,
                reason=body.reason, actor_id=principal.user_id, now=request.app[CLOCK]())
            response = await complete_in(s, request, json_response(
                CreditView.of(outcome), status=201 if outcome.created else 200))
        note.details.update(applied=outcome.created, reactivated=outcome.reactivated)
        return response


# -- admin: price books -----------------------------------------------------------------------


@routes.get("/api/admin/billing/price-books", summary="All price books",
            auth=Auth.PLATFORM_OWNER, response=PriceBookList)
async def list_price_books(request: web.Request) -> web.Response:
    """Every price book: rates in minor units per replica-second by component (``*`` for the
    rest), and which one is the default."""
    require_platform_owner(request)
    async with request.app[DATABASE].sessionmaker() as s:
        books = await billing.list_price_books(s)
    return json_response(PriceBookList(items=[PriceBookView.of(b) for b in books]))


@routes.post("/api/admin/billing/price-books", summary="Create a price book",
             auth=Auth.PLATFORM_OWNER, body=PriceBookBody, response=PriceBookView, status=201,
             errors=(409,))
async def create_price_book(request: web.Request) -> web.Response:
    """A new price book (``isDefault: true`` also makes it the default). 409 on a taken name."""
    async with audited(request, "billing.price_book.create") as note:
        require_platform_owner(request)
        body = await json_body(request, PriceBookBody)
        async with request.app[DATABASE].sessionmaker.begin() as s:
            book = await billing.create_price_book(
                s, name=body.name, currency=body.currency, rates=body.rates,
                is_default=body.is_default, now=request.app[CLOCK]())
        note.details.update(priceBookId=book.id, name=book.name, rates=dict(book.rates),
                            isDefault=body.is_default)
        return json_response(PriceBookView.of(book), status=201)


def _book_id(request: web.Request) -> str:
    value = request.match_info["price_book_id"]
    if len(value) > 40:
        raise not_found("price book not found")
    return value


@routes.get("/api/admin/billing/price-books/{price_book_id}", summary="One price book",
            auth=Auth.PLATFORM_OWNER, response=PriceBookView, errors=(404,))
async def get_price_book(request: web.Request) -> web.Response:
    require_platform_owner(request)
    async with request.app[DATABASE].sessionmaker() as s:
        book = await billing.get_price_book(s, _book_id(request))
    return json_response(PriceBookView.of(book))


@routes.put("/api/admin/billing/price-books/{price_book_id}", summary="Change a book's rates",
            auth=Auth.PLATFORM_OWNER, body=PriceBookUpdateBody, response=PriceBookView,
            errors=(404,))
async def update_price_book(request: web.Request) -> web.Response:
    """Replace a price book's rates. Usage recorded from now on is charged at them; past usage
    events keep the rate they were charged at."""
    book_id = _book_id(request)
    async with audited(request, "billing.price_book.update") as note:
        require_platform_owner(request)
        body = await json_body(request, PriceBookUpdateBody)
        note.details.update(priceBookId=book_id, rates=body.rates)
        async with request.app[DATABASE].sessionmaker.begin() as s:
            book = await billing.update_price_book_rates(s, book_id, body.rates)
        return json_response(PriceBookView.of(book))


@routes.post("/api/admin/billing/price-books/{price_book_id}/default",
             summary="Make a price book the default", auth=Auth.PLATFORM_OWNER,
             response=PriceBookView, errors=(404, 409))
async def set_default_price_book(request: web.Request) -> web.Response:
    """The default book prices every account without a book of its own."""
    book_id = _book_id(request)
    async with audited(request, "billing.price_book.set_default") as note:
        require_platform_owner(request)
        note.details.update(priceBookId=book_id)
        async with request.app[DATABASE].sessionmaker.begin() as s:
            book = await billing.set_default_price_book(s, book_id)
        return json_response(PriceBookView.of(book))


# -- runtime: usage ---------------------------------------------------------------------------


class UsageQuery(SpecModel):
    """Query string of ``GET /api/runtime/billing/usage``."""

    company: Annotated[str, Field(min_length=1, max_length=63)]
    """The exocorp's id."""
    component: Annotated[str, Field(min_length=1, max_length=63)] | None = None
    """Only this component's events."""
    since: datetime | None = None
    """Only windows starting at or after this instant (RFC 3339)."""
    until: datetime | None = None
    """Only windows starting before this instant (RFC 3339)."""
    cursor: Annotated[int, Field(ge=0)] | None = None
    """``nextCursor`` of the previous page."""
    limit: Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE)] = 100
    """Events per page."""


def _aware(value: datetime | None, name: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise bad_request(f"{name} needs a time zone, e.g. 2030-01-01T00:00:00Z")
    return value


@routes.get("/api/runtime/billing/usage", summary="An exocorp's usage events", auth=Auth.MEMBER,
            query=UsageQuery, response=UsagePage, errors=(404,))
async def usage_events(request: web.Request) -> web.Response:
    """The usage events of one exocorp (``company``), oldest first: each is the running time
    of one component in one metering window (replica-seconds), the rate applied and the amount
    debited. Filters: ``component``, ``since`` / ``until`` on the window start. Keyset
    pagination: pass ``nextCursor`` back as ``cursor``. For the exocorp's owner, its members
    and platform owners; anyone else gets 404."""
    principal = require_user(request)
    query = query_params(request, UsageQuery)
    since, until = _aware(query.since, "since"), _aware(query.until, "until")
    if since is not None and until is not None and until <= since:
        raise bad_request("until must be later than since")
    if not principal.platform_owner:
        await exocorp_access(request, query.company)
    async with request.app[DATABASE].sessionmaker() as s:
        try:
            await registry.get_exocorp(s, query.company)
        except NotFound:
            raise not_found(f"exocorp {query.company!r} not found") from None
        page = await billing.list_usage(s, exocorp_id=query.company, component=query.component,
                                        since=since, until=until, cursor=query.cursor,
                                        limit=query.limit)
        as_of = await metering.usage_as_of(s, query.company)
    return json_response(UsagePage(
        items=[UsageEventView.of(e) for e in page.items],
        next_cursor=str(page.next_cursor) if page.next_cursor is not None else None,
        usage_as_of=as_of))
