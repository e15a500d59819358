"""The audit trail's endpoints: filters, keyset pages in both orders, bad queries, who sees
which events and which names, and that there is no way to change or remove an event."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from exocorp.api_gateway.audit.operator_actions import SYSTEM_AUDIT, record_operator_actions
from exocorp.model import OPERATOR_ACTOR
from tests.plugins.gateway import Gateway
from tests.plugins.gateway_admin import add_member, mark_running, platform_owner, provisioned, user

pytestmark = pytest.mark.unit


async def _page(client: Any, path: str, status: int = 200) -> Any:
    response = await client.get(path)
    assert response.status == status, await response.text()
    return await response.json()


async def _story(gateway: Gateway) -> dict[str, Any]:
    """Owner ada creates acme (draft saves, a refused destroy), member bob saves a draft, and
    eve (a stranger) tries to stop acme and creates her own company."""
    ada = await gateway.signup("ada@example.com")
    await gateway.company("acme")
    bob, bob_id = await user(gateway, "bob@example.com")
    await add_member(gateway, "acme", bob_id)
    for _ in range(3):
        assert (await gateway.client.post("/api/registry/companies/acme/draft",
                                          json={"draft": {}})).status in (200, 201)
        gateway.clock.advance(minutes=1)
    assert (await bob.post("/api/registry/companies/acme/draft",
                           json={"draft": {}})).status == 200
    assert (await gateway.client.delete("/api/registry/companies/acme",
                                        json={"confirm": "nope"})).status == 400
    eve, eve_id = await user(gateway, "eve@example.com")
    assert (await eve.post("/api/registry/companies/acme/stop")).status == 404
    await gateway.company("evil", client=eve)
    return {"ada": ada["user"]["id"], "bob": (bob, bob_id), "eve": (eve, eve_id)}


async def test_platform_owners_read_and_filter_the_whole_trail(gateway: Gateway) -> None:
    people = await _story(gateway)
    admin = await platform_owner(gateway)
    everything = await _page(admin, "/api/admin/audit?limit=500&order=asc")
    actions = [(e["action"], e.get("companyId", None), e["outcome"])
               for e in everything["events"]]
    assert actions == [
        ("auth.signup", None, "succeeded"), ("company.create", "acme", "succeeded"),
        ("auth.signup", None, "succeeded"),
        ("draft.save", "acme", "succeeded"), ("draft.save", "acme", "succeeded"),
        ("draft.save", "acme", "succeeded"), ("draft.save", "acme", "succeeded"),
        ("destroy", "acme", "refused"), ("auth.signup", None, "succeeded"),
        ("stop", "acme", "refused"), ("company.create", "evil", "succeeded"),
        ("auth.login", None, "succeeded")]
    assert "nextCursor" not in everything
    first = everything["events"][0]
    assert first["actor"] == {"kind": "user", "id": people["ada"], "name": "ada@example.com",
                              "platformOwner": False}
    assert first["requestId"]
    assert first["at"].endswith("Z")
    refused = everything["events"][7]
    assert refused["error"].startswith("destroy is irreversible")

    def ids(body: Any) -> list[tuple[str, str]]:
        return [(e["action"], e["outcome"]) for e in body["events"]]

    assert ids(await _page(admin, "/api/admin/audit?company=acme&outcome=refused")) == [
        ("stop", "refused"), ("destroy", "refused")]
    eve_id = people["eve"][1]
    assert ids(await _page(admin, f"/api/admin/audit?actor={eve_id}")) == [
        ("company.create", "succeeded"), ("stop", "refused"), ("auth.signup", "succeeded")]
    assert ids(await _page(admin, "/api/admin/audit?action=draft.save&actorKind=user")) == [
        ("draft.save", "succeeded")] * 4
    assert ids(await _page(admin, "/api/admin/audit?actorKind=operator_client")) == []
    # since (inclusive) / until (exclusive): the three owner saves were a minute apart.
    window = await _page(admin, "/api/admin/audit?action=draft.save&order=asc"
                                "&since=2030-01-01T12:01:00Z&until=2030-01-01T12:03:00Z")
    assert len(window["events"]) == 2


async def test_pages_follow_the_cursor_without_gaps_or_repeats(gateway: Gateway) -> None:
    await _story(gateway)
    admin = await platform_owner(gateway)
    for order in ("desc", "asc"):
        whole = [e["id"] for e in (await _page(
            admin, f"/api/admin/audit?limit=500&order={order}"))["events"]]
        assert whole == sorted(whole, reverse=order == "desc")
        seen: list[int] = []
        cursor = ""
        while True:
            body = await _page(admin, f"/api/admin/audit?limit=5&order={order}{cursor}")
            seen += [e["id"] for e in body["events"]]
            # Events appended between pages never show up in, or shift, the pages being read.
            await gateway.client.post("/api/registry/companies/acme/draft", json={"draft": {}})
            if "nextCursor" not in body:
                break
            cursor = f"&cursor={body['nextCursor']}"
        if order == "desc":
            assert seen == whole
        else:
            assert seen[:len(whole)] == whole


@pytest.mark.parametrize("query", [
    "limit=0", "limit=501", "limit=ten", "cursor=abc", "cursor=-1", "outcome=maybe",
    "actorKind=robot", "since=yesterday", "since=2030-02-30T00:00:00Z", "order=sideways",
    "until=2030-01-01T00:00:00Z&since=2030-01-02T00:00:00Z", "colour=red",
])
async def test_bad_queries_are_400(gateway: Gateway, query: str) -> None:
    admin = await platform_owner(gateway)
    body = await _page(admin, f"/api/admin/audit?{query}", status=400)
    assert body["errors"], body


async def test_an_exocorps_trail_is_for_its_owner_and_members(gateway: Gateway) -> None:
    people = await _story(gateway)
    bob = people["bob"][0]
    eve = people["eve"][0]
    admin = await platform_owner(gateway)
    assert (await admin.post("/api/admin/companies/acme/actions",
                             json={"action": "pause", "reason": "look"})).status == 409
    own = await _page(gateway.client, "/api/registry/companies/acme/audit?order=asc")
    assert [(e["action"], e["outcome"]) for e in own["events"]] == [
        ("company.create", "succeeded"), ("draft.save", "succeeded"),
        ("draft.save", "succeeded"), ("draft.save", "succeeded"), ("draft.save", "succeeded"),
        ("destroy", "refused"), ("stop", "refused"), ("pause", "refused")]
    names = [e["actor"].get("name") for e in own["events"]]
    # Members' addresses are shown; a stranger's and the platform owner's are not.
    assert names == ["ada@example.com"] * 4 + ["bob@example.com", "ada@example.com", None, None]
    assert own["events"][-1]["actor"]["platformOwner"] is True
    assert own["events"][-1]["details"]["via"] == "admin"
    member_view = await _page(bob, "/api/registry/companies/acme/audit?outcome=refused")
    assert [e["action"] for e in member_view["events"]] == ["pause", "stop", "destroy"]
    assert (await eve.get("/api/registry/companies/acme/audit")).status == 404
    assert (await gateway.new_client().get("/api/registry/companies/acme/audit")).status == 401
    assert (await gateway.client.get(
        "/api/registry/companies/acme/audit?company=evil")).status == 400
    other = await _page(eve, "/api/registry/companies/evil/audit")
    assert [e["companyId"] for e in other["events"]] == ["evil"]


async def test_the_trail_cannot_be_changed_through_the_api(gateway: Gateway) -> None:
    await _story(gateway)
    admin = await platform_owner(gateway)
    before = await _page(admin, "/api/admin/audit?limit=500")
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        for path in ("/api/admin/audit", "/api/registry/companies/acme/audit",
                     f"/api/admin/audit/{before['events'][0]['id']}"):
            response = await admin.request(method, path, json={})
            assert response.status in (404, 405), (method, path)
    after = await _page(admin, "/api/admin/audit?limit=500")
    assert after["events"][-len(before["events"]):] == before["events"]


async def test_the_operators_automatic_rollbacks_are_recorded_once_as_system_actions(
        gateway: Gateway) -> None:
    await gateway.signup("ada@example.com")
    await gateway.company("acme")
    ada = (await (await gateway.client.get("/api/auth/me")).json())["user"]["id"]
    history = [
        {"name": "acme-aaa", "number": 3, "version": "1.0.0", "action": "rollback",
         "requestedBy": OPERATOR_ACTOR, "outcome": "Succeeded",
         "createdAt": "2030-01-01T12:05:00Z", "reason": "automatic rollback: crash-looping"},
        {"name": "acme-bbb", "number": 2, "version": "1.2.0", "action": "update",
         "requestedBy": f"user:{ada}", "outcome": "Failed", "createdAt": "2030-01-01T12:03:00Z"},
        {"name": "acme-aaa", "number": 1, "version": "1.0.0", "action": "provision",
         "requestedBy": f"user:{ada}", "outcome": "Succeeded",
         "createdAt": "2030-01-01T12:00:00Z"}]
    mark_running(gateway, "acme", provisioned(), history=history)
    app = gateway.client.app
    assert app is not None
    # The background pass may run as well: however the passes fall, one event is written.
    await asyncio.gather(record_operator_actions(app), record_operator_actions(app))
    assert await record_operator_actions(app) == 0
    app[SYSTEM_AUDIT].done.clear()  # another replica, or a restart: the database remembers
    assert await record_operator_actions(app) == 0
    trail = await _page(gateway.client, "/api/registry/companies/acme/audit?actor="
                                        f"{OPERATOR_ACTOR}")
    [event] = trail["events"]
    assert (event["action"], event["outcome"], event["actor"], event["at"], event["reason"]) == (
        "rollback", "succeeded",
        {"kind": "system", "id": OPERATOR_ACTOR, "name": "platform", "platformOwner": False},
        "2030-01-01T12:05:00Z", "automatic rollback: crash-looping")
    assert event["details"] == {"automatic": True, "revision": "acme-aaa", "number": 3,
                                "version": "1.0.0"}
