"""The real gateway app in this process, on the unit tests' fixtures (a migrated SQLite file and
the in-memory API server) behind a real socket: what bench/action_profile.py and
bench/gateway_read_cpu.py measure without a cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from exocorp.api_gateway.app import create_app
from exocorp.api_gateway.settings import GatewaySettings
from exocorp.security import PasswordHasher
from exocorp.store import Database, billing, open_database, upgrade_to_head
from tests.plugins.gateway import Clock, FakeKube, synced_cache, unit_database


async def gateway(workdir: Path, kube: FakeKube,
                  database_url: str | None = None) -> tuple[TestClient[Any, Any], Database]:
    """A started test client of the app over ``kube``, and its database (dispose it after):
    a migrated SQLite file, or the empty database at ``database_url`` migrated."""
    if database_url is None:
        template = workdir / "template.db"
        await upgrade_to_head(f"sqlite+aiosqlite:///{template}")
        database = await unit_database(template, workdir / "gateway.db")
    else:
        await upgrade_to_head(database_url)
        database = open_database(database_url)
        async with database.sessionmaker.begin() as s:
            await billing.create_price_book(s, name="default", currency="USD", rates={"*": 1},
                                            is_default=True)
    cache = await synced_cache(kube)
    settings = GatewaySettings(cookie_secure=False, signup_requires_owner=False,
                               min_credit_hours=0, signup_max_per_client=10_000)
    app = create_app(settings, kube=kube, database=database, cache=cache,
                     hasher=PasswordHasher.for_tests(), clock=Clock())
    client: TestClient[Any, Any] = TestClient(TestServer(app))
    await client.start_server()
    return client, database
