"""Enforcement and admin operations on a real database (SQLite and PostgreSQL), with the
lifecycle API's cluster write replaced by a recorder (the real one: test_billing_cluster.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from exocorp.billing import PAUSE_REASON, EnforcementReport, Enforcer, admin, enforcement
from exocorp.billing.enforcement import SUSPEND_ACTION
from exocorp.billing.settings import DefaultPriceBook
from exocorp.lifecycle import ActionRefusedError, ErrorCode, LifecycleError, perform
from exocorp.model import BILLING_ACTOR, Action
from exocorp.security import PasswordHasher
from exocorp.store import Conflict, Database, accounts, audit, billing, registry
from exocorp.store.schema import AccountState, ActorKind

pytestmark = pytest.mark.integration

WINDOW = datetime(2030, 1, 1, tzinfo=UTC)


class Recorder:
    """Stands in for ``perform.perform``: records pauses, refuses those named in ``refuse``."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str | None, str]] = []
        self.refuse: dict[str, LifecycleError] = {}

    async def __call__(self, kube: Any, namespace: str, name: str, request: Any,
                       caller: perform.Caller, **kw: Any) -> None:
        if name in self.refuse:
            raise self.refuse[name]
        self.calls.append((name, request.action.value, request.reason, caller.actor))


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    rec = Recorder()
    monkeypatch.setattr(perform, "perform", rec)
    return rec


async def _user_with(db: Database, hasher: PasswordHasher, credit: int,
                     n_exocorps: int) -> tuple[str, str, list[str]]:
    tag = uuid.uuid4().hex[:6]
    async with db.sessionmaker.begin() as s:
        if await billing.get_default_price_book(s) is None:
            await billing.create_price_book(s, name="std", currency="USD", rates={"*": 1},
                                            is_default=True)
        new = await accounts.create_user(s, email=f"u-{tag}@example.com", password="pw",
                                         signup_credit=credit, hasher=hasher)
        names = []
        for i in range(n_exocorps):
            name = f"e-{tag}-{i}"
            await registry.create_exocorp(
                s, exocorp_id=name, slug=name, owner_user_id=new.user.id, display_name=name,
                portal_domain=f"{name}.p.test", app_domain=f"{name}.a.test")
            names.append(name)
    return new.user.id, new.account.id, names


def _body(name: str, phase: str) -> dict[str, Any]:
    return {"metadata": {"name": name}, "status": {"phase": phase}}


async def test_exhausted_accounts_are_suspended_and_their_running_exocorps_paused(
    database: Database, fast_hasher: PasswordHasher, recorder: Recorder
) -> None:
    _, broke, (running, starting, paused) = await _user_with(database, fast_hasher, 100, 3)
    _, rich, (other,) = await _user_with(database, fast_hasher, 10_000, 1)
    async with database.sessionmaker.begin() as s:
        await billing.record_usage(s, exocorp_id=running, component="portal",
                                   window_start=WINDOW, seconds=100)  # balance 0
        await billing.record_usage(s, exocorp_id=other, component="portal",
                                   window_start=WINDOW, seconds=100)
    bodies = [_body(running, "Running"), _body(starting, "Starting"), _body(paused, "Paused"),
              _body(other, "Running")]
    enforcer = Enforcer(None, database, "exocorp-system")  # type: ignore[arg-type]
    report = await enforcer.run_pass(bodies)

    assert report.suspended == [broke]
    assert report.paused == [running]
    assert recorder.calls == [(running, Action.PAUSE.value, PAUSE_REASON, BILLING_ACTOR)]
    async with database.sessionmaker() as s:
        assert (await billing.get_account(s, broke)).state == AccountState.SUSPENDED
        assert (await billing.get_account(s, rich)).state == AccountState.ACTIVE
        pauses = (await audit.query_audit_events(s, exocorp_id=running)).items
        suspensions = (await audit.query_audit_events(s, action=SUSPEND_ACTION)).items
    assert [(e.actor_kind, e.actor_id, e.action, e.reason, e.outcome.value) for e in pauses] == [
        (ActorKind.SYSTEM, BILLING_ACTOR, "pause", PAUSE_REASON, "succeeded")]
    assert [e.details["accountId"] for e in suspensions if e.details] == [broke]

    # The exocorp that was starting is paused once it runs; nothing is suspended twice.
    recorder.calls.clear()
    bodies[0], bodies[1] = _body(running, "Paused"), _body(starting, "Running")
    report = await enforcer.run_pass(bodies)
    assert (report.suspended, report.paused) == ([], [starting])


async def test_a_refused_pause_is_retried_and_not_audited(
    database: Database, fast_hasher: PasswordHasher, recorder: Recorder
) -> None:
    _, _, (name,) = await _user_with(database, fast_hasher, 0, 1)
    recorder.refuse[name] = ActionRefusedError(ErrorCode.CONCURRENT_CHANGE, "changed")
    enforcer = Enforcer(None, database, "exocorp-system")  # type: ignore[arg-type]
    report = await enforcer.run_pass([_body(name, "Running")])
    assert report.paused == []
    assert report.refused == {name: "changed"}
    async with database.sessionmaker() as s:
        assert (await audit.query_audit_events(s, exocorp_id=name)).items == []
    del recorder.refuse[name]
    assert (await enforcer.run_pass([_body(name, "Running")])).paused == [name]


async def test_a_top_up_between_suspension_and_pause_prevents_the_pause(
    database: Database, fast_hasher: PasswordHasher, recorder: Recorder
) -> None:
    _, account_id, (name,) = await _user_with(database, fast_hasher, 0, 1)
    enforcer = Enforcer(None, database, "exocorp-system")  # type: ignore[arg-type]
    real = enforcement.Enforcer.suspend_exhausted

    async def suspend_then_top_up(self: Enforcer, report: Any) -> None:
        await real(self, report)
        async with database.sessionmaker.begin() as s:
            await admin.credit_account(s, account_id, amount=50, reference=f"r-{account_id}")

    enforcer.suspend_exhausted = suspend_then_top_up.__get__(enforcer)  # type: ignore[method-assign]
    report = await enforcer.run_pass([_body(name, "Running")])
    assert (report.suspended, report.paused, recorder.calls) == ([account_id], [], [])
    async with database.sessionmaker() as s:
        assert (await billing.get_account(s, account_id)).state == AccountState.ACTIVE


async def test_a_top_up_that_leaves_the_balance_at_or_below_zero_keeps_the_suspension(
    database: Database, fast_hasher: PasswordHasher
) -> None:
    _, account_id, (name,) = await _user_with(database, fast_hasher, 10, 1)
    async with database.sessionmaker.begin() as s:
        await billing.record_usage(s, exocorp_id=name, component="x", window_start=WINDOW,
                                   seconds=100)  # balance -90
    await Enforcer(None, database, "ns").suspend_exhausted(  # type: ignore[arg-type]
        EnforcementReport())
    async with database.sessionmaker.begin() as s:
        outcome = await admin.credit_account(s, account_id, amount=90, reference=f"a-{name}")
    assert (outcome.account.balance, outcome.reactivated) == (0, False)
    assert outcome.account.state == AccountState.SUSPENDED
    async with database.sessionmaker.begin() as s:
        outcome = await admin.credit_account(s, account_id, amount=1, reference=f"b-{name}")
    assert (outcome.account.balance, outcome.reactivated) == (1, True)
    assert outcome.account.state == AccountState.ACTIVE


async def test_the_default_price_book_from_configuration(database: Database) -> None:
    config = DefaultPriceBook(name="basic", currency="EUR", rates={"*": 4})
    async with database.sessionmaker.begin() as s:
        book = await admin.ensure_default_price_book(s, config)
        assert book is not None
        assert (book.name, book.currency, dict(book.rates), book.is_default) == (
            "basic", "EUR", {"*": 4}, True)
    async with database.sessionmaker.begin() as s:  # start-up again: nothing changes
        again = await admin.ensure_default_price_book(s, DefaultPriceBook(name="other"))
        assert again is not None
        assert again.id == book.id
        assert len(await billing.list_price_books(s)) == 1


async def test_without_configuration_no_book_is_created(database: Database) -> None:
    async with database.sessionmaker.begin() as s:
        assert await admin.ensure_default_price_book(s, None) is None
        assert await billing.list_price_books(s) == []


async def test_an_existing_book_with_the_configured_name_becomes_the_default(
    database: Database,
) -> None:
    async with database.sessionmaker.begin() as s:
        existing = await billing.create_price_book(s, name="standard", currency="USD",
                                                   rates={"*": 7})
        book = await admin.ensure_default_price_book(s, DefaultPriceBook())
        assert book is not None
        assert (book.id, book.is_default, dict(book.rates)) == (existing.id, True, {"*": 7})
    async with database.sessionmaker() as s:
        assert await admin.ensure_default_price_book(s, None) is not None


async def test_an_exocorps_price_book_for_its_details(
    database: Database, fast_hasher: PasswordHasher
) -> None:
    _user_id, account_id, (name,) = await _user_with(database, fast_hasher, 0, 1)
    async with database.sessionmaker.begin() as s:
        default = await billing.get_default_price_book(s)
        assert (await admin.price_book_for_exocorp(s, name)) == default
        own = await billing.create_price_book(s, name=f"own-{name}", currency="USD",
                                              rates={"*": 2})
        await billing.assign_price_book(s, account_id, own.id)
        assert (await admin.price_book_for_exocorp(s, name)) == own
        await admin.credit_account(s, account_id, amount=5, reference=f"dup-{name}")
        with pytest.raises(Conflict):
            await admin.credit_account(s, account_id, amount=6, reference=f"dup-{name}")
