"""The schemathesis run of tests/unit/test_gateway_fuzz.py against the gateway on the real
platform (control plane, operator, SQLite): what the in-memory stand-in of the unit run cannot
show, such as the API server refusing what the gateway writes, must not become a 5xx or an
undocumented answer either. A smaller budget per operation than the unit run (the same
operations, modes and callers), derandomized."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from exocorp.api_gateway.keys import SETTINGS
from exocorp.api_gateway.main import bootstrap_platform_owner
from exocorp.k8s import Kube
from exocorp.k8s import resources as r
from exocorp.security import PasswordHasher
from exocorp.store import Database
from exocorp.store.schema import ExocorpRecord
from tests.plugins.gateway_cluster import GatewayUnderTest, serve_gateway
from tests.unit.test_gateway_fuzz import PASSWORD, ROLES, World, _populate, assert_clean, fuzz

pytestmark = pytest.mark.integration
MAX_EXAMPLES = 3


@pytest.fixture
async def served(platform: Kube, sqlite_database: Database) -> AsyncIterator[GatewayUnderTest]:
    # Generous throttles: the fuzzer is not guessing passwords. Streams end quickly (the fuzzer
    # reads whole bodies).
    under_test = await serve_gateway(platform, sqlite_database, login_max_failures=1_000_000,
                                     login_max_failures_per_ip=1_000_000, stream_max_seconds=0.2)
    try:
        yield under_test
    finally:
        async with sqlite_database.sessionmaker() as s:
            made = (await s.execute(select(ExocorpRecord.id))).scalars().all()
        await under_test.close()
        for name in made:  # everything this test's callers created on the shared cluster
            await platform.delete(r.EXOCORPS, name)


@pytest.mark.parametrize("role", ROLES)
async def test_no_server_error_and_every_response_conforms_on_the_real_platform(
        served: GatewayUnderTest, role: str) -> None:
    await bootstrap_platform_owner(served.database, "root@example.com", PASSWORD,
                                   hasher=PasswordHasher.for_tests())
    world = World(base=served.base, cookie_name=served.app[SETTINGS].cookie_name)
    # The synchronous client runs in a thread; the gateway keeps serving on this loop.
    await asyncio.to_thread(_populate, world, f"-{uuid.uuid4().hex[:6]}")
    tally = await asyncio.to_thread(fuzz, world, role, MAX_EXAMPLES)
    assert_clean(tally)
