"""The event streams on the unit rig: what a client reads (the current state first, then each
change, keepalives, ``deleted``), who may open one, and the bounds (streams per session, a
client that falls behind, a logout, the gateway stopping)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import aiohttp
import pytest

from exocorp.k8s import resources as r
from exocorp.testing import samples
from tests.plugins.event_stream import next_block, parse_event
from tests.plugins.gateway import Gateway, GatewayFactory
from tests.plugins.gateway_admin import mark_running, platform_owner, provisioned, set_status, user
from tests.plugins.gateway_agents import approved_agent_token, bearer_header

pytestmark = pytest.mark.unit

Obj = dict[str, Any]
HANG = 10.0
"""Guards a read against hanging for ever (a failure, not a speed threshold)."""


async def _block(response: Any) -> bytes:
    return await next_block(response, HANG)


async def _event(response: Any) -> tuple[str, Obj]:
    """The next event (comments and the retry field skipped)."""
    while True:
        event = parse_event(await _block(response))
        if event is not None:
            return event


async def _ended(response: Any) -> bool:
    """The server ended the stream: what remains is read to its end."""
    rest = await asyncio.wait_for(response.content.read(), HANG)
    return response.content.at_eof() and b"event: company" not in rest


async def _open(client: Any, path: str) -> Any:
    response = await client.get(path)
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"] == "text/event-stream"
    assert response.headers["Cache-Control"] == "no-cache"
    return response


async def test_the_stream_starts_with_the_detail_and_follows_each_change(
        gateway: Gateway) -> None:
    await gateway.signup("ada@example.com")
    await gateway.company("acme")
    stream = await _open(gateway.client, "/api/registry/companies/acme/events")
    assert await _block(stream) == b"retry: 2000\n\n"
    event, data = await _event(stream)
    detail = await (await gateway.client.get("/api/registry/companies/acme")).json()
    assert (event, data) == ("company", detail)
    assert data["actions"]["provision"]["code"] == "draft_missing"

    mark_running(gateway, "acme", provisioned(samples.draft("1.0.0")["config"]))
    event, data = await _event(stream)
    assert (event, data["phase"]) == ("company", "Running")
    assert data == await (await gateway.client.get("/api/registry/companies/acme")).json()

    obj = gateway.kube.objects.pop((r.EXOCORPS.plural, "", "acme"))
    gateway.cache.exocorps.observe(obj, deleted=True)
    assert await _event(stream) == ("deleted", {"id": "acme"})
    assert await _ended(stream)


async def test_strangers_and_anonymous_callers_are_refused_like_the_read(
        gateway: Gateway) -> None:
    await gateway.signup("ada@example.com")
    await gateway.company("acme")
    stranger, _ = await user(gateway, "eve@example.com")
    for path in ("/api/registry/companies/acme/events", "/api/registry/companies/nope/events"):
        response = await stranger.get(path)
        assert (response.status, (await response.json())["code"]) == (404, "not_found")
    anonymous = aiohttp.ClientSession(base_url=str(gateway.client.make_url("/")))
    try:
        for path in ("/api/registry/companies/acme/events", "/api/registry/my-companies/events"):
            assert (await anonymous.get(path)).status == 401
    finally:
        await anonymous.close()
    # A platform owner reads any exocorp through the admin API, and streams it there.
    admin = await platform_owner(gateway)
    assert (await admin.get("/api/registry/companies/acme/events")).status == 404
    stream = await _open(admin, "/api/admin/companies/acme/events")
    event, data = await _event(stream)
    details = await (await admin.get("/api/admin/companies/acme/details")).json()
    assert (event, data) == ("company", details)
    stream.close()


async def test_my_companies_tells_only_the_callers_changes(gateway: Gateway) -> None:
    await gateway.signup("ada@example.com")
    await gateway.company("acme")
    other, _ = await user(gateway, "eve@example.com")
    stream = await _open(gateway.client, "/api/registry/my-companies/events")
    assert await _block(stream) == b"retry: 2000\n\n"
    await gateway.company("globex", client=other)  # someone else's: never told
    await gateway.company("initech")
    event, data = await _event(stream)
    listed = await (await gateway.client.get("/api/registry/my-companies")).json()
    assert (event, data) == ("company", next(c for c in listed["companies"]
                                             if c["id"] == "initech"))
    set_status(gateway, "globex", {"observedGeneration": 1})
    set_status(gateway, "acme", {"observedGeneration": 1}, paused=True, pauseReason="audit")
    event, data = await _event(stream)
    assert (event, data["id"], data["paused"]) == ("company", "acme", True)
    obj = gateway.kube.objects.pop((r.EXOCORPS.plural, "", "initech"))
    gateway.cache.exocorps.observe(obj, deleted=True)
    assert await _event(stream) == ("deleted", {"id": "initech"})
    stream.close()


async def test_keepalives_and_a_logout_ends_the_stream(make_gateway: GatewayFactory) -> None:
    gateway = await make_gateway(stream_keepalive_seconds=0.05)
    await gateway.signup("ada@example.com")
    await gateway.company("acme")
    stream = await _open(gateway.client, "/api/registry/companies/acme/events")
    await _event(stream)
    assert await _block(stream) == b": keepalive\n\n"
    assert (await gateway.client.post("/api/auth/logout")).status == 204
    assert await _ended(stream)


async def test_streams_per_session_are_bounded(make_gateway: GatewayFactory) -> None:
    gateway = await make_gateway(max_streams_per_session=2)
    await gateway.signup("ada@example.com")
    await gateway.company("acme")
    first = await _open(gateway.client, "/api/registry/companies/acme/events")
    second = await _open(gateway.client, "/api/registry/my-companies/events")
    refused = await gateway.client.get("/api/registry/companies/acme/events")
    assert (refused.status, (await refused.json())["code"]) == (429, "too_many_streams")
    other, _ = await user(gateway, "eve@example.com")  # another session is not affected
    third = await _open(other, "/api/registry/my-companies/events")
    first.close()
    await asyncio.sleep(0)
    for _ in range(100):  # the server notices the closed connection on its next write
        set_status(gateway, "acme", {"observedGeneration": 1})
        answer = await gateway.client.get("/api/registry/companies/acme/events")
        if answer.status == 200:
            break
        await asyncio.sleep(0.05)
    assert answer.status == 200
    for response in (second, third, answer):
        response.close()


async def test_a_client_that_falls_behind_is_dropped(make_gateway: GatewayFactory) -> None:
    gateway = await make_gateway(stream_queue_limit=2)
    await gateway.signup("ada@example.com")
    for slug in ("acme", "globex", "initech"):
        await gateway.company(slug)
    others = gateway.cache.exocorps.subscriptions  # the app's own (usage totals)
    stream = await _open(gateway.client, "/api/registry/my-companies/events")
    await _block(stream)
    # Three objects change before the stream can render any: more than it may have waiting.
    for slug in ("acme", "globex", "initech"):
        set_status(gateway, slug, {"observedGeneration": 1})
    assert await _ended(stream)
    assert gateway.cache.exocorps.subscriptions == others


async def test_stopping_the_gateway_ends_open_streams(gateway: Gateway) -> None:
    await gateway.signup("ada@example.com")
    await gateway.company("acme")
    streams = [await _open(gateway.client, "/api/registry/companies/acme/events"),
               await _open(gateway.client, "/api/registry/my-companies/events")]
    await _event(streams[0])
    closing = asyncio.ensure_future(gateway.client.server.runner.cleanup())
    for stream in streams:
        assert await _ended(stream)
    await asyncio.wait_for(closing, HANG)
    assert gateway.cache.exocorps.subscriptions == 0


async def test_a_stream_ends_after_its_lifetime_and_a_reconnect_starts_from_now(
        make_gateway: GatewayFactory) -> None:
    gateway = await make_gateway(stream_max_seconds=0.2)
    await gateway.signup("ada@example.com")
    await gateway.company("acme")
    stream = await _open(gateway.client, "/api/registry/companies/acme/events")
    await _event(stream)
    assert await _ended(stream)
    set_status(gateway, "acme", {"observedGeneration": 1}, paused=True, pauseReason="audit")
    again = await _open(gateway.client, "/api/registry/companies/acme/events")
    event, data = await _event(again)
    assert (event, data["paused"]) == ("company", True)
    again.close()


async def test_an_agent_streams_only_the_exocorps_its_token_reaches(gateway: Gateway) -> None:
    await gateway.signup("ada@example.com")
    await gateway.company("payroll")
    bearer = await approved_agent_token(gateway, "agent-co")
    agent = gateway.new_client()
    agent.headers.update(bearer_header(bearer))
    refused = await agent.get("/api/registry/companies/payroll/events")
    assert (refused.status, (await refused.json())["code"]) == (403, "agent_scope")
    stream = await _open(agent, "/api/registry/my-companies/events")
    await _block(stream)
    set_status(gateway, "payroll", {"observedGeneration": 1}, paused=True, pauseReason="x")
    set_status(gateway, "agent-co", {"observedGeneration": 1}, paused=True, pauseReason="y")
    event, data = await _event(stream)
    assert (event, data["id"]) == ("company", "agent-co")
    stream.close()


async def test_an_open_stream_does_not_keep_an_idle_session_alive(
        make_gateway: GatewayFactory) -> None:
    gateway = await make_gateway(stream_keepalive_seconds=0.05, auth_cache_seconds=0,
                                 session_idle_timeout=timedelta(minutes=10))
    await gateway.signup("ada@example.com")
    await gateway.company("acme")
    stream = await _open(gateway.client, "/api/registry/companies/acme/events")
    await _event(stream)
    gateway.clock.advance(minutes=6)  # checked at the next keepalive, but not used
    assert await _block(stream) == b": keepalive\n\n"
    assert await _block(stream) == b": keepalive\n\n"
    gateway.clock.advance(minutes=6)  # 12 minutes without a request: the session is over
    assert await _ended(stream)
    assert (await gateway.client.get("/api/auth/me")).status == 401
