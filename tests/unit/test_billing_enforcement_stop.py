"""Issue 13 (2): billing enforcement only paused a suspended account's Running exocorps, and a
pause keeps the portal and app running (and billed) for ever, so the debt grew without bound.
Now an account suspended for longer than the grace period has every exocorp that is not at rest
stopped by ``system:billing``, audited; a top-up restarts the clock for the next suspension.
Runs the real lifecycle writes against the unit rig's in-memory API server."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from exocorp.billing import PAUSE_REASON, STOP_REASON, BillingSettings, Enforcer
from exocorp.k8s import resources as r
from exocorp.model import BILLING_ACTOR
from exocorp.store import billing
from exocorp.store.schema import AccountState, AuditEvent
from exocorp.testing import samples
from tests.plugins import gateway_admin as admin_support
from tests.plugins.gateway import Gateway

pytestmark = pytest.mark.unit

GRACE = timedelta(hours=24)


def _spec(gateway: Gateway, name: str) -> dict[str, Any]:
    spec: dict[str, Any] = gateway.kube.objects[(r.EXOCORPS.plural, "", name)]["spec"]
    return spec


def _bodies(gateway: Gateway) -> list[dict[str, Any]]:
    return [obj for (plural, _, _), obj in gateway.kube.objects.items()
            if plural == r.EXOCORPS.plural]


def _show_phase(gateway: Gateway, name: str, phase: str) -> None:
    status = admin_support.running_status(admin_support.generation(gateway, name))
    admin_support.set_status(gateway, name, {**status, "phase": phase})


async def _exhaust(gateway: Gateway, user_id: str) -> str:
    async with gateway.database.sessionmaker.begin() as s:
        account = await billing.get_account_for_user(s, user_id)
        account.balance = 0
        return account.id


async def test_a_suspension_that_outlasts_the_grace_period_stops_the_exocorps(
        gateway: Gateway) -> None:
    client, user_id = await admin_support.user(gateway, "debtor@example.com")
    for slug in ("acme", "idle"):
        await gateway.company(slug, client=client, draft=samples.draft("1.0.0"))
    response = await client.post("/api/registry/provider-secrets", json={
        "provider": "anthropic", "name": "main", "value": "sk-ant-unit-0123456789abcdef"})
    assert response.status == 201
    assert (await client.post("/api/registry/companies/acme/provision")).status == 202
    _show_phase(gateway, "acme", "Running")  # "idle" stays a Draft: nothing to stop
    account_id = await _exhaust(gateway, user_id)
    enforcer = Enforcer(gateway.kube, gateway.database, "exocorp-system",
                        clock=gateway.clock, stop_after=GRACE)

    report = await enforcer.run_pass(_bodies(gateway))
    assert (report.suspended, report.paused, report.stopped) == ([account_id], ["acme"], [])
    assert (_spec(gateway, "acme")["paused"], _spec(gateway, "acme").get("stopped")) == (
        True, None)
    _show_phase(gateway, "acme", "Paused")

    gateway.clock.advance(hours=23)  # within the grace period: still only paused
    report = await enforcer.run_pass(_bodies(gateway))
    assert (report.paused, report.stopped) == ([], [])

    gateway.clock.advance(hours=1)
    report = await enforcer.run_pass(_bodies(gateway))
    assert (report.paused, report.stopped, report.refused) == ([], ["acme"], {})
    assert _spec(gateway, "acme")["stopped"] is True
    assert _spec(gateway, "idle").get("provisioned") is None
    _show_phase(gateway, "acme", "Stopped")
    assert (await enforcer.run_pass(_bodies(gateway))).stopped == []  # once

    async with gateway.database.sessionmaker() as s:
        events = (await s.execute(select(AuditEvent).where(
            AuditEvent.exocorp_id == "acme", AuditEvent.actor_id == BILLING_ACTOR)
            .order_by(AuditEvent.id))).scalars().all()
    assert [(e.actor_kind.value, e.action, e.reason, e.outcome.value) for e in events] == [
        ("system", "pause", PAUSE_REASON, "succeeded"),
        ("system", "stop", STOP_REASON, "succeeded")]

    # The owner cannot start it again while suspended.
    assert (await client.post("/api/auth/login", json={
        "email": "debtor@example.com", "password": admin_support.PASSWORD})).status == 200
    response = await client.post("/api/registry/companies/acme/provision")
    assert (response.status, (await response.json())["code"]) == (409, "billing_inactive")


async def test_a_top_up_ends_the_suspension_and_its_clock(gateway: Gateway) -> None:
    _, user_id = await admin_support.user(gateway, "debtor@example.com")
    account_id = await _exhaust(gateway, user_id)
    enforcer = Enforcer(gateway.kube, gateway.database, "exocorp-system",
                        clock=gateway.clock, stop_after=GRACE)
    await enforcer.run_pass([])
    async with gateway.database.sessionmaker.begin() as s:
        account = await billing.get_account(s, account_id)
        assert (account.state, account.suspended_at) == (AccountState.SUSPENDED,
                                                         gateway.clock.now)
    gateway.clock.advance(hours=30)
    async with gateway.database.sessionmaker.begin() as s:
        await billing.top_up(s, account_id=account_id, amount=10, reference="pay-1")
        await billing.set_account_state(s, account_id, AccountState.ACTIVE)
    async with gateway.database.sessionmaker.begin() as s:
        assert (await billing.get_account(s, account_id)).suspended_at is None


def test_the_grace_period_is_a_setting() -> None:
    assert BillingSettings(identity="x").suspension_grace == timedelta(hours=72)
    env = {"EXOCORP_SUSPENSION_GRACE_HOURS": "6"}
    assert BillingSettings.from_env(env).suspension_grace == timedelta(hours=6)
    for bad in ("soon", "-1"):
        with pytest.raises(ValueError, match="EXOCORP_SUSPENSION_GRACE_HOURS"):
            BillingSettings.from_env({"EXOCORP_SUSPENSION_GRACE_HOURS": bad})
