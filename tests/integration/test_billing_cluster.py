"""Billing on the real control plane and PostgreSQL: the operator process accrues running time,
metering services elect a leader through a real Lease, bill the time, and enforce the credit.

No wall-clock thresholds: every wait polls for the state it needs (``eventually``)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from exocorp.api_gateway import workers
from exocorp.api_gateway.keys import DATABASE, KUBE
from exocorp.billing import (
    PAUSE_REASON,
    BillingSettings,
    DefaultPriceBook,
    LeaderElector,
    Meter,
    MeteredWindow,
    MeteringService,
    admin,
    billing_state,
)
from exocorp.billing.metering import Counters
from exocorp.k8s import Kube, Obj
from exocorp.k8s import resources as r
from exocorp.lifecycle import (
    ActionRefusedError,
    ErrorCode,
    LifecycleError,
    perform,
)
from exocorp.model import BILLING_ACTOR, ActionRequest, Exocorp
from exocorp.security import PasswordHasher
from exocorp.store import Database, accounts, audit, billing, registry
from exocorp.store.schema import AccountState, ActorKind, UsageEvent
from exocorp.testing.platform import PLATFORM_NAMESPACE
from exocorp.testing.waiting import eventually
from tests.plugins.platform import Driver

pytestmark = pytest.mark.integration
ON_POSTGRESQL = pytest.mark.parametrize("database_backend", ["postgresql"])




def _settings(identity: str, lease: str, **kw: Any) -> BillingSettings:
    values: dict[str, Any] = {
        "identity": identity, "lease_name": lease, "namespace": PLATFORM_NAMESPACE,
        "lease_duration_seconds": 3.0, "renew_deadline_seconds": 2.0,
        "retry_period_seconds": 0.5, "interval_seconds": 0.5,
        "default_price_book": None,
    }
    values.update(kw)
    return BillingSettings(**values)


def _only(kube: Kube, name: str) -> Any:
    """An Exocorp source with just this test's object (others share the cluster)."""
    async def source() -> Sequence[Obj]:
        body = await kube.get_or_none(r.EXOCORPS, name)
        return [body] if body is not None else []
    return source


@dataclass
class Owner:
    user_id: str
    account_id: str


async def _register(db: Database, hasher: PasswordHasher, name: str, credit: int) -> Owner:
    async with db.sessionmaker.begin() as s:
        new = await accounts.create_user(s, email=f"{name}@example.com", password="pw",
                                         signup_credit=credit, hasher=hasher)
        await registry.create_exocorp(
            s, exocorp_id=name, slug=name, owner_user_id=new.user.id, display_name=name,
            portal_domain=f"{name}.portal.test", app_domain=f"{name}.app.test")
    return Owner(new.user.id, new.account.id)


async def _events(db: Database, name: str) -> list[UsageEvent]:
    async with db.sessionmaker() as s:
        return list((await s.execute(select(UsageEvent).where(UsageEvent.exocorp_id == name)
                                     .order_by(UsageEvent.id))).scalars())


async def _frozen(driver: Driver, name: str) -> Exocorp:
    """Stop the exocorp and wait until its counters no longer move: the status shows no ready
    replica (the operator accrues each interval at the readiness observed at its start, so the
    status that first shows none carries the final counters)."""
    await driver.act(name, "stop")
    await driver.wait(name, "Stopped")

    async def probe() -> Exocorp:
        return await driver.get(name)

    return await eventually(probe, lambda e: all(c.ready == 0 for c in e.status.components),
                            what="no ready replica")


class HangingMeter(Meter):
    """Freezes inside its ``hang_at``-th billing transaction, after writing the usage events
    and the marks but before the commit (as a process stopped by the kernel would)."""

    def __init__(self, database: Database, hang_at: int) -> None:
        super().__init__(database)
        self.hang_at = hang_at
        self.transactions = 0
        self.hanging = asyncio.Event()
        self.uncommitted: list[MeteredWindow] = []

    async def meter_exocorp(self, session: AsyncSession,
                            counters: Counters) -> list[MeteredWindow]:
        windows = await super().meter_exocorp(session, counters)
        if windows:
            self.transactions += 1
            if self.transactions == self.hang_at:
                self.uncommitted = windows
                self.hanging.set()
                await asyncio.Event().wait()  # never: only cancellation (the kill) ends it
        return windows


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


@ON_POSTGRESQL
async def test_killing_the_leader_mid_window_bills_every_second_once(
    driver: Driver, database: Database, fast_hasher: PasswordHasher
) -> None:
    kube = driver.kube
    async with database.sessionmaker.begin() as s:
        await billing.create_price_book(s, name="standard", currency="USD",
                                        rates={"agents": 3, "*": 1}, is_default=True)
    name = await driver.running("meter")
    owner = await _register(database, fast_hasher, name, credit=10**9)
    lease = f"metering-{uuid.uuid4().hex[:8]}"

    # A leads and bills, then freezes inside its second billing transaction, holding the marks'
    # row locks with the window written but not committed. (The operator writes the counters
    # at least every minute.)
    a = MeteringService(kube, database, _settings("gateway-a", lease), exocorps=_only(kube, name),
                        meter=HangingMeter(database, hang_at=2))
    a_task = asyncio.create_task(a.run(release=False))
    assert isinstance(a.meter, HangingMeter)
    await eventually(lambda: asyncio.sleep(0, a.elector.is_leader), what="a leads")
    await asyncio.wait_for(a.meter.hanging.wait(), timeout=300)
    committed = await _events(database, name)
    assert committed, "a running exocorp accrues usage"
    assert all(e.seconds > 0 for e in committed)

    # A loses the API server (its renewals fail): it steps down. B, started now, takes the lease
    # once it has seen A's record unchanged for a lease duration, and meters.
    async def partitioned() -> bool:
        raise OSError("network partition")

    a.elector.try_acquire_or_renew = partitioned  # type: ignore[method-assign]
    b = MeteringService(kube, database, _settings("gateway-b", lease), exocorps=_only(kube, name))
    b_task = asyncio.create_task(b.run())
    try:
        await eventually(lambda: asyncio.sleep(0, b.is_leader and not a.is_leader),
                         what="b takes over")
        holder = (await kube.get(r.LEASES, lease, PLATFORM_NAMESPACE))["spec"]
        assert holder["holderIdentity"] == "gateway-b"
        assert holder["leaseTransitions"] == 1

        # Now A dies: its transaction is rolled back with its connection. B bills that range
        # under the very same window keys.
        await _stop(a_task)
        uncommitted = {w.component: w for w in a.meter.uncommitted}

        async def billed_by_b() -> list[UsageEvent]:
            return [e for e in await _events(database, name) if e.id > committed[-1].id]

        after = await eventually(billed_by_b, lambda events: {e.component for e in events}
                                 >= set(uncommitted), what="b bills the abandoned window")
        for component, window in uncommitted.items():
            first = min((e for e in after if e.component == component), key=lambda e: e.id)
            assert first.window_start == window.window_start
            assert first.seconds >= window.seconds

        exo = await _frozen(driver, name)
        total = exo.status.running_seconds_total
        assert total > 0

        async def metered() -> int:
            return sum(e.seconds for e in await _events(database, name))

        await eventually(metered, lambda seconds: seconds >= total, what="b catches up")
    finally:
        await _stop(b_task)

    events = await _events(database, name)
    per_component: dict[str, int] = {}
    for event in events:
        per_component[event.component] = per_component.get(event.component, 0) + event.seconds
        assert event.amount == event.seconds * (3 if event.component == "agents" else 1)
    assert per_component == exo.status.running_seconds
    assert sum(per_component.values()) == exo.status.running_seconds_total
    keys = [(e.component, e.window_start) for e in events]
    assert len(keys) == len(set(keys))
    async with database.sessionmaker() as s:
        account = await billing.get_account(s, owner.account_id)
        assert account.balance == await billing.ledger_balance(s, owner.account_id)
        assert account.balance == 10**9 - sum(e.amount for e in events)


async def _caller(db: Database, user_id: str) -> perform.Caller:
    async with db.sessionmaker() as s:
        standing = await billing_state(s, user_id)
    return perform.Caller(actor=f"user:{user_id}", billing=standing)


@pytest.fixture
async def gateway_process(driver: Driver, database: Database) -> AsyncIterator[web.Application]:
    """An app carrying what the gateway process carries (database, Kubernetes client) with the
    billing context: the default price book comes from the settings at start-up and metering
    runs until the app stops."""
    app = web.Application()
    app[DATABASE] = database
    app[KUBE] = driver.kube
    app[workers.BILLING_SETTINGS] = _settings(
        "gateway-0", f"metering-{uuid.uuid4().hex[:8]}",
        default_price_book=DefaultPriceBook(rates={"*": 10}))
    app.cleanup_ctx.append(workers.billing)
    client: TestClient[Any, Any] = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield app
    finally:
        await client.close()


@ON_POSTGRESQL
async def test_exhaustion_pauses_refuses_resume_and_a_top_up_allows_it(
    driver: Driver, database: Database, fast_hasher: PasswordHasher,
    gateway_process: web.Application,
) -> None:
    name = await driver.create("broke")
    owner = await _register(database, fast_hasher, name, credit=400)
    await driver.wait(name, "Draft")
    # Provisioning goes through the billing state like the gateway's actions do.
    caller = await _caller(database, owner.user_id)
    assert (caller.billing.active, caller.billing.has_price_book) == (True, True)
    await perform.perform(driver.kube, PLATFORM_NAMESPACE, name,
                          ActionRequest.model_validate({"action": "provision"}),
                          dataclasses.replace(caller, draft=driver.draft))

    # 4 replicas at 10 per replica-second: the 400 of credit run out within seconds of running.
    # (Credit that runs out while the exocorp is still starting pauses it once it runs.)
    async def probe() -> Exocorp:
        return await driver.get(name)

    paused = await eventually(probe, lambda e: e.status.phase == "Paused" and e.spec.paused,
                              what="billing pauses the exocorp")
    assert paused.spec.pause_reason == PAUSE_REASON
    assert paused.spec.last_action is not None
    assert paused.spec.last_action.requested_by == BILLING_ACTOR
    async with database.sessionmaker() as s:
        account = await billing.get_account(s, owner.account_id)
        assert account.state == AccountState.SUSPENDED
        assert account.balance <= 0
        trail = (await audit.query_audit_events(s, exocorp_id=name, action="pause")).items
    assert [(e.actor_kind, e.actor_id, e.reason, e.outcome.value) for e in trail] == [
        (ActorKind.SYSTEM, BILLING_ACTOR, PAUSE_REASON, "succeeded")]

    # Resume and provision-from-stopped are refused while the account is suspended.
    with pytest.raises(LifecycleError) as refused:
        await perform.perform(driver.kube, PLATFORM_NAMESPACE, name,
                              ActionRequest.model_validate({"action": "resume"}),
                              await _caller(database, owner.user_id))
    assert (type(refused.value), refused.value.code) == (
        ActionRefusedError, ErrorCode.BILLING_INACTIVE)
    async with database.sessionmaker() as s:
        standing = await billing_state(s, owner.user_id)
        assert (standing.active, standing.has_price_book) == (False, True)

    # A top-up re-activates the account (the exocorp stays paused) and resume goes through.
    async with database.sessionmaker.begin() as s:
        credit = await admin.credit_account(s, owner.account_id, amount=10**9,
                                            reference=f"pay-{name}")
    assert (credit.account.state, credit.reactivated) == (AccountState.ACTIVE, True)
    assert (await driver.get(name)).spec.paused
    await perform.perform(driver.kube, PLATFORM_NAMESPACE, name,
                          ActionRequest.model_validate({"action": "resume"}),
                          await _caller(database, owner.user_id))
    await driver.wait(name, "Running")
    async with database.sessionmaker() as s:
        # One snapshot for both reads: the metering loop may commit a debit in between.
        if database.engine.dialect.name == "postgresql":
            await s.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        account = await billing.get_account(s, owner.account_id)
        assert account.state == AccountState.ACTIVE
        assert account.balance == await billing.ledger_balance(s, owner.account_id)


async def test_leases_on_the_real_api_server(driver: Driver) -> None:
    """Two electors on a real Lease: one leads; a clean stop hands over at once; a crash hands
    over after the lease duration."""
    kube = driver.kube
    lease = f"metering-{uuid.uuid4().hex[:8]}"
    a = LeaderElector(kube, _settings("a", lease))
    b = LeaderElector(kube, _settings("b", lease))
    a_task = asyncio.create_task(a.run())
    await eventually(lambda: asyncio.sleep(0, a.is_leader), what="a leads")
    b_task = asyncio.create_task(b.run())
    try:
        await eventually(lambda: asyncio.sleep(0, b._observed), what="b reads the lease")
        assert not b.is_leader
        await _stop(a_task)  # a clean stop releases the lease
        released = (await kube.get(r.LEASES, lease, PLATFORM_NAMESPACE))["spec"]
        assert "holderIdentity" not in released
        await eventually(lambda: asyncio.sleep(0, b.is_leader), what="b takes over")
        c = LeaderElector(kube, _settings("c", lease))
        c_task = asyncio.create_task(c.run())
        await _stop_without_release(b, b_task)  # b crashes
        await eventually(lambda: asyncio.sleep(0, c.is_leader), what="c takes over")
        spec = (await kube.get(r.LEASES, lease, PLATFORM_NAMESPACE))["spec"]
        assert (spec["holderIdentity"], spec["leaseTransitions"]) == ("c", 2)
        await _stop(c_task)
    finally:
        for task in (a_task, b_task):
            await _stop(task)


async def _stop_without_release(elector: LeaderElector, task: asyncio.Task[None]) -> None:
    async def crashed() -> None:
        return None

    elector.release = crashed  # type: ignore[method-assign]
    await _stop(task)
