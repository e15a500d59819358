"""Billing endpoints: admin price books, accounts and top-ups; an exocorp's usage events.

Include in the gateway app with :func:`register`::

    from exocorp.api_gateway import routes_billing
    routes_billing.register(app, database=DATABASE_KEY, kube=KUBE_KEY)

``database`` and ``kube`` are either the objects themselves or the ``web.AppKey`` under which
the gateway keeps them (read at start-up, so they may be created by an earlier cleanup context).
``register`` adds the routes and a cleanup context that creates the configured default price
book if none exists and runs the metering service (leader election, metering, enforcement)
until the app stops.

Authentication is the gateway's. ``register(..., principal=resolver)`` takes a function that
returns the calling user as a :class:`BillingCaller` (None for anonymous callers); the default
reads ``request["principal"]`` (anything with ``user_id`` and ``is_platform_owner`` or
``platform_owner``).

| method | path | who |
|---|---|---|
| GET | /api/admin/billing/accounts | platform owner |
| PUT | /api/admin/billing/accounts/{id}/price-book | platform owner |
| POST | /api/admin/billing/accounts/{id}/credits | platform owner |
| GET, POST | /api/admin/billing/price-books | platform owner |
| GET, PUT | /api/admin/billing/price-books/{id} | platform owner |
| POST | /api/admin/billing/price-books/{id}/default | platform owner |
| GET | /api/runtime/billing/usage?company=... | owner, member, platform owner |
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from exocorp.billing import admin
from exocorp.billing.api import (
    AccountList,
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
from exocorp.billing.metering import InvalidStatus, parse_timestamp
from exocorp.billing.service import ExocorpSource, MeteringService, ensure_default_price_book
from exocorp.billing.settings import BillingSettings
from exocorp.k8s import Kube
from exocorp.store import Conflict, Database, NotFound, billing
from exocorp.store.pages import MAX_PAGE_SIZE

__all__ = [
    "BILLING",
    "BillingCaller",
    "BillingContext",
    "PrincipalResolver",
    "principal_from_request",
    "register",
    "routes",
]

PROBLEM_JSON = "application/problem+json"
routes = web.RouteTableDef()
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class BillingCaller:
    """The authenticated user calling a billing route."""

    user_id: str
    is_platform_owner: bool


PrincipalResolver = Callable[[web.Request], BillingCaller | None]


def principal_from_request(request: web.Request) -> BillingCaller | None:
    """The default resolver: ``request["principal"]`` with ``user_id`` and ``is_platform_owner``
    (or ``platform_owner``); None when absent or without a user."""
    principal: Any = request.get("principal")
    user_id = getattr(principal, "user_id", None)
    if not isinstance(user_id, str) or not user_id:
        return None
    owner = getattr(principal, "is_platform_owner", getattr(principal, "platform_owner", False))
    return BillingCaller(user_id=user_id, is_platform_owner=owner is True)


@dataclass
class BillingContext:
    database: Database | web.AppKey[Database]
    settings: BillingSettings
    kube: Kube | web.AppKey[Kube] | None
    run_metering: bool
    exocorps: ExocorpSource | None
    principal: PrincipalResolver = principal_from_request
    service: MeteringService | None = None
    resolved_database: Database | None = None

    def db(self) -> Database:
        assert self.resolved_database is not None, "the app has not started"
        return self.resolved_database


BILLING = web.AppKey("exocorp_billing", BillingContext)


# -- errors -----------------------------------------------------------------------------------


class Problem(Exception):  # noqa: N818 (an answer, like the store's errors)
    """An error answer (RFC 9457 problem details)."""

    def __init__(self, status: int, title: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail, self.extra = status, title, detail, extra

    def response(self) -> web.Response:
        body = {"type": "about:blank", "title": self.title, "status": self.status,
                "detail": self.detail, **self.extra}
        return web.Response(status=self.status, text=json.dumps(body), content_type=PROBLEM_JSON)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _problems(handler: Handler) -> Handler:
    """Map the errors handlers raise to problem responses (400/401/403/404/409)."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except Problem as problem:
            return problem.response()
        except NotFound as err:
            return Problem(404, "Not Found", str(err)).response()
        except Conflict as err:
            extra = {"field": err.field} if err.field else {}
            return Problem(409, "Conflict", str(err), **extra).response()
        except ValueError as err:
            return Problem(400, "Bad Request", str(err)).response()

    wrapped.__name__ = handler.__name__
    wrapped.__doc__ = handler.__doc__
    return wrapped


def _principal(request: web.Request) -> BillingCaller:
    principal = _ctx(request).principal(request)
    if principal is None:
        raise Problem(401, "Unauthorized", "log in first")
    return principal


def _platform_owner(request: web.Request) -> BillingCaller:
    principal = _principal(request)
    if not principal.is_platform_owner:
        raise Problem(403, "Forbidden", "only platform owners may manage billing")
    return principal


async def _body(request: web.Request, model: type[M]) -> M:
    try:
        data = await request.json(loads=json.loads)
    except (ValueError, UnicodeDecodeError):
        raise Problem(400, "Bad Request", "the body is not valid JSON") from None
    try:
        return model.model_validate(data)
    except ValidationError as err:
        errors = [{"field": ".".join(str(p) for p in e["loc"]) or "(body)", "message": e["msg"]}
                  for e in err.errors(include_url=False)]
        raise Problem(400, "Bad Request", "the body is invalid", errors=errors) from None


def _json(model: BaseModel, status: int = 200) -> web.Response:
    return web.Response(status=status, text=model.model_dump_json(by_alias=True),
                        content_type="application/json")


def _ctx(request: web.Request) -> BillingContext:
    return request.app[BILLING]


# -- admin: accounts --------------------------------------------------------------------------


@routes.get("/api/admin/billing/accounts")
@_problems
async def list_accounts(request: web.Request) -> web.StreamResponse:
    """Every billing account with balance, state and effective price book."""
    _platform_owner(request)
    async with _ctx(request).db().sessionmaker() as session:
        summaries = await admin.list_account_summaries(session)
    return _json(AccountList(items=[AccountView.of(s) for s in summaries]))


@routes.put("/api/admin/billing/accounts/{account_id}/price-book")
@_problems
async def assign_price_book(request: web.Request) -> web.StreamResponse:
    """Charge an account by a given price book (or, with null, by the default one)."""
    principal = _platform_owner(request)
    body = await _body(request, AssignPriceBookBody)
    async with _ctx(request).db().sessionmaker.begin() as session:
        await admin.assign_price_book(session, request.match_info["account_id"],
                                      body.price_book_id, actor_id=principal.user_id)
        summary = await admin.account_summary(session, request.match_info["account_id"])
    return _json(AccountView.of(summary))


@routes.post("/api/admin/billing/accounts/{account_id}/credits")
@_problems
async def top_up(request: web.Request) -> web.StreamResponse:
    """Credit an account; idempotent by ``reference`` (201 when applied, 200 on a replay)."""
    principal = _platform_owner(request)
    body = await _body(request, TopUpBody)
    async with _ctx(request).db().sessionmaker.begin() as session:
        outcome = await admin.credit_account(
            session, request.match_info["account_id"], amount=body.amount,
            reference=body.reference, reason=body.reason, actor_id=principal.user_id)
    return _json(CreditView.of(outcome), 201 if outcome.created else 200)


# -- admin: price books -----------------------------------------------------------------------


@routes.get("/api/admin/billing/price-books")
@_problems
async def list_price_books(request: web.Request) -> web.StreamResponse:
    _platform_owner(request)
    async with _ctx(request).db().sessionmaker() as session:
        books = await billing.list_price_books(session)
    return _json(PriceBookList(items=[PriceBookView.of(b) for b in books]))


@routes.post("/api/admin/billing/price-books")
@_problems
async def create_price_book(request: web.Request) -> web.StreamResponse:
    principal = _platform_owner(request)
    body = await _body(request, PriceBookBody)
    async with _ctx(request).db().sessionmaker.begin() as session:
        book = await admin.create_price_book(
            session, actor_id=principal.user_id, name=body.name, currency=body.currency,
            rates=body.rates, is_default=body.is_default)
    return _json(PriceBookView.of(book), 201)


@routes.get("/api/admin/billing/price-books/{price_book_id}")
@_problems
async def get_price_book(request: web.Request) -> web.StreamResponse:
    _platform_owner(request)
    async with _ctx(request).db().sessionmaker() as session:
        book = await billing.get_price_book(session, request.match_info["price_book_id"])
    return _json(PriceBookView.of(book))


@routes.put("/api/admin/billing/price-books/{price_book_id}")
@_problems
async def update_price_book(request: web.Request) -> web.StreamResponse:
    """Replace a book's rates (usage from now on; past events keep the rate they used)."""
    principal = _platform_owner(request)
    body = await _body(request, PriceBookUpdateBody)
    async with _ctx(request).db().sessionmaker.begin() as session:
        book = await admin.update_price_book(session, request.match_info["price_book_id"],
                                             actor_id=principal.user_id, rates=body.rates)
    return _json(PriceBookView.of(book))


@routes.post("/api/admin/billing/price-books/{price_book_id}/default")
@_problems
async def set_default_price_book(request: web.Request) -> web.StreamResponse:
    principal = _platform_owner(request)
    async with _ctx(request).db().sessionmaker.begin() as session:
        book = await admin.set_default_price_book(session, request.match_info["price_book_id"],
                                                  actor_id=principal.user_id)
    return _json(PriceBookView.of(book))


# -- runtime: usage ---------------------------------------------------------------------------


def _query_time(request: web.Request, name: str) -> datetime | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        return parse_timestamp(raw)
    except InvalidStatus:
        raise Problem(400, "Bad Request", f"{name} must be an RFC 3339 timestamp, e.g. "
                      "2030-01-01T00:00:00Z") from None


def _query_int(request: web.Request, name: str, low: int, high: int) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise Problem(400, "Bad Request", f"{name} must be an integer from {low} to {high}")
    return int(raw)


_USAGE_PARAMS = frozenset({"company", "component", "since", "until", "cursor", "limit"})


@routes.get("/api/runtime/billing/usage")
@_problems
async def usage(request: web.Request) -> web.StreamResponse:
    """An exocorp's usage events, oldest first, keyset-paginated. Query: ``company`` (required),
    ``component``, ``since`` (inclusive) / ``until`` (exclusive) on the window start,
    ``cursor`` (from ``nextCursor``), ``limit`` (1-500, default 100)."""
    principal = _principal(request)
    unknown = set(request.query) - _USAGE_PARAMS
    if unknown:
        raise Problem(400, "Bad Request", f"unknown query parameters: {sorted(unknown)}")
    company = request.query.get("company")
    if not company:
        raise Problem(400, "Bad Request", "company (the exocorp id) is required")
    cursor = _query_int(request, "cursor", 0, 2**63 - 1)
    limit = _query_int(request, "limit", 1, MAX_PAGE_SIZE) or 100
    async with _ctx(request).db().sessionmaker() as session:
        page = await admin.usage_for_exocorp(
            session, company, user_id=principal.user_id,
            is_platform_owner=principal.is_platform_owner,
            component=request.query.get("component") or None,
            since=_query_time(request, "since"), until=_query_time(request, "until"),
            cursor=cursor, limit=limit)
    return _json(UsagePage(
        items=[UsageEventView.of(e) for e in page.items],
        next_cursor=str(page.next_cursor) if page.next_cursor is not None else None))


# -- wiring -----------------------------------------------------------------------------------


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    ctx = app[BILLING]
    database = app[ctx.database] if isinstance(ctx.database, web.AppKey) else ctx.database
    ctx.resolved_database = database
    await ensure_default_price_book(database, ctx.settings)
    if ctx.run_metering and ctx.kube is not None:
        kube = app[ctx.kube] if isinstance(ctx.kube, web.AppKey) else ctx.kube
        ctx.service = MeteringService(kube, database, ctx.settings, exocorps=ctx.exocorps)
        await ctx.service.start()
    try:
        yield
    finally:
        if ctx.service is not None:
            await ctx.service.stop()
            ctx.service = None


def register(
    app: web.Application,
    *,
    database: Database | web.AppKey[Database],
    kube: Kube | web.AppKey[Kube] | None = None,
    settings: BillingSettings | None = None,
    run_metering: bool = True,
    exocorps: ExocorpSource | None = None,
    principal: PrincipalResolver = principal_from_request,
) -> BillingContext:
    """Add the billing routes and start-up work to ``app``. Metering runs when ``kube`` is
    given and ``run_metering`` is true (every replica campaigns; the lease holder meters)."""
    ctx = BillingContext(database=database, settings=settings or BillingSettings.from_env(),
                         kube=kube, run_metering=run_metering, exocorps=exocorps,
                         principal=principal)
    app[BILLING] = ctx
    app.add_routes(routes)
    app.cleanup_ctx.append(_lifecycle)
    return ctx
