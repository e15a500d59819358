"""Fixtures of the gateway's integration tests: the real app, in process, served over real HTTP
on loopback, on the session's control plane (with the real operator running) and a real database
(SQLite or PostgreSQL). Its ``gateway`` fixture is bound for the integration tier by
tests/integration/conftest.py (the unit tier has a ``gateway`` of its own); its helpers are
imported."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from exocorp.api_gateway.app import create_app
from exocorp.api_gateway.keys import METRICS
from exocorp.api_gateway.metrics import metrics_app
from exocorp.api_gateway.settings import GatewaySettings
from exocorp.api_gateway.watch_cache import WatchCache
from exocorp.k8s import Kube
from exocorp.k8s import resources as r
from exocorp.model import Exocorp
from exocorp.security import PasswordHasher
from exocorp.store import Database, billing
from exocorp.testing import samples
from exocorp.testing.controlplane import free_port
from exocorp.testing.platform import PLATFORM_NAMESPACE
from exocorp.testing.waiting import eventually

Obj = dict[str, Any]
PASSWORD = "correct horse battery staple"


class Api:
    """One HTTP client (its own cookie jar) of the gateway under test."""

    def __init__(self, base: str, session: aiohttp.ClientSession) -> None:
        self.base = base
        self.session = session

    async def call(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        async with self.session.request(method, self.base + path, **kwargs) as response:
            text = await response.text()
            ctype = response.headers.get("Content-Type", "")
            body = (await response.json(content_type=None)) if text and "json" in ctype else text
            return response.status, body

    async def ok(self, method: str, path: str, expect: int = 200, **kwargs: Any) -> Any:
        status, body = await self.call(method, path, **kwargs)
        assert status == expect, f"{method} {path}: {status} {body}"
        return body

    async def signup(self, email: str | None = None) -> Obj:
        email = email or f"user-{uuid.uuid4().hex[:8]}@example.com"
        body: Obj = await self.ok("POST", "/api/auth/signup", 201,
                                  json={"email": email, "password": PASSWORD})
        return body

    async def company(self, company_id: str) -> Obj:
        body: Obj = await self.ok("GET", f"/api/registry/companies/{company_id}")
        return body

    async def wait_phase(self, company_id: str, phase: str, *, within: float = 150) -> Obj:
        """Poll the gateway (its watch cache) until the company shows ``phase`` with the current
        generation observed by the operator."""
        async def probe() -> Obj:
            return await self.company(company_id)

        def reached(body: Obj) -> bool:
            return bool(body["phase"] == phase and (body.get("observedGeneration") or 0)
                        >= (body.get("generation") or 0))

        result: Obj = await eventually(probe, reached, within=within,
                                       what=f"{company_id} {phase} (gateway)")
        return result

    async def settled(self, company_id: str, *, within: float = 150) -> Obj:
        async def probe() -> Obj:
            return await self.company(company_id)

        def done(body: Obj) -> bool:
            return (not body["rolloutInProgress"]
                    and (body.get("observedGeneration") or 0) >= (body.get("generation") or 0))

        result: Obj = await eventually(probe, done, within=within, what=f"{company_id} settled")
        return result


class GatewayUnderTest:
    def __init__(self, base: str, kube: Kube, database: Database, cache: WatchCache,
                 app: web.Application, runner: web.AppRunner, metrics_url: str,
                 metrics_runner: web.AppRunner) -> None:
        self.runner = runner
        self.metrics_url = metrics_url
        """/metrics, on the metrics listener (the public app does not serve it)."""
        self.metrics_runner = metrics_runner
        self.base = base
        self.kube = kube
        self.database = database
        self.cache = cache
        self.app = app
        self._sessions: list[aiohttp.ClientSession] = []

    def client(self) -> Api:
        session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self._sessions.append(session)
        return Api(self.base, session)

    async def close(self) -> None:
        for session in self._sessions:
            await session.close()
        await self.runner.cleanup()
        await self.metrics_runner.cleanup()
        await self.cache.stop()

    async def exocorp(self, name: str) -> Exocorp | None:
        """The object as the API server has it (not through the gateway)."""
        obj = await self.kube.get_or_none(r.EXOCORPS, name)
        return Exocorp.model_validate(obj) if obj is not None else None


def unique_slug(prefix: str = "gw") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def sample_draft(version: str | None = "1.0.0") -> Obj:
    return samples.draft(version)


async def serve_gateway(kube: Kube, database: Database, *, cache_kube: Kube | None = None,
                        **overrides: Any) -> GatewayUnderTest:
    """The app on ``kube`` (its watch cache on ``cache_kube``, default the same), served on a
    free loopback port; ``close()`` it."""
    async with database.sessionmaker.begin() as s:
        if await billing.get_default_price_book(s) is None:
            await billing.create_price_book(s, name="default", currency="USD", rates={"*": 1},
                                            is_default=True)
    cache = WatchCache(cache_kube or kube, platform_namespace=PLATFORM_NAMESPACE,
                       timeout_seconds=60)
    await cache.start()
    await cache.wait_ready()
    options: dict[str, Any] = {"cookie_secure": False, "platform_namespace": PLATFORM_NAMESPACE,
                               "signup_credit": 100_000, "signup_requires_owner": False,
                               "signup_max_per_client": 10_000, "hash_concurrency": 64,
                               # Credit checks are their own tests' (min_credit_hours set).
                               "min_credit_hours": 0,
                               **overrides}
    app = create_app(GatewaySettings(**options), kube=kube, database=database, cache=cache,
                     hasher=PasswordHasher.for_tests())
    runner = web.AppRunner(app, shutdown_timeout=2)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    metrics_runner = web.AppRunner(metrics_app(app[METRICS]))
    await metrics_runner.setup()
    metrics_port = free_port()
    await web.TCPSite(metrics_runner, "127.0.0.1", metrics_port).start()
    return GatewayUnderTest(f"http://127.0.0.1:{port}", kube, database, cache, app, runner,
                            f"http://127.0.0.1:{metrics_port}/metrics", metrics_runner)


@pytest.fixture
async def gateway(platform: Kube, database: Database) -> AsyncIterator[GatewayUnderTest]:
    """The gateway on the real platform (releases published, operator running) and a fresh
    database of the parametrized backend, with a default price book."""
    under_test = await serve_gateway(platform, database)
    try:
        yield under_test
    finally:
        await under_test.close()
