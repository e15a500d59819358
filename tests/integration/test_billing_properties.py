"""Metering bills every counted second exactly once: property tests on SQLite and PostgreSQL.

A fake operator advances the running-time counters of two exocorps the way the real one does
(whole seconds, ``accruedAt`` moving with the counters). Two meterers share one database and
each works from its own, possibly stale, snapshot of the objects (an old leader still running
while a new one took over). Between them hypothesis interleaves counter updates, passes that
commit, passes that crash before committing (the transaction is rolled back, as when a process
dies), crashes right after a commit, restarts, concurrent passes of both meterers, and top-ups.

At the end one more pass on a fresh snapshot catches up, and then:

- the committed windows of every (exocorp, component) tile ``[0, counter]`` without a gap or an
  overlap (every counted second billed once), and the events in the database are exactly those
  windows (no duplicate, nothing from a rolled-back pass);
- the balance equals credits minus debits, both as stored and as the ledger sums it, and every
  debit is seconds x rate.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from exocorp.billing.metering import Meter, MeteredWindow, PassReport, read_counters
from exocorp.security import PasswordHasher
from exocorp.store import Database, accounts, billing, registry
from exocorp.store import metering as marks_repo
from exocorp.store.schema import UsageEvent

pytestmark = pytest.mark.integration

RATES = {"portal": 3, "agents": 2, "*": 1}
COMPONENTS = ("agents", "app", "portal")
CREDIT = 10_000
_ids = itertools.count()


class Crash(Exception):  # noqa: N818
    """The meterer's process dies here."""


class FakeExocorp:
    """An Exocorp's metadata and running-time status, advanced like the operator does it."""

    def __init__(self, name: str, created: datetime) -> None:
        self.name = name
        self.uid = str(uuid.uuid4())
        self.created = created
        self.accrued = created  # the operator's first pass starts the clock
        self.counters: dict[str, int] = {}

    def accrue(self, ready: tuple[int, int, int], seconds: int) -> None:
        self.accrued += timedelta(seconds=seconds)
        for component, replicas in zip(COMPONENTS, ready, strict=True):
            if replicas:
                self.counters[component] = self.counters.get(component, 0) + replicas * seconds

    def body(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "runningSeconds": dict(self.counters),
            "runningSecondsTotal": sum(self.counters.values()),
            "runningSecondsAccruedAt": self.accrued.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        return {"metadata": {"name": self.name, "uid": self.uid,
                             "creationTimestamp": self.created.strftime("%Y-%m-%dT%H:%M:%SZ")},
                "status": copy.deepcopy(status)}


@dataclass
class Meterer:
    """One gateway replica's metering loop: its Meter and the objects it last listed."""

    database: Database
    meter: Meter = field(init=False)
    view: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.meter = Meter(self.database)

    def restart(self) -> None:
        self.meter = Meter(self.database)
        self.view = []


# Operations hypothesis interleaves.
accrue = st.tuples(st.just("accrue"), st.integers(0, 1),
                   st.tuples(*[st.integers(0, 3)] * 3), st.integers(1, 120))
snapshot = st.tuples(st.just("snapshot"), st.integers(0, 1))
# meter: which meterer, how the pass ends, which exocorp a crash hits, whether it lists the
# objects first (else it works from its last, possibly stale, list).
meter = st.tuples(st.just("meter"), st.integers(0, 1),
                  st.sampled_from(["commit", "crash_before_commit", "crash_after_commit"]),
                  st.integers(0, 1), st.booleans())
both = st.tuples(st.just("both"), st.booleans(), st.booleans())
top_up = st.tuples(st.just("top_up"), st.integers(1, 5_000))
restart = st.tuples(st.just("restart"), st.integers(0, 1))
operations = st.lists(st.one_of(accrue, accrue, snapshot, meter, meter, both, top_up, restart),
                      min_size=3, max_size=40)


async def _setup(db: Database, hasher: PasswordHasher) -> tuple[str, list[FakeExocorp]]:
    n = next(_ids)
    created = datetime(2030, 1, 1, tzinfo=UTC) + timedelta(days=n)
    async with db.sessionmaker.begin() as s:
        if await billing.get_default_price_book(s) is None:
            await billing.create_price_book(s, name="standard", currency="USD", rates=RATES,
                                            is_default=True)
        new = await accounts.create_user(s, email=f"prop{n}-{uuid.uuid4().hex[:6]}@example.com",
                                         password="pw", signup_credit=CREDIT, hasher=hasher)
        exocorps = []
        for i in range(2):
            name = f"prop-{n}-{i}-{uuid.uuid4().hex[:6]}"
            await registry.create_exocorp(
                s, exocorp_id=name, slug=name, owner_user_id=new.user.id, display_name=name,
                portal_domain=f"{name}.portal.test", app_domain=f"{name}.app.test")
            exocorps.append(FakeExocorp(name, created))
    return new.account.id, exocorps


async def _crash_before_commit(meterer: Meterer, at: int, committed: list[MeteredWindow]) -> None:
    """Meter the view; the ``at``-th exocorp with something to bill dies before its commit."""
    pending = 0
    report = PassReport()
    for body in meterer.view:
        counters = read_counters(body)
        if pending == at:
            try:
                async with meterer.database.sessionmaker.begin() as s:
                    windows = await meterer.meter.meter_exocorp(s, counters)
                    if windows:
                        raise Crash
            except Crash:
                break
            pending += 1
            continue
        if await meterer.meter.meter_one(counters, report):
            pending += 1
    committed.extend(report.windows)
    meterer.restart()


async def _run(db: Database, ops: list[tuple[Any, ...]],
               exocorps: list[FakeExocorp]) -> tuple[list[MeteredWindow], int]:
    meterers = [Meterer(db), Meterer(db)]
    committed: list[MeteredWindow] = []
    topped = 0
    account_id = None
    for op in ops:
        kind = op[0]
        if kind == "accrue":
            exocorps[op[1]].accrue(op[2], op[3])
        elif kind == "snapshot":
            meterers[op[1]].view = [e.body() for e in exocorps]
        elif kind == "meter":
            m = meterers[op[1]]
            if op[4]:
                m.view = [e.body() for e in exocorps]
            if op[2] == "crash_before_commit":
                await _crash_before_commit(m, op[3], committed)
            else:
                committed.extend((await m.meter.run_pass(m.view)).windows)
                if op[2] == "crash_after_commit":
                    m.restart()
        elif kind == "both":
            for m, fresh in zip(meterers, op[1:], strict=True):
                if fresh:
                    m.view = [e.body() for e in exocorps]
            reports = await asyncio.gather(*(m.meter.run_pass(m.view) for m in meterers))
            for report in reports:
                committed.extend(report.windows)
        elif kind == "top_up":
            async with db.sessionmaker.begin() as s:
                record = await registry.get_exocorp(s, exocorps[0].name)
                account_id = (await billing.get_account_for_user(s, record.owner_user_id)).id
                await billing.top_up(s, account_id=account_id, amount=op[1],
                                     reference=f"pay-{uuid.uuid4().hex}")
            topped += op[1]
        elif kind == "restart":
            meterers[op[1]].restart()
    final = Meterer(db)  # a new leader after everything: catches up from the marks alone
    final.view = [e.body() for e in exocorps]
    committed.extend((await final.meter.run_pass(final.view)).windows)
    return committed, topped


def _rate(component: str) -> int:
    return RATES.get(component, RATES["*"])


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ops=operations)
async def test_every_counted_second_is_billed_exactly_once(
    database: Database, fast_hasher: PasswordHasher, ops: list[tuple[Any, ...]]
) -> None:
    account_id, exocorps = await _setup(database, fast_hasher)
    committed, topped = await _run(database, ops, exocorps)

    names = {e.name for e in exocorps}
    async with database.sessionmaker() as s:
        events = (await s.execute(
            select(UsageEvent).where(UsageEvent.exocorp_id.in_(names)))).scalars().all()
        stored = (await billing.get_account(s, account_id)).balance
        ledger = await billing.ledger_balance(s, account_id)
        marks = await marks_repo.list_marks(s)

    by_id = {event.id: event for event in events}
    assert len(by_id) == len(committed), "an event was written that no committed pass reported"
    for window in committed:
        event = by_id[window.event_id]
        assert (event.exocorp_id, event.component, event.window_start, event.seconds) == (
            window.exocorp_id, window.component, window.window_start, window.seconds)
        assert event.amount == event.seconds * _rate(event.component) == window.amount

    for exocorp in exocorps:
        for component, counter in exocorp.counters.items():
            ranges = sorted((w.counter_from, w.counter_to) for w in committed
                            if (w.exocorp_id, w.component) == (exocorp.name, component))
            edges = [0] + [end for _, end in ranges]
            assert [start for start, _ in ranges] == edges[:-1], f"gap or overlap: {ranges}"
            assert edges[-1] == counter
            assert marks[(exocorp.name, component)].counter == counter
            starts = [e.window_start for e in events
                      if (e.exocorp_id, e.component) == (exocorp.name, component)]
            assert len(starts) == len(set(starts))
        assert sum(e.seconds for e in events if e.exocorp_id == exocorp.name) == sum(
            exocorp.counters.values())  # what runningSecondsTotal says

    debits = sum(event.amount for event in events)
    assert stored == ledger == CREDIT + topped - debits


async def test_a_loser_of_a_concurrent_race_changes_nothing(
    database: Database, fast_hasher: PasswordHasher
) -> None:
    """Many meterers on one snapshot at once: one window is written, the rest roll back."""
    account_id, exocorps = await _setup(database, fast_hasher)
    exo = exocorps[0]
    exo.accrue((1, 1, 2), 60)
    view = [exo.body()]
    reports = await asyncio.gather(*(Meter(database).run_pass(view) for _ in range(6)))
    windows = [w for r in reports for w in r.windows]
    assert sorted((w.component, w.seconds) for w in windows) == [
        ("agents", 60), ("app", 60), ("portal", 120)]
    assert len([r for r in reports if r.windows]) == 1  # one meterer did all of it
    # The others found the marks moved (after waiting for the winner's commit), or lost the
    # race to create them: either way they wrote nothing.
    assert all(set(r.errors) <= {"lost_race"} for r in reports)
    async with database.sessionmaker() as s:
        assert await billing.ledger_balance(s, account_id) == CREDIT - (60 * 2 + 60 + 120 * 3)
        assert (await billing.get_account(s, account_id)).balance == CREDIT - 540
