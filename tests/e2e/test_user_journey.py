"""A new user on `exocorp dev`: the real gateway process (SQLite, default price book, metering),
the real operator process and the local control plane, driven over HTTP only."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from exocorp.testing.dev import DevPlatform
from exocorp.testing.waiting import eventually
from tests.plugins.platform import quiet_dev_platform

pytestmark = pytest.mark.e2e
CANARY = "sk-e2e-canary-5d1c0b9a"


@pytest.fixture(scope="module")
def dev_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevPlatform]:
    with quiet_dev_platform(tmp_path_factory, "dev") as platform:
        yield platform


@pytest.fixture
async def http(dev_platform: DevPlatform) -> AsyncIterator[aiohttp.ClientSession]:
    assert dev_platform.gateway is not None
    async with aiohttp.ClientSession(base_url=dev_platform.gateway.url,
                                     cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


async def test_signup_to_destroy_on_the_dev_platform(http: aiohttp.ClientSession,
                                                     dev_platform: DevPlatform) -> None:
    bodies: list[str] = []

    async def call(method: str, path: str, expect: int, **kwargs: Any) -> dict[str, Any]:
        async with http.request(method, path, **kwargs) as response:
            text = await response.text()
            bodies.append(text)
            assert response.status == expect, f"{method} {path}: {response.status} {text}"
            return json.loads(text) if text else {}

    email = f"founder-{uuid.uuid4().hex[:6]}@example.com"
    signup = await call("POST", "/api/auth/signup", 201,
                        json={"email": email, "password": "correct horse battery"})
    assert signup["recoveryKit"]
    slug = f"e2e-{uuid.uuid4().hex[:6]}"
    await call("POST", "/api/registry/companies", 201, json={"slug": slug, "displayName": "E2E"})
    await call("POST", f"/api/registry/companies/{slug}/draft", 201, json={"draft": {
        "channel": "stable", "version": "1.0.0",
        "config": {"agents": [{"name": "ceo", "role": "CEO", "provider": "anthropic",
                               "model": "claude"}]}}})
    await call("POST", "/api/registry/provider-secrets", 201,
               json={"provider": "anthropic", "name": "main", "value": CANARY})
    await call("POST", f"/api/registry/companies/{slug}/provision", 202)

    async def company() -> dict[str, Any]:
        return await call("GET", f"/api/registry/companies/{slug}", 200)

    running = await eventually(company, lambda c: c["phase"] == "Running", within=180,
                               what="Running")
    assert {c["name"] for c in running["components"]} == {"portal", "app", "agents"}

    await call("POST", f"/api/registry/companies/{slug}/stop", 202)
    await eventually(company, lambda c: c["phase"] == "Stopped", within=120, what="Stopped")
    await call("DELETE", f"/api/registry/companies/{slug}", 202, json={"confirm": slug})

    async def status() -> int:
        async with http.get(f"/api/registry/companies/{slug}") as response:
            return response.status

    await eventually(status, lambda s: s == 404, within=180, what="destroyed")
    assert not any(CANARY in body for body in bodies)
    assert dev_platform.gateway is not None
    assert CANARY not in dev_platform.gateway.log.read_text()
    assert dev_platform.operator is not None
    assert CANARY not in dev_platform.operator.log.read_text()
    # The gateway process serves its metering metrics next to its own.
    metrics = dev_platform.gateway.metrics()
    assert "exocorp_gateway_http_requests_total" in metrics
    assert "exocorp_metering_last_run_timestamp_seconds" in metrics


def test_dev_platform_state_is_under_its_work_directory(dev_platform: DevPlatform) -> None:
    assert Path(dev_platform.workdir / "exocorp.db").exists()
    assert (dev_platform.workdir / "platform-owner.password").stat().st_mode & 0o077 == 0
