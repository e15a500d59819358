"""``GET /api/registry/my-companies`` with 1,000-exocorp fleets in mind: ``q`` and ``phase``
filters, ``limit`` pages that continue with ``cursor`` (stable while exocorps are added), and
``total``; without parameters the whole fleet, as before."""

from __future__ import annotations

from typing import Any

import pytest

from exocorp.testing import samples
from tests.plugins.gateway import Gateway
from tests.plugins.gateway_admin import set_status, user

pytestmark = pytest.mark.unit

Obj = dict[str, Any]
SLUGS = ("acme", "globex", "initech", "umbrella", "hooli", "vandelay", "acme-labs")


async def _list(gateway: Gateway, query: str = "") -> Obj:
    response = await gateway.client.get(f"/api/registry/my-companies{query}")
    assert response.status == 200, await response.text()
    body: Obj = await response.json()
    return body


async def _fleet(gateway: Gateway) -> None:
    await gateway.signup("ada@example.com")
    for slug in SLUGS:
        await gateway.company(slug, **({"displayName": "Vandelay Industries"}
                                       if slug == "vandelay" else {}))
        gateway.clock.advance(seconds=1)  # distinct creation times, the list's order


async def test_the_whole_fleet_without_parameters(gateway: Gateway) -> None:
    await _fleet(gateway)
    body = await _list(gateway)
    assert [c["id"] for c in body["companies"]] == list(SLUGS)
    assert body["total"] == len(SLUGS)
    assert "nextCursor" not in body


async def test_pages_continue_with_the_cursor_even_when_exocorps_are_added(
        gateway: Gateway) -> None:
    await _fleet(gateway)
    first = await _list(gateway, "?limit=3")
    assert [c["id"] for c in first["companies"]] == ["acme", "globex", "initech"]
    assert first["total"] == len(SLUGS)
    await gateway.company("zeta")  # newest: goes to the end, shifts no page
    seen = [c["id"] for c in first["companies"]]
    cursor = first["nextCursor"]
    while cursor is not None:
        page = await _list(gateway, f"?limit=3&cursor={cursor}")
        seen += [c["id"] for c in page["companies"]]
        cursor = page.get("nextCursor")
    assert seen == [*SLUGS, "zeta"]


async def test_search_and_phase_narrow_the_list(gateway: Gateway) -> None:
    await _fleet(gateway)
    body = await _list(gateway, "?q=ACME")
    assert [c["id"] for c in body["companies"]] == ["acme", "acme-labs"]
    assert body["total"] == 2
    by_name = await _list(gateway, "?q=industries")  # the display name counts too
    assert [c["id"] for c in by_name["companies"]] == ["vandelay"]
    set_status(gateway, "globex", {"observedGeneration": 1}, provisioned=True, stopped=True,
               release={"channel": "stable", "version": "1.0.0"},
               config=samples.draft("1.0.0")["config"])
    stopped = await _list(gateway, "?phase=Stopped")
    assert ([c["id"] for c in stopped["companies"]], stopped["total"]) == (["globex"], 1)
    drafts = await _list(gateway, "?phase=Draft&limit=2")
    assert (len(drafts["companies"]), drafts["total"]) == (2, len(SLUGS) - 1)


async def test_strangers_and_bad_queries(gateway: Gateway) -> None:
    await _fleet(gateway)
    other, _ = await user(gateway, "eve@example.com")
    body = await (await other.get("/api/registry/my-companies?q=acme")).json()
    assert (body["companies"], body["total"]) == ([], 0)
    for query in ("?limit=0", "?limit=501", "?limit=x", "?phase=Sleeping", "?cursor=bm9wZQ",
                  "?cursor=%%%", "?unknown=1"):
        response = await gateway.client.get(f"/api/registry/my-companies{query}")
        assert response.status == 400, query
        assert (await response.json())["code"] == "invalid_request"
