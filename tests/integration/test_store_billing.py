"""Billing ledger: price books, top-ups, usage charged exactly once, balance = credits - debits."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from exocorp.security import PasswordHasher
from exocorp.store import Conflict, Database, NotFound, accounts, billing, registry
from exocorp.store.schema import AccountState, PriceBook, UsageEvent
from tests.plugins.database import FakeClock

pytestmark = pytest.mark.integration

WINDOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
RATES = {"ceo": 3, "worker": 2, "*": 1}
_ids = itertools.count()


async def _price_book(db: Database, name: str = "standard", *, default: bool = True) -> PriceBook:
    async with db.sessionmaker.begin() as s:
        return await billing.create_price_book(
            s, name=name, currency="usd", rates=RATES, is_default=default
        )


async def _owner_with_exocorp(
    db: Database, hasher: PasswordHasher, credit: int = 1_000
) -> tuple[str, str]:
    """(account id, exocorp id) for a fresh user owning a fresh exocorp."""
    n = next(_ids)
    async with db.sessionmaker.begin() as s:
        new = await accounts.create_user(
            s, email=f"owner{n}@example.com", password="pw", signup_credit=credit, hasher=hasher
        )
        await registry.create_exocorp(
            s,
            exocorp_id=f"corp-{n}",
            slug=f"corp-{n}",
            owner_user_id=new.user.id,
            display_name="Corp",
            portal_domain=f"corp-{n}.portal.test",
            app_domain=f"corp-{n}.app.test",
        )
    return new.account.id, f"corp-{n}"


async def _usage(
    db: Database, exocorp_id: str, component: str, window: datetime, seconds: int
) -> billing.UsageResult:
    async with db.sessionmaker.begin() as s:
        return await billing.record_usage(
            s, exocorp_id=exocorp_id, component=component, window_start=window, seconds=seconds
        )


async def _balances(db: Database, account_id: str) -> tuple[int, int]:
    async with db.sessionmaker() as s:
        stored = (await billing.get_account(s, account_id)).balance
        return stored, await billing.ledger_balance(s, account_id)


async def test_price_books_and_the_single_default(database: Database) -> None:
    async with database.sessionmaker.begin() as s:
        assert await billing.get_default_price_book(s) is None
    standard = await _price_book(database, "standard")
    assert standard.currency == "USD"
    premium = await _price_book(database, "premium", default=False)
    async with database.sessionmaker.begin() as s:
        assert (await billing.get_default_price_book(s)).id == standard.id  # type: ignore[union-attr]
        await billing.set_default_price_book(s, premium.id)
    async with database.sessionmaker() as s:
        books = {b.name: b.is_default for b in await billing.list_price_books(s)}
    assert books == {"standard": False, "premium": True}
    with pytest.raises(Conflict):
        await _price_book(database, "premium")


async def test_concurrent_default_switches_leave_one_default(database: Database) -> None:
    books = [await _price_book(database, f"book{i}", default=False) for i in range(5)]

    async def make_default(book: PriceBook) -> None:
        async with database.sessionmaker.begin() as s:
            await billing.set_default_price_book(s, book.id)

    await asyncio.gather(*(make_default(b) for b in books), return_exceptions=True)
    async with database.sessionmaker() as s:
        defaults = (
            await s.scalars(select(PriceBook.id).where(PriceBook.is_default.is_(True)))
        ).all()
    assert len(defaults) == 1


@pytest.mark.parametrize(
    ("rates", "message"),
    [({"a": -1}, "non-negative"), ({"a": 1.5}, "integer"), ({"a": True}, "integer")],
)
async def test_bad_rates_are_refused(
    database: Database, rates: dict[str, int], message: str
) -> None:
    async with database.sessionmaker.begin() as s:
        with pytest.raises(ValueError, match=message):
            await billing.create_price_book(s, name="bad", currency="USD", rates=rates)
        with pytest.raises(ValueError, match="currency"):
            await billing.create_price_book(s, name="bad", currency="dollars", rates={})


async def test_usage_debits_at_the_component_rate(
    database: Database, fast_hasher: PasswordHasher
) -> None:
    book = await _price_book(database)
    account_id, exocorp_id = await _owner_with_exocorp(database, fast_hasher, credit=1_000)
    ceo = await _usage(database, exocorp_id, "ceo", WINDOW, 60)
    other = await _usage(database, exocorp_id, "sidecar", WINDOW, 60)  # priced by "*"
    assert ceo.created
    assert other.created
    assert (ceo.event.rate, ceo.event.amount, ceo.event.price_book_id) == (3, 180, book.id)
    assert (other.event.rate, other.event.amount) == (1, 60)
    assert ceo.event.account_id == account_id
    assert await _balances(database, account_id) == (760, 760)


async def test_duplicate_usage_window_is_a_no_op(
    database: Database, fast_hasher: PasswordHasher
) -> None:
    await _price_book(database)
    account_id, exocorp_id = await _owner_with_exocorp(database, fast_hasher)
    first = await _usage(database, exocorp_id, "worker", WINDOW, 30)
    again = await _usage(database, exocorp_id, "worker", WINDOW, 45)  # a retried window
    assert first.created
    assert not again.created
    assert again.event.id == first.event.id
    assert again.event.seconds == 30  # the first write wins
    assert await _balances(database, account_id) == (940, 940)
    nxt = await _usage(database, exocorp_id, "worker", WINDOW + timedelta(minutes=1), 30)
    assert nxt.created
    assert await _balances(database, account_id) == (880, 880)


async def test_a_window_is_the_same_instant_in_any_time_zone(
    database: Database, fast_hasher: PasswordHasher
) -> None:
    await _price_book(database)
    account_id, exocorp_id = await _owner_with_exocorp(database, fast_hasher)
    first = await _usage(database, exocorp_id, "ceo", WINDOW, 10)
    paris = WINDOW.astimezone(timezone(timedelta(hours=1)))
    again = await _usage(database, exocorp_id, "ceo", paris, 10)
    assert not again.created
    assert again.event.id == first.event.id
    assert again.event.window_start == WINDOW
    assert again.event.window_start.tzinfo is UTC
    with pytest.raises(ValueError, match="timezone-aware"):
        await _usage(database, exocorp_id, "ceo", WINDOW.replace(tzinfo=None), 10)
    assert await _balances(database, account_id) == (970, 970)


async def test_concurrent_duplicate_usage_is_charged_once(
    database: Database, fast_hasher: PasswordHasher
) -> None:
    await _price_book(database)
    account_id, exocorp_id = await _owner_with_exocorp(database, fast_hasher)
    results = await asyncio.gather(
        *(_usage(database, exocorp_id, "ceo", WINDOW, 60) for _ in range(2)),
        *(_usage(database, exocorp_id, "ceo", WINDOW, 60) for _ in range(6)),
    )
    assert sum(r.created for r in results) == 1
    assert len({r.event.id for r in results}) == 1
    async with database.sessionmaker() as s:
        rows = await s.scalar(select(func.count()).select_from(UsageEvent))
    assert rows == 1
    assert await _balances(database, account_id) == (820, 820)


async def test_usage_may_overdraw_and_is_never_dropped(
    database: Database, fast_hasher: PasswordHasher
) -> None:
    await _price_book(database)
    account_id, exocorp_id = await _owner_with_exocorp(database, fast_hasher, credit=100)
    await _usage(database, exocorp_id, "ceo", WINDOW, 60)
    assert await _balances(database, account_id) == (-80, -80)


async def test_usage_needs_a_price_book(database: Database, fast_hasher: PasswordHasher) -> None:
    account_id, exocorp_id = await _owner_with_exocorp(database, fast_hasher)
    with pytest.raises(Conflict, match="price book"):
        await _usage(database, exocorp_id, "ceo", WINDOW, 60)
    with pytest.raises(NotFound):
        await _usage(database, "no-such-exocorp", "ceo", WINDOW, 60)
    async with database.sessionmaker() as s:
        assert (await billing.list_usage(s, exocorp_id=exocorp_id)).items == []
    assert await _balances(database, account_id) == (1_000, 1_000)


async def test_account_price_book_overrides_the_default(
    database: Database, fast_hasher: PasswordHasher
) -> None:
    await _price_book(database)
    async with database.sessionmaker.begin() as s:
        cheap = await billing.create_price_book(s, name="cheap", currency="USD", rates={"ceo": 1})
        euro = await billing.create_price_book(s, name="euro", currency="EUR", rates={"ceo": 1})
    account_id, exocorp_id = await _owner_with_exocorp(database, fast_hasher)
    async with database.sessionmaker.begin() as s:
        await billing.assign_price_book(s, account_id, cheap.id)
        with pytest.raises(Conflict, match="EUR"):
            await billing.assign_price_book(s, account_id, euro.id)
    result = await _usage(database, exocorp_id, "ceo", WINDOW, 60)
    assert (result.event.price_book_id, result.event.amount) == (cheap.id, 60)
    async with database.sessionmaker.begin() as s:  # new rates apply to new usage only
        await billing.update_price_book_rates(s, cheap.id, {"ceo": 5})
    later = await _usage(database, exocorp_id, "ceo", WINDOW + timedelta(minutes=1), 60)
    assert later.event.amount == 300
    async with database.sessionmaker() as s:
        first = (await billing.list_usage(s, exocorp_id=exocorp_id)).items[0]
    assert first.amount == 60


async def test_account_standing_reads_the_effective_book(
    database: Database, fast_hasher: PasswordHasher
) -> None:
    """What an action plans with, in one statement: the same book effective_price_book says."""
    account_id, _ = await _owner_with_exocorp(database, fast_hasher, credit=700)
    async with database.sessionmaker() as s:
        account = await billing.get_account(s, account_id)
        user_id = account.user_id
        assert await billing.account_standing(s, "usr_nobody") is None
        assert await billing.account_standing(s, user_id) == billing.AccountStanding(
            state=AccountState.ACTIVE, balance=700, currency=account.currency, rates=None)
    default = await _price_book(database)
    async with database.sessionmaker.begin() as s:
        own = await billing.create_price_book(s, name="own", currency="USD", rates={"ceo": 9})
        await billing.create_price_book(s, name="spare", currency="USD", rates={"ceo": 4})
    async with database.sessionmaker() as s:
        standing = await billing.account_standing(s, user_id)
        assert standing is not None
        assert standing.rates == default.rates
    async with database.sessionmaker.begin() as s:
        await billing.assign_price_book(s, account_id, own.id)
        await billing.set_account_state(s, account_id, AccountState.SUSPENDED)
    async with database.sessionmaker() as s:
        assert await billing.account_standing(s, user_id) == billing.AccountStanding(
            state=AccountState.SUSPENDED, balance=700, currency=account.currency,
            rates={"ceo": 9})


async def test_top_up_with_reference_is_idempotent(
    database: Database, fast_hasher: PasswordHasher, clock: FakeClock
) -> None:
    account_id, _ = await _owner_with_exocorp(database, fast_hasher, credit=0)
    other_account, _ = await _owner_with_exocorp(database, fast_hasher, credit=0)
    async with database.sessionmaker.begin() as s:
        first = await billing.top_up(
            s,
            account_id=account_id,
            amount=500,
            reference="pi_123",
            actor_id="usr_admin",
            now=clock(),
        )
        again = await billing.top_up(s, account_id=account_id, amount=500, reference="pi_123")
        await billing.top_up(s, account_id=account_id, amount=250)  # no reference: always applies
        with pytest.raises(Conflict):
            await billing.top_up(s, account_id=other_account, amount=500, reference="pi_123")
        with pytest.raises(ValueError, match="positive"):
            await billing.top_up(s, account_id=account_id, amount=0)
        with pytest.raises(NotFound):
            await billing.top_up(s, account_id="acct_missing", amount=5)
    assert first.created
    assert not again.created
    assert again.entry.id == first.entry.id
    assert await _balances(database, account_id) == (750, 750)
    assert await _balances(database, other_account) == (0, 0)


async def test_account_state_and_listing(database: Database, fast_hasher: PasswordHasher) -> None:
    account_id, _ = await _owner_with_exocorp(database, fast_hasher)
    async with database.sessionmaker.begin() as s:
        suspended = await billing.set_account_state(s, account_id, AccountState.SUSPENDED)
        assert suspended.state is AccountState.SUSPENDED
    async with database.sessionmaker() as s:
        listed = await billing.list_accounts(s)
        assert [(a.id, a.state) for a in listed] == [(account_id, AccountState.SUSPENDED)]
        assert await billing.effective_price_book(s, listed[0]) is None


async def test_usage_listing_filters_and_pages(
    database: Database, fast_hasher: PasswordHasher
) -> None:
    await _price_book(database)
    _, first = await _owner_with_exocorp(database, fast_hasher)
    _, second = await _owner_with_exocorp(database, fast_hasher)
    for minute in range(5):
        for component in ("ceo", "worker"):
            await _usage(database, first, component, WINDOW + timedelta(minutes=minute), 60)
    await _usage(database, second, "ceo", WINDOW, 60)
    async with database.sessionmaker() as s:
        seen: list[UsageEvent] = []
        cursor = None
        while True:
            page = await billing.list_usage(s, exocorp_id=first, cursor=cursor, limit=3)
            seen += page.items
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert len(seen) == 10
        assert len({e.id for e in seen}) == 10
        assert all(e.exocorp_id == first for e in seen)
        workers = await billing.list_usage(
            s,
            exocorp_id=first,
            component="worker",
            since=WINDOW + timedelta(minutes=1),
            until=WINDOW + timedelta(minutes=3),
        )
        assert [e.window_start for e in workers.items] == [
            WINDOW + timedelta(minutes=1),
            WINDOW + timedelta(minutes=2),
        ]


@dataclass(frozen=True)
class TopUp:
    amount: int
    reference: str | None


@dataclass(frozen=True)
class Usage:
    component: str
    window: int
    seconds: int


operations = st.lists(
    st.one_of(
        st.builds(TopUp, st.integers(1, 500), st.sampled_from([None, "r1", "r2"])),
        # Few windows, so that retries of a window are common.
        st.builds(
            Usage,
            st.sampled_from(["ceo", "worker", "other"]),
            st.integers(0, 4),
            st.integers(0, 120),
        ),
    ),
    max_size=25,
)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(ops=operations)
async def test_balance_always_equals_credits_minus_debits(
    database: Database, fast_hasher: PasswordHasher, ops: list[TopUp | Usage]
) -> None:
    # Examples share the test's database; each runs on an account and exocorp of its own.
    async with database.sessionmaker.begin() as s:
        if await billing.get_default_price_book(s) is None:
            await billing.create_price_book(
                s, name="standard", currency="USD", rates=RATES, is_default=True
            )
    account_id, exocorp_id = await _owner_with_exocorp(database, fast_hasher, credit=100)
    expected = 100
    applied: dict[str, int] = {}  # reference -> amount of the top-up that used it
    charged_windows: set[tuple[str, int]] = set()
    for op in ops:
        if isinstance(op, TopUp):
            reference = f"{exocorp_id}-{op.reference}" if op.reference else None
            repeat = reference is not None and reference in applied
            async with database.sessionmaker.begin() as s:
                try:
                    result = await billing.top_up(
                        s, account_id=account_id, amount=op.amount, reference=reference
                    )
                except Conflict:  # the reference was used with another amount
                    assert repeat
                    assert applied[reference] != op.amount  # type: ignore[index]
                    continue
            assert result.created == (not repeat)
            if result.created:
                expected += op.amount
                if reference is not None:
                    applied[reference] = op.amount
        else:
            start = WINDOW + timedelta(minutes=op.window)
            usage = await _usage(database, exocorp_id, op.component, start, op.seconds)
            assert usage.created == ((op.component, op.window) not in charged_windows)
            if usage.created:
                charged_windows.add((op.component, op.window))
                expected -= op.seconds * RATES.get(op.component, RATES["*"])
        assert await _balances(database, account_id) == (expected, expected)
