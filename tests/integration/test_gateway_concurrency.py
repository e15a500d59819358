"""Concurrent conflicting requests over HTTP, on the real control plane and both databases:
exactly one wins, every other gets 409, and the loser changed nothing."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from exocorp.store.schema import ExocorpRecord
from tests.plugins import gateway_cluster as support
from tests.plugins.gateway_cluster import GatewayUnderTest, sample_draft, unique_slug
from tests.plugins.platform import CANARY_SECRET

pytestmark = pytest.mark.integration


def _one_winner(results: list[tuple[int, object]]) -> tuple[int, object]:
    statuses = sorted(status for status, _ in results)
    assert len([s for s in statuses if 200 <= s < 300]) == 1, results
    assert all(s == 409 for s in statuses if not 200 <= s < 300), results
    return next(r for r in results if 200 <= r[0] < 300)


async def _ready_company(gateway: GatewayUnderTest) -> tuple[support.Api, str]:
    api = gateway.client()
    await api.signup()
    slug = unique_slug("race")
    await api.ok("POST", "/api/registry/companies", 201,
                 json={"slug": slug, "displayName": "Race", "draft": sample_draft("1.0.0")})
    await api.ok("POST", "/api/registry/provider-secrets", 201,
                 json={"provider": "anthropic", "name": "main", "value": CANARY_SECRET})
    return api, slug


async def test_two_concurrent_provisions_one_wins(gateway: GatewayUnderTest) -> None:
    api, slug = await _ready_company(gateway)
    results = await asyncio.gather(*(api.call("POST", f"/api/registry/companies/{slug}/provision")
                                     for _ in range(2)))
    _one_winner(list(results))
    loser = next(body for status, body in results if status == 409)
    assert loser["code"] in ("invalid_phase", "in_progress", "concurrent_change")
    exo = await gateway.exocorp(slug)
    assert exo is not None
    assert exo.metadata.generation == 2  # one spec change, not two


async def test_conflicting_actions_on_a_running_exocorp_one_wins(
        gateway: GatewayUnderTest) -> None:
    api, slug = await _ready_company(gateway)
    await api.ok("POST", f"/api/registry/companies/{slug}/provision", 202)
    await api.wait_phase(slug, "Running")
    before = await gateway.exocorp(slug)
    assert before is not None
    # Each alone would be accepted; once one is, the exocorp is Starting and rolling out.
    results = await asyncio.gather(
        api.call("POST", f"/api/registry/companies/{slug}/restart"),
        api.call("POST", f"/api/registry/companies/{slug}/update", json={"version": "1.1.0"}),
        api.call("POST", f"/api/registry/companies/{slug}/reprovision"))
    _, winner = _one_winner(list(results))
    assert {body["code"] for code, body in results if code == 409} <= {  # type: ignore[index]
        "in_progress", "invalid_phase", "concurrent_change"}
    after = await gateway.exocorp(slug)
    assert after is not None
    assert after.metadata.generation == (before.metadata.generation or 0) + 1
    assert after.spec.last_action is not None
    assert after.spec.last_action.action.value == winner["action"]  # type: ignore[index]
    last_action = (await api.company(slug))["lastAction"]
    assert last_action["action"] == winner["action"]  # type: ignore[index]

    await api.settled(slug)
    await api.wait_phase(slug, "Running")
    pauses = await asyncio.gather(*(
        api.call("POST", f"/api/registry/companies/{slug}/pause", json={"reason": f"r{i}"})
        for i in range(3)))
    _, paused = _one_winner(list(pauses))
    reason = paused["company"]["pauseReason"]  # type: ignore[index]
    assert (await api.company(slug))["pauseReason"] == reason


async def test_two_owners_racing_for_one_slug(gateway: GatewayUnderTest) -> None:
    alice, bob = gateway.client(), gateway.client()
    await alice.signup()
    await bob.signup()
    slug = unique_slug("taken")
    results = await asyncio.gather(*(
        client.call("POST", "/api/registry/companies", json={"slug": slug, "displayName": name})
        for client, name in ((alice, "Alice"), (bob, "Bob"))))
    _, winner = _one_winner(list(results))
    loser = next(body for status, body in results if status == 409)
    assert loser["code"] == "slug_taken"
    exo = await gateway.exocorp(slug)
    assert exo is not None
    assert exo.spec.display_name == winner["displayName"]  # type: ignore[index]
    async with gateway.database.sessionmaker() as s:
        assert await s.scalar(select(func.count()).select_from(ExocorpRecord).where(
            ExocorpRecord.slug == slug)) == 1


async def test_concurrent_draft_saves_from_the_same_version(gateway: GatewayUnderTest) -> None:
    api, slug = await _ready_company(gateway)
    edits = [sample_draft("1.0.0"), sample_draft("1.1.0")]
    results = await asyncio.gather(*(
        api.call("POST", f"/api/registry/companies/{slug}/draft",
                 json={"draft": draft, "baseVersion": 1}) for draft in edits))
    _, winner = _one_winner(list(results))
    loser = next(body for status, body in results if status == 409)
    assert (loser["code"], loser["currentVersion"]) == ("stale_version", 2)
    saved = await api.ok("GET", f"/api/registry/companies/{slug}/draft")
    assert saved == winner
