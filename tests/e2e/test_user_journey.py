"""A new user on `exocorp dev`: the real gateway process (SQLite, default price book, metering),
the real operator process and the local control plane, driven over HTTP only."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from exocorp.testing.dev import DevPlatform
from exocorp.testing.waiting import eventually
from tests.plugins.http_journey import RecordingApi, sign_up_and_provision
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
    api = RecordingApi(http)
    first = await sign_up_and_provision(api, "e2e", "E2E", CANARY)
    assert first.signup["recoveryKit"]
    slug = first.slug

    async def company() -> dict[str, Any]:
        return await api.call("GET", f"/api/registry/companies/{slug}", 200)

    running = await eventually(company, lambda c: c["phase"] == "Running", within=180,
                               what="Running")
    assert {c["name"] for c in running["components"]} == {"portal", "app", "agents"}

    await api.call("POST", f"/api/registry/companies/{slug}/stop", 202)
    await eventually(company, lambda c: c["phase"] == "Stopped", within=120, what="Stopped")
    await api.call("DELETE", f"/api/registry/companies/{slug}", 202, json={"confirm": slug})

    await eventually(lambda: api.status(f"/api/registry/companies/{slug}"), lambda s: s == 404,
                     within=180, what="destroyed")
    assert not any(CANARY in body for body in api.bodies)
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
