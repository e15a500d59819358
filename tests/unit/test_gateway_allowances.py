"""Issue 13 (2), the rest: with a balance of 1, 25 of 25 provisions were accepted, and nothing
bounded what an account's runtimes request. Now an action that raises what an account runs
needs credit for ``--min-credit-hours`` of all of it (402 ``insufficient_credit``), and
platform owners bound the CPU, memory and storage an account's (and the platform's) runtimes
request (409 ``limit_exceeded``); a refused action changes nothing.

The sample release on 1.0.0 with the sample draft (agents sized medium) runs 4 replicas
(portal, app, 2 agents): 1200m CPU, 2560Mi memory, a 1Gi state volume, 4 x 3600 = 14400 an hour
at the default book's 1 per replica-second."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from exocorp.api_gateway.settings import GatewaySettings
from exocorp.k8s import resources as r
from exocorp.store import billing
from exocorp.store.schema import AuditEvent
from exocorp.testing import samples
from tests.plugins import gateway_admin as admin_support
from tests.plugins.gateway import Gateway, GatewayFactory

pytestmark = pytest.mark.unit

HOURLY = 4 * 3600
HOURS = 3


async def _owner_with_drafts(gateway: Gateway, email: str, slugs: list[str],
                             ) -> tuple[aiohttp.ClientSession, str]:
    client, user_id = await admin_support.user(gateway, email)
    for slug in slugs:
        await gateway.company(slug, client=client, draft=samples.draft("1.0.0"))
    response = await client.post("/api/registry/provider-secrets", json={
        "provider": "anthropic", "name": "main", "value": "sk-ant-unit-0123456789abcdef"})
    assert response.status == 201, await response.text()
    return client, user_id


async def _top_up(gateway: Gateway, user_id: str, amount: int, reference: str) -> None:
    async with gateway.database.sessionmaker.begin() as s:
        account = await billing.get_account_for_user(s, user_id)
        await billing.top_up(s, account_id=account.id, amount=amount, reference=reference)


async def _act(client: aiohttp.ClientSession, slug: str, action: str,
               ) -> tuple[int, dict[str, Any]]:
    response = await client.post(f"/api/registry/companies/{slug}/{action}")
    return response.status, await response.json()


def _provisioned(gateway: Gateway, slug: str) -> bool:
    return bool(gateway.kube.objects[(r.EXOCORPS.plural, "", slug)]["spec"].get("provisioned"))


async def test_a_balance_of_one_no_longer_provisions_twenty_five_exocorps(
        make_gateway: GatewayFactory) -> None:
    gateway = await make_gateway(min_credit_hours=HOURS, signup_credit=1)
    slugs = [f"corp-{i}" for i in range(25)]
    mallory, mallory_id = await _owner_with_drafts(gateway, "mallory@example.com", slugs)
    answers = [await _act(mallory, slug, "provision") for slug in slugs]
    assert [status for status, _ in answers] == [402] * 25
    problem = answers[0][1]
    assert problem["code"] == "insufficient_credit"
    assert (problem["required"], problem["balance"], problem["hours"]) == (
        HOURLY * HOURS, 1, HOURS)
    assert "top it up" in problem["detail"]
    assert not any(_provisioned(gateway, slug) for slug in slugs)
    # The detail's action list gives the same refusal before anyone asks.
    detail = await (await mallory.get("/api/registry/companies/corp-0")).json()
    assert detail["actions"]["provision"]["code"] == "insufficient_credit"
    async with gateway.database.sessionmaker() as s:
        refused = (await s.execute(select(AuditEvent.outcome).where(
            AuditEvent.action == "provision"))).scalars().all()
    assert [o.value for o in refused] == ["refused"] * 25

    # Credit for exactly one exocorp's three hours: one runs, the second would need twice.
    await _top_up(gateway, mallory_id, HOURLY * HOURS - 1, "pay-1")
    assert (await _act(mallory, "corp-0", "provision"))[0] == 202
    status, problem = await _act(mallory, "corp-1", "provision")
    assert (status, problem["code"], problem["required"]) == (
        402, "insufficient_credit", 2 * HOURLY * HOURS)
    assert [_provisioned(gateway, slug) for slug in slugs[:2]] == [True, False]


async def test_with_every_default_a_new_account_runs_one_small_exocorp_not_two(
        make_gateway: GatewayFactory) -> None:
    # The defaults a fresh install has: signup credit, price book, --min-credit-hours.
    defaults = GatewaySettings()
    gateway = await make_gateway(min_credit_hours=defaults.min_credit_hours,
                                 signup_credit=defaults.signup_credit)
    ada, _ = await _owner_with_drafts(gateway, "ada@example.com", ["first", "second"])
    assert (await _act(ada, "first", "provision"))[0] == 202
    status, problem = await _act(ada, "second", "provision")
    assert (status, problem["code"]) == (402, "insufficient_credit")


async def test_concurrent_provisions_cannot_share_one_exocorps_worth_of_credit(
        make_gateway: GatewayFactory) -> None:
    gateway = await make_gateway(min_credit_hours=HOURS, signup_credit=HOURLY * HOURS)
    slugs = [f"corp-{i}" for i in range(10)]
    mallory, _ = await _owner_with_drafts(gateway, "mallory@example.com", slugs)
    patch = gateway.kube.patch

    async def slow_patch(*args: Any, **kwargs: Any) -> Any:  # a real API server takes a while
        await asyncio.sleep(0.2)
        return await patch(*args, **kwargs)

    gateway.kube.patch = slow_patch  # type: ignore[method-assign]
    answers = await asyncio.gather(*(_act(mallory, slug, "provision") for slug in slugs))
    assert sorted(status for status, _ in answers) == [202] + [402] * 9
    assert sum(_provisioned(gateway, slug) for slug in slugs) == 1


async def test_resuming_agents_needs_the_credit_they_would_burn(
        make_gateway: GatewayFactory) -> None:
    gateway = await make_gateway(min_credit_hours=HOURS, signup_credit=HOURLY * HOURS)
    ada, _ = await _owner_with_drafts(gateway, "ada@example.com", ["acme"])
    assert (await _act(ada, "acme", "provision"))[0] == 202
    admin_support.mark_running(gateway, "acme")
    response = await ada.post("/api/registry/companies/acme/pause", json={"reason": "night"})
    assert response.status == 202
    async with gateway.database.sessionmaker.begin() as s:  # two hours of it were billed
        account = await billing.get_account_for_user(s, (await (await ada.get(
            "/api/auth/me")).json())["user"]["id"])
        account.balance = HOURLY * 2
    status, problem = await _act(ada, "acme", "resume")
    # Paused, the portal and app still run (2 replicas): resuming brings the 2 agents back.
    assert (status, problem["code"], problem["hourlyCost"]) == (402, "insufficient_credit",
                                                                HOURLY)
    spec = gateway.kube.objects[(r.EXOCORPS.plural, "", "acme")]["spec"]
    assert spec["paused"] is True
    # Pausing and stopping never need credit.
    assert (await _act(ada, "acme", "stop"))[0] == 202


async def test_resource_limits_bound_what_an_account_and_the_platform_request(
        gateway: Gateway) -> None:
    admin = await admin_support.platform_owner(gateway)
    # One sample exocorp requests 1200m; two do not fit in 2 CPUs.
    response = await admin.put("/api/admin/limits/default", json={
        "maxCpu": "2", "maxMemory": "8Gi", "maxStorage": "10Gi"})
    assert response.status == 200, await response.text()
    mallory, mallory_id = await _owner_with_drafts(
        gateway, "mallory@example.com", ["corp-a", "corp-b"])
    assert (await _act(mallory, "corp-a", "provision"))[0] == 202
    status, problem = await _act(mallory, "corp-b", "provision")
    assert status == 409
    assert {k: problem[k] for k in ("code", "limit", "scope", "max", "requested")} == {
        "code": "limit_exceeded", "limit": "cpu", "scope": "account", "max": "2",
        "requested": "2400m"}
    assert not _provisioned(gateway, "corp-b")
    me = await (await mallory.get("/api/auth/me")).json()
    assert me["limits"] == {"exocorps": 2, "maxCpu": "2", "cpu": "1200m", "maxMemory": "8Gi",
                            "memory": "2560Mi", "maxStorage": "10Gi", "storage": "1Gi"}
    accounts = (await (await admin.get("/api/admin/billing/accounts")).json())["items"]
    mine = next(a for a in accounts if a["userId"] == mallory_id)
    assert mine["limits"] == me["limits"]

    # Stopping one frees its CPU (its volume stays claimed) for the other.
    assert (await _act(mallory, "corp-a", "stop"))[0] == 202
    assert (await _act(mallory, "corp-b", "provision"))[0] == 202

    # A platform-wide cap binds every account together.
    response = await admin.put("/api/admin/limits/platform", json={"maxStorage": "2Gi"})
    assert response.status == 200
    bob, _ = await _owner_with_drafts(gateway, "bob@example.com", ["bob-one"])
    status, problem = await _act(bob, "bob-one", "provision")
    assert (status, problem["code"], problem["limit"], problem["scope"]) == (
        409, "limit_exceeded", "storage", "platform")
    overview = await (await admin.get("/api/admin/limits")).json()
    assert overview["platform"] == {"maxStorage": "2Gi"}
    assert (overview["cpu"], overview["memory"], overview["storage"]) == ("1200m", "2560Mi",
                                                                          "2Gi")
    assert overview["default"] == {"maxCpu": "2", "maxMemory": "8Gi", "maxStorage": "10Gi"}


async def test_limits_take_only_well_formed_quantities(gateway: Gateway) -> None:
    admin = await admin_support.platform_owner(gateway)
    for body in ({"maxCpu": "-1"}, {"maxMemory": "lots"}, {"maxStorage": "1e30"},
                 {"maxMemory": "1e999999999999"}, {"maxCpu": "-1e999999999999"},
                 {"maxCpu": 4}, {"maxGpu": "1"}):
        response = await admin.put("/api/admin/limits/default", json=body)
        assert response.status == 400, (body, response.status)
        assert (await response.json())["code"] == "invalid_request"
    overview = await (await admin.get("/api/admin/limits")).json()
    assert overview["default"] == {}
    response = await admin.put("/api/admin/limits/default", json={"maxCpu": "1500m",
                                                                  "maxMemory": "1.5Gi"})
    assert await response.json() == {"maxCpu": "1500m", "maxMemory": "1536Mi"}


async def test_a_price_change_counts_for_the_exocorps_already_running(
        make_gateway: GatewayFactory) -> None:
    """What each running exocorp costs is memoised per cached version (an action in an account
    of 500 summed them all), and per price: a new rate must reach the running ones too."""
    gateway = await make_gateway(min_credit_hours=HOURS, signup_credit=3 * HOURLY * HOURS)
    ada, _ = await _owner_with_drafts(gateway, "ada@example.com", ["first", "second"])
    assert (await _act(ada, "first", "provision"))[0] == 202
    detail = await (await ada.get("/api/registry/companies/second")).json()
    assert detail["actions"]["provision"]["allowed"] is True  # 2 of 3 units of credit
    async with gateway.database.sessionmaker.begin() as s:
        book = await billing.get_default_price_book(s)
        assert book is not None
        await billing.update_price_book_rates(s, book.id, {"*": 2})
    # At 2 per replica-second both need 4 units; with the first one's cost at the old price,
    # 1 + 2 = 3 would have passed.
    status, problem = await _act(ada, "second", "provision")
    assert (status, problem["code"], problem["required"]) == (
        402, "insufficient_credit", 4 * HOURLY * HOURS)
    assert not _provisioned(gateway, "second")
