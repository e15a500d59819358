"""The event streams on the real platform: the operator's status writes reach an open stream
(through the gateway's watch cache), strangers are refused, and when the gateway stops its
streams end and a client reconnecting to the restarted gateway first gets the current state,
including what changed while it was down."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from exocorp.k8s import Kube
from exocorp.k8s import resources as r
from exocorp.store import Database
from tests.plugins.event_stream import next_block, parse_event
from tests.plugins.gateway_cluster import (
    Api,
    GatewayUnderTest,
    sample_draft,
    serve_gateway,
    unique_slug,
)
from tests.plugins.platform import CANARY_SECRET

pytestmark = pytest.mark.integration

Obj = dict[str, Any]
HANG = 180.0
"""Guards a read against hanging for ever (a failure, not a speed threshold)."""


class Stream:
    """An open event stream, read event by event."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response

    async def next(self) -> tuple[str, Obj] | None:
        """The next event, or None when the server ended the stream."""
        while True:
            block = await next_block(self.response, HANG)
            if not block.endswith(b"\n\n"):  # at the end of the body: what is left, if any
                return None
            event = parse_event(block)
            if event is not None:
                return event

    async def until(self, wanted: Any) -> Obj:
        """Read ``company`` events until one satisfies ``wanted``."""
        while True:
            got = await self.next()
            assert got is not None, "the stream ended first"
            event, data = got
            if event == "company" and wanted(data):
                return data


async def _open(api: Api, path: str) -> Stream:
    response = await api.session.get(api.base + path)
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"] == "text/event-stream"
    return Stream(response)


async def test_status_writes_arrive_live_and_a_restart_loses_nothing(
        platform: Kube, sqlite_database: Database) -> None:
    gateway: GatewayUnderTest | None = await serve_gateway(platform, sqlite_database)
    assert gateway is not None
    slug = unique_slug("live")
    browser = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))  # outlives both
    try:
        api = Api(gateway.base, browser)
        await api.signup()
        await api.ok("POST", "/api/registry/companies", 201,
                     json={"slug": slug, "displayName": "Live Inc"})
        await api.ok("POST", f"/api/registry/companies/{slug}/draft", 201,
                     json={"draft": sample_draft("1.0.0")})
        await api.ok("POST", "/api/registry/provider-secrets", 201,
                     json={"provider": "anthropic", "name": "main", "value": CANARY_SECRET})

        stranger = gateway.client()
        await stranger.signup()
        assert (await stranger.call("GET", f"/api/registry/companies/{slug}/events"))[0] == 404
        anonymous = Api(gateway.base, gateway.client().session)
        assert (await anonymous.call("GET", "/api/registry/my-companies/events"))[0] == 401

        detail = await _open(api, f"/api/registry/companies/{slug}/events")
        fleet = await _open(api, "/api/registry/my-companies/events")
        first = await detail.until(lambda d: True)
        assert (first["phase"], first["actions"]["provision"]["allowed"]) == ("Draft", True)

        await api.ok("POST", f"/api/registry/companies/{slug}/provision", 202)
        # The operator's status writes, as the watch cache sees them, with no polling.
        running = await detail.until(lambda d: d["phase"] == "Running")
        assert {c["name"]: c["ready"] for c in running["components"]} == {
            "portal": 1, "app": 1, "agents": 2}
        assert running["actions"]["pause"]["allowed"]
        assert running["actions"]["provision"]["code"] == "invalid_phase"
        item = await fleet.until(lambda d: d["id"] == slug and d["phase"] == "Running")
        assert item["ready"]

        # The gateway stops: its open streams end (they do not hang until a timeout).
        await gateway.close()
        gateway = None
        assert await detail.next() is None
        assert await fleet.next() is None
        # A change while no gateway runs (e.g. a platform owner with kubectl).
        await platform.patch(r.EXOCORPS, slug, {"spec": {"paused": True,
                                                         "pauseReason": "maintenance"}})

        gateway = await serve_gateway(platform, sqlite_database)
        again = Api(gateway.base, browser)  # the same browser, with its session cookie
        reconnected = await _open(again, f"/api/registry/companies/{slug}/events")
        current = await reconnected.until(lambda d: True)
        assert (current["phase"], current["pauseReason"]) == ("Paused", "maintenance")
        assert current["actions"]["resume"]["allowed"]
        reconnected.response.close()
    finally:
        await browser.close()
        if gateway is not None:
            await gateway.close()
        await platform.delete(r.EXOCORPS, slug)
