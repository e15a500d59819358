"""The billing routes in the real gateway app (its auth, CSRF, error and audit middleware) over
a real database, SQLite and PostgreSQL; the Kubernetes API is the gateway's in-memory stand-in
(billing routes never call it)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from exocorp.api_gateway.app import create_app
from exocorp.api_gateway.settings import GatewaySettings
from exocorp.api_gateway.watch_cache import WatchCache
from exocorp.billing import DefaultPriceBook, admin, billing_state
from exocorp.lifecycle import NO_BILLING, BillingStanding
from exocorp.security import PasswordHasher
from exocorp.store import Database, accounts, audit, billing, registry
from exocorp.store import metering as repo
from exocorp.store.schema import AccountState, Role
from tests.plugins.gateway import FakeKube

pytestmark = pytest.mark.integration

PASSWORD = "correct horse battery staple"


@dataclass
class World:
    client: TestClient[Any, Any]
    db: Database
    admin: str
    owner: str
    owner_account: str
    member: str
    stranger: str
    exocorp: str
    sessions: dict[str, aiohttp.ClientSession] = field(default_factory=dict)

    async def call(self, method: str, path: str, who: str | None, *, admin: bool = False,
                   **kwargs: Any) -> tuple[int, Any]:
        """``who``: a user id logged in with its own cookie jar, or None (anonymous)."""
        session = self.sessions[who] if who else self.sessions["anonymous"]
        async with session.request(method, path, **kwargs) as resp:
            text = await resp.text()
            if text and "json" in resp.headers.get("Content-Type", ""):
                return resp.status, await resp.json(content_type=None)
            return resp.status, text


ACTIVE = (True, True)  # (active, has a price book)
INACTIVE = (False, True)


def judged(standing: BillingStanding) -> tuple[bool, bool]:
    """What the lifecycle decides from (balance, currency and rates are for the credit rule)."""
    return standing.active, standing.has_price_book


@pytest.fixture
async def world(database: Database, fast_hasher: PasswordHasher) -> AsyncIterator[World]:
    tag = uuid.uuid4().hex[:6]
    emails = {}
    async with database.sessionmaker.begin() as s:
        await admin.ensure_default_price_book(s, DefaultPriceBook(name="standard",
                                                                  rates={"*": 2}))
        users = {}
        for who, credit in (("admin", 0), ("owner", 1_000), ("member", 0), ("stranger", 50)):
            emails[who] = f"{who}-{tag}@example.com"
            users[who] = await accounts.create_user(
                s, email=emails[who], password=PASSWORD, signup_credit=credit,
                hasher=fast_hasher, platform_owner=who == "admin")
        name = f"corp-{tag}"
        await registry.create_exocorp(
            s, exocorp_id=name, slug=name, owner_user_id=users["owner"].user.id,
            display_name="Corp", portal_domain=f"{name}.portal.test", app_domain=f"{name}.app.test")
        await registry.add_member(s, exocorp_id=name, user_id=users["member"].user.id,
                                  role=Role.MEMBER)
    kube = FakeKube()
    cache = WatchCache(kube, platform_namespace="exocorp-system")
    for informer in cache.informers:
        informer.synced.set()
    app = create_app(GatewaySettings(cookie_secure=False), kube=kube, database=database,
                     cache=cache, hasher=fast_hasher)
    client: TestClient[Any, Any] = TestClient(TestServer(app))
    await client.start_server()
    world = World(client=client, db=database, admin=users["admin"].user.id,
                  owner=users["owner"].user.id, owner_account=users["owner"].account.id,
                  member=users["member"].user.id, stranger=users["stranger"].user.id,
                  exocorp=name)
    base = str(client.make_url("/"))
    try:
        world.sessions["anonymous"] = aiohttp.ClientSession(base_url=base)
        for who, new in users.items():
            session = aiohttp.ClientSession(base_url=base,
                                            cookie_jar=aiohttp.CookieJar(unsafe=True))
            world.sessions[new.user.id] = session
            async with session.post("/api/auth/login",
                                    json={"email": emails[who], "password": PASSWORD}) as resp:
                assert resp.status == 200, await resp.text()
        yield world
    finally:
        for session in world.sessions.values():
            await session.close()
        await client.close()


ADMIN_ROUTES = [
    ("GET", "/api/admin/billing/accounts", None),
    ("PUT", "/api/admin/billing/accounts/acct_x/price-book", {"priceBookId": None}),
    ("POST", "/api/admin/billing/accounts/acct_x/credits", {"amount": 1, "reference": "r"}),
    ("GET", "/api/admin/billing/price-books", None),
    ("POST", "/api/admin/billing/price-books", {"name": "x", "currency": "USD",
                                                "rates": {"*": 1}}),
    ("GET", "/api/admin/billing/price-books/pb_x", None),
    ("PUT", "/api/admin/billing/price-books/pb_x", {"rates": {"*": 1}}),
    ("POST", "/api/admin/billing/price-books/pb_x/default", None),
]


async def test_admin_routes_need_a_platform_owner(world: World) -> None:
    for method, path, body in ADMIN_ROUTES:
        status, problem = await world.call(method, path, None, json=body)
        assert (status, problem["status"]) == (401, 401), path
        status, problem = await world.call(method, path, world.owner, json=body)
        assert (status, problem["title"]) == (403, "Forbidden"), path
    status, _ = await world.call("GET", "/api/runtime/billing/usage?company=x", None)
    assert status == 401


async def test_the_configured_default_price_book_exists_after_start(world: World) -> None:
    status, body = await world.call("GET", "/api/admin/billing/price-books", world.admin)
    assert status == 200
    defaults = [b for b in body["items"] if b["isDefault"]]
    assert [(b["name"], b["currency"], b["rates"]) for b in defaults] == [
        ("standard", "USD", {"*": 2})]


async def test_price_book_crud(world: World) -> None:
    async def call(method: str, path: str, **kw: Any) -> tuple[int, Any]:
        return await world.call(method, path, world.admin, **kw)

    status, book = await call("POST", "/api/admin/billing/price-books",
                              json={"name": "premium", "currency": "usd",
                                    "rates": {"agents": 5, "*": 1}})
    assert status == 201
    assert (book["name"], book["currency"], book["rates"], book["isDefault"]) == (
        "premium", "USD", {"agents": 5, "*": 1}, False)
    status, problem = await call("POST", "/api/admin/billing/price-books",
                                 json={"name": "premium", "currency": "USD", "rates": {"*": 1}})
    assert (status, problem["errors"][0]["field"]) == (409, "name")

    status, updated = await call("PUT", f"/api/admin/billing/price-books/{book['id']}",
                                 json={"rates": {"agents": 7}})
    assert (status, updated["rates"]) == (200, {"agents": 7})
    status, got = await call("GET", f"/api/admin/billing/price-books/{book['id']}")
    assert (status, got["rates"]) == (200, {"agents": 7})

    status, default = await call("POST", f"/api/admin/billing/price-books/{book['id']}/default")
    assert (status, default["isDefault"]) == (200, True)
    _, listing = await call("GET", "/api/admin/billing/price-books")
    assert [b["name"] for b in listing["items"] if b["isDefault"]] == ["premium"]

    for method, path in (("GET", "/api/admin/billing/price-books/pb_nope"),
                         ("PUT", "/api/admin/billing/price-books/pb_nope"),
                         ("POST", "/api/admin/billing/price-books/pb_nope/default")):
        status, problem = await call(method, path, json={"rates": {"*": 1}})
        assert (status, problem["status"]) == (404, 404), path


async def test_bad_input_is_a_400_and_changes_nothing(world: World) -> None:
    async def call(method: str, path: str, **kw: Any) -> tuple[int, Any]:
        return await world.call(method, path, world.admin, **kw)

    _, before = await call("GET", "/api/admin/billing/price-books")
    cases: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", "/api/admin/billing/price-books",
         {"data": b"{not json", "headers": {"Content-Type": "application/json"}}),
        ("POST", "/api/admin/billing/price-books", {"json": ["a", "list"]}),
        ("POST", "/api/admin/billing/price-books",
         {"json": {"name": "x", "currency": "USD", "rates": {"Bad Key": 1}}}),
        ("POST", "/api/admin/billing/price-books",
         {"json": {"name": "x", "currency": "USD", "rates": {"*": -3}}}),
        ("POST", "/api/admin/billing/price-books", {"json": {"name": "x"}}),
        ("PUT", f"/api/admin/billing/price-books/{before['items'][0]['id']}",
         {"json": {"rates": {"*": "free"}}}),
        ("POST", f"/api/admin/billing/accounts/{world.owner_account}/credits",
         {"json": {"amount": 0, "reference": "r"}}),
        ("POST", f"/api/admin/billing/accounts/{world.owner_account}/credits",
         {"json": {"amount": 10}}),
        ("POST", f"/api/admin/billing/accounts/{world.owner_account}/credits",
         {"json": {"amount": 10, "reference": "r", "surprise": True}}),
    ]
    for method, path, kw in cases:
        status, problem = await call(method, path, **kw)
        assert status == 400, (path, kw, problem)
        assert problem["status"] == 400
    status, problem = await call("POST", "/api/admin/billing/price-books",
                                 json={"name": "x", "currency": "USD", "rates": {"*": -3}})
    assert problem["errors"][0]["field"].startswith("rates")
    _, after = await call("GET", "/api/admin/billing/price-books")
    assert after == before
    _, accounts_listing = await call("GET", "/api/admin/billing/accounts")
    owner = next(a for a in accounts_listing["items"] if a["id"] == world.owner_account)
    assert owner["balance"] == 1_000


async def test_accounts_listing_top_up_and_assignment(world: World) -> None:
    async def call(method: str, path: str, **kw: Any) -> tuple[int, Any]:
        return await world.call(method, path, world.admin, **kw)

    status, listing = await call("GET", "/api/admin/billing/accounts")
    assert status == 200
    owner = next(a for a in listing["items"] if a["id"] == world.owner_account)
    assert owner["userId"] == world.owner
    assert owner["email"].startswith("owner-")
    assert (owner["balance"], owner["currency"], owner["state"], owner["billingActive"]) == (
        1_000, "USD", "active", True)
    assert (owner["priceBook"]["name"], owner["priceBook"]["source"]) == ("standard", "default")

    path = f"/api/admin/billing/accounts/{world.owner_account}/credits"
    status, credit = await call("POST", path, json={"amount": 250, "reference": "pay-1",
                                                    "reason": "welcome"})
    assert status == 201
    assert (credit["amount"], credit["applied"], credit["balance"]) == (250, True, 1_250)
    status, replay = await call("POST", path, json={"amount": 250, "reference": "pay-1"})
    assert status == 200
    assert (replay["entryId"], replay["applied"], replay["balance"]) == (
        credit["entryId"], False, 1_250)
    status, problem = await call("POST", path, json={"amount": 999, "reference": "pay-1"})
    assert (status, problem["errors"][0]["field"]) == (409, "reference")
    status, _ = await call("POST", "/api/admin/billing/accounts/acct_nope/credits",
                           json={"amount": 5, "reference": "pay-2"})
    assert status == 404

    _, book = await call("POST", "/api/admin/billing/price-books",
                         json={"name": "euro", "currency": "EUR", "rates": {"*": 1}})
    status, problem = await call("PUT", f"/api/admin/billing/accounts/{world.owner_account}"
                                 "/price-book", json={"priceBookId": book["id"]})
    assert status == 409  # the account is in USD
    _, usd = await call("POST", "/api/admin/billing/price-books",
                        json={"name": "usd-special", "currency": "USD", "rates": {"*": 3}})
    status, account = await call("PUT", f"/api/admin/billing/accounts/{world.owner_account}"
                                 "/price-book", json={"priceBookId": usd["id"]})
    assert status == 200
    assert account["priceBook"] == {"id": usd["id"], "name": "usd-special", "source": "assigned"}
    status, account = await call("PUT", f"/api/admin/billing/accounts/{world.owner_account}"
                                 "/price-book", json={"priceBookId": None})
    assert account["priceBook"]["source"] == "default"

    async with world.db.sessionmaker() as s:
        trail = [(e.action, e.outcome.value) for e in (await audit.query_audit_events(
            s, actor_id=world.admin, newest_first=False)).items
            if e.action.startswith("billing.")]
    assert trail == [
        ("billing.top_up", "succeeded"), ("billing.top_up", "succeeded"),
        ("billing.top_up", "refused"), ("billing.top_up", "refused"),
        ("billing.price_book.create", "succeeded"), ("billing.price_book.assign", "refused"),
        ("billing.price_book.create", "succeeded"), ("billing.price_book.assign", "succeeded"),
        ("billing.price_book.assign", "succeeded")]


async def test_a_top_up_reactivates_a_suspended_account(world: World) -> None:
    async with world.db.sessionmaker.begin() as s:
        account = await billing.get_account_for_user(s, world.member)  # balance 0
        assert await repo.suspend_if_exhausted(s, account.id)
    async with world.db.sessionmaker() as s:
        assert judged(await billing_state(s, world.member)) == INACTIVE
    path = f"/api/admin/billing/accounts/{account.id}/credits"
    _, listing = await world.call("GET", "/api/admin/billing/accounts", world.admin)
    row = next(a for a in listing["items"] if a["id"] == account.id)
    assert (row["state"], row["billingActive"]) == ("suspended", False)
    status, credit = await world.call("POST", path, world.admin,
                                      json={"amount": 300, "reference": f"r-{account.id}"})
    assert status == 201
    assert (credit["state"], credit["reactivated"], credit["balance"]) == ("active", True, 300)
    async with world.db.sessionmaker() as s:
        assert judged(await billing_state(s, world.member)) == ACTIVE
        assert (await billing.get_account(s, account.id)).state == AccountState.ACTIVE


async def test_billing_state_for_the_gateway(world: World) -> None:
    async with world.db.sessionmaker() as s:
        assert judged(await billing_state(s, world.owner)) == ACTIVE
        assert judged(await billing_state(s, world.member)) == INACTIVE  # no credit
        assert await billing_state(s, "usr_unknown") == NO_BILLING


async def _usage(world: World, start: datetime, n: int) -> None:
    async with world.db.sessionmaker.begin() as s:
        for i in range(n):
            for component in ("portal", "agents"):
                await billing.record_usage(s, exocorp_id=world.exocorp, component=component,
                                           window_start=start + timedelta(minutes=i), seconds=60)


async def test_usage_for_owner_member_and_platform_owner_only(world: World) -> None:
    start = datetime(2030, 1, 1, tzinfo=UTC)
    await _usage(world, start, 3)
    path = f"/api/runtime/billing/usage?company={world.exocorp}"
    for user in (world.owner, world.member, world.admin):
        status, page = await world.call("GET", path, user)
        assert status == 200
        assert len(page["items"]) == 6
        assert page.get("nextCursor") is None
    first = page["items"][0]
    assert (first["companyId"], first["component"], first["seconds"], first["rate"],
            first["amount"]) == (world.exocorp, "portal", 60, 2, 120)
    assert first["windowStart"].startswith("2030-01-01T00:00:00")
    assert "usageAsOf" not in page  # never metered yet
    # Billed up to the oldest component's mark: the agents lag the portal here.
    async with world.db.sessionmaker.begin() as s:
        for component, accrued in (("portal", start + timedelta(minutes=3)),
                                   ("agents", start + timedelta(minutes=2))):
            assert await repo.advance_mark(
                s, exocorp_id=world.exocorp, component=component, expected=None,
                new=repo.MarkValue(incarnation="uid-1", incarnation_created_at=start,
                                       counter=180, accrued_at=accrued))
    status, page = await world.call("GET", path, world.owner)
    assert page["usageAsOf"].startswith("2030-01-01T00:02:00")
    status, problem = await world.call("GET", path, world.stranger)
    assert (status, problem["status"]) == (404, 404)
    status, _ = await world.call("GET", "/api/runtime/billing/usage?company=nope", world.owner)
    assert status == 404
    status, _ = await world.call("GET", "/api/runtime/billing/usage?company=nope", world.admin,
                                 admin=True)
    assert status == 404


async def test_usage_filters_and_keyset_pagination(world: World) -> None:
    start = datetime(2030, 1, 1, tzinfo=UTC)
    await _usage(world, start, 4)
    base = f"/api/runtime/billing/usage?company={world.exocorp}"
    _, agents = await world.call("GET", base + "&component=agents", world.owner)
    assert [e["component"] for e in agents["items"]] == ["agents"] * 4
    _, window = await world.call(
        "GET", base + "&since=2030-01-01T00:01:00Z&until=2030-01-01T00:03:00Z", world.owner)
    assert sorted({e["windowStart"][:16] for e in window["items"]}) == [
        "2030-01-01T00:01", "2030-01-01T00:02"]
    seen: list[int] = []
    cursor = None
    while True:
        path = base + "&limit=3" + (f"&cursor={cursor}" if cursor else "")
        status, page = await world.call("GET", path, world.member)
        assert status == 200
        seen += [e["id"] for e in page["items"]]
        cursor = page.get("nextCursor")
        if cursor is None:
            break
    assert len(seen) == 8
    assert seen == sorted(set(seen))


@pytest.mark.parametrize("query", [
    "", "company=", "company=x&limit=0", "company=x&limit=501", "company=x&limit=ten",
    "company=x&cursor=-1", "company=x&since=yesterday", "company=x&page=2",
])
async def test_usage_bad_queries_are_400(world: World, query: str) -> None:
    status, problem = await world.call("GET", f"/api/runtime/billing/usage?{query}", world.owner)
    assert (status, problem["status"]) == (400, 400), query


async def test_until_before_since_is_400(world: World) -> None:
    status, _ = await world.call(
        "GET", f"/api/runtime/billing/usage?company={world.exocorp}"
        "&since=2030-01-02T00:00:00Z&until=2030-01-01T00:00:00Z", world.owner)
    assert status == 400
