"""Shared fixtures of the gateway's unit tests: the real app on a migrated SQLite database, with
an in-memory stand-in for the Kubernetes API (unit tests only; the integration tests use the real
control plane). Its fixtures (``gateway``, ``make_gateway``, ``gateway_db_template``) are bound
for the unit tier by tests/unit/conftest.py; its helpers are imported."""

from __future__ import annotations

import copy
import itertools
import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from exocorp.api_gateway.app import create_app
from exocorp.api_gateway.keys import METRICS
from exocorp.api_gateway.metrics import metrics_app
from exocorp.api_gateway.settings import GatewaySettings
from exocorp.api_gateway.watch_cache import WatchCache
from exocorp.k8s import ApiError, Kube
from exocorp.k8s.resources import Resource
from exocorp.model import apply_merge_patch
from exocorp.security import PasswordHasher
from exocorp.store import Database, billing, open_database, upgrade_to_head
from exocorp.testing import samples

Obj = dict[str, Any]


class FakeKube(Kube):
    """Just enough of the API server: objects by (plural, namespace, name), resourceVersions,
    generation bumps on spec changes, merge patches with optimistic concurrency, and failure
    injection (``fail_next[verb] = ApiError(...)``)."""

    def __init__(self) -> None:  # no ApiClient: every verb below is overridden
        self.objects: dict[tuple[str, str, str], Obj] = {}
        self._rv = itertools.count(100)
        self.fail_next: dict[str, ApiError] = {}
        self.calls: list[tuple[str, str, str]] = []

    def _fail(self, verb: str) -> None:
        error = self.fail_next.pop(verb, None)
        if error is not None:
            raise error

    @staticmethod
    def _key(resource: Resource, name: str, namespace: str | None) -> tuple[str, str, str]:
        return resource.plural, namespace or "", name

    def _stamp(self, obj: Obj) -> Obj:
        obj["metadata"]["resourceVersion"] = str(next(self._rv))
        return obj

    async def close(self) -> None:
        return None

    async def get(self, resource: Resource, name: str, namespace: str | None = None) -> Obj:
        self.calls.append(("get", resource.plural, name))
        self._fail("get")
        obj = self.objects.get(self._key(resource, name, namespace))
        if obj is None:
            raise ApiError(404, "NotFound", f"{resource.plural} {name!r} not found")
        return copy.deepcopy(obj)

    async def list(self, resource: Resource, namespace: str | None = None, *,
                   label_selector: str | None = None, field_selector: str | None = None,
                   limit: int | None = None, continue_: str | None = None) -> Obj:
        self.calls.append(("list", resource.plural, label_selector or ""))
        wanted = dict(part.split("=", 1) for part in (label_selector or "").split(",") if part)
        items = [copy.deepcopy(obj) for (plural, ns, _), obj in sorted(self.objects.items())
                 if plural == resource.plural and (namespace is None or ns == namespace)
                 and all(obj["metadata"].get("labels", {}).get(k) == v
                         for k, v in wanted.items())]
        return {"items": items, "metadata": {"resourceVersion": str(next(self._rv))}}

    async def list_all(self, resource: Resource, namespace: str | None = None, *,
                       label_selector: str | None = None, page: int = 500) -> Obj:
        return await self.list(resource, namespace, label_selector=label_selector)

    async def list_pages(self, resource: Resource, namespace: str | None = None, *,
                         label_selector: str | None = None,
                         page: int = 500) -> AsyncIterator[Obj]:
        yield await self.list(resource, namespace, label_selector=label_selector)

    async def create(self, resource: Resource, body: Obj, namespace: str | None = None) -> Obj:
        self.calls.append(("create", resource.plural, body["metadata"]["name"]))
        self._fail("create")
        key = self._key(resource, body["metadata"]["name"], namespace)
        if key in self.objects:
            raise ApiError(409, "AlreadyExists", f"{body['metadata']['name']} already exists")
        obj = copy.deepcopy(body)
        obj["metadata"].setdefault("creationTimestamp", "2030-01-01T12:00:00Z")
        obj["metadata"]["generation"] = 1
        self.objects[key] = self._stamp(obj)
        return copy.deepcopy(obj)

    async def patch(self, resource: Resource, name: str, patch: Any, *,
                    namespace: str | None = None, patch_type: Any = "merge",
                    subresource: str | None = None, force: bool = True,
                    field_manager: str = "exocorp") -> Obj:
        self.calls.append(("patch", resource.plural, name))
        self._fail("patch")
        key = self._key(resource, name, namespace)
        current = self.objects.get(key)
        if current is None:
            raise ApiError(404, "NotFound", f"{name!r} not found")
        expected = (patch.get("metadata") or {}).get("resourceVersion")
        if expected is not None and expected != current["metadata"]["resourceVersion"]:
            raise ApiError(409, "Conflict", "the object has been modified")
        merged = apply_merge_patch(copy.deepcopy(current), patch)
        if merged.get("spec") != current.get("spec"):
            merged["metadata"]["generation"] = current["metadata"].get("generation", 1) + 1
        self.objects[key] = self._stamp(merged)
        return copy.deepcopy(merged)

    async def delete(self, resource: Resource, name: str, namespace: str | None = None, *,
                     propagation: str = "Background", missing_ok: bool = True) -> Obj | None:
        self.calls.append(("delete", resource.plural, name))
        self._fail("delete")
        obj = self.objects.pop(self._key(resource, name, namespace), None)
        if obj is None and not missing_ok:
            raise ApiError(404, "NotFound", f"{name!r} not found")
        return obj


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


RELEASES = (samples.release("1.0.0"), samples.release("1.1.0"))
RELEASE_RESOURCE = Resource("exocorp.io", "v1alpha1", "exocorpreleases", "ExocorpRelease", False)


class Gateway:
    """The app under test and what it runs on."""

    def __init__(self, client: TestClient[Any, Any], kube: FakeKube, cache: WatchCache,
                 database: Database, clock: Clock, settings: GatewaySettings) -> None:
        self.client = client
        self.kube = kube
        self.cache = cache
        self.database = database
        self.clock = clock
        self.settings = settings
        self.extra_clients: list[aiohttp.ClientSession] = []

    async def signup(self, email: str, password: str = "correct horse battery",  # noqa: S107
                     ) -> Obj:
        response = await self.client.post("/api/auth/signup",
                                          json={"email": email, "password": password})
        assert response.status == 201, await response.text()
        body: Obj = await response.json()
        return body

    async def scrape(self) -> str:
        """The gateway's /metrics, from the metrics listener (not the public app)."""
        server = TestServer(metrics_app(self.client.server.app[METRICS]))
        async with TestClient(server) as client:
            response = await client.get("/metrics")
            assert response.status == 200
            return await response.text()

    def new_client(self) -> aiohttp.ClientSession:
        """Another client (its own cookie jar) of the same server."""
        session = aiohttp.ClientSession(base_url=str(self.client.make_url("/")),
                                        cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.extra_clients.append(session)
        return session

    async def company(self, slug: str = "acme", client: Any = None, **fields: Any) -> Obj:
        response = await (client or self.client).post(
            "/api/registry/companies", json={"slug": slug, "displayName": slug.title(),
                                             **fields})
        assert response.status == 201, await response.text()
        body: Obj = await response.json()
        return body


async def unit_database(template: Path, path: Path) -> Database:
    """A copy of the migrated ``template`` at ``path``, with a default price book."""
    shutil.copyfile(template, path)
    database = open_database(f"sqlite+aiosqlite:///{path}")
    async with database.sessionmaker.begin() as s:
        await billing.create_price_book(s, name="default", currency="USD", rates={"*": 1},
                                        is_default=True)
    return database


async def synced_cache(kube: FakeKube) -> WatchCache:
    """A watch cache over ``kube`` holding ``RELEASES``, marked synced (nothing runs its
    informers: tests feed it)."""
    cache = WatchCache(kube, platform_namespace="exocorp-system")
    for release in RELEASES:
        cache.releases.observe(await kube.create(RELEASE_RESOURCE, release))
    for informer in cache.informers:
        informer.synced.set()
    return cache


@pytest.fixture(scope="session")
async def gateway_db_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("gateway-db") / "template.db"
    await upgrade_to_head(f"sqlite+aiosqlite:///{path}")
    return path


GatewayFactory = Callable[..., Awaitable[Gateway]]


@pytest.fixture
async def make_gateway(tmp_path: Path,
                       gateway_db_template: Path) -> AsyncIterator[GatewayFactory]:
    """Build the app under test with settings overrides (several per test if needed)."""
    built: list[Gateway] = []

    async def build(**overrides: Any) -> Gateway:
        database = await unit_database(gateway_db_template,
                                       tmp_path / f"gateway-{uuid.uuid4().hex[:8]}.db")
        kube = FakeKube()
        cache = await synced_cache(kube)
        clock = Clock()
        hasher = overrides.pop("hasher", None) or PasswordHasher.for_tests()
        options: dict[str, Any] = {"cookie_secure": False, "max_body_bytes": 4096,
                                   "login_max_failures": 3, "signup_requires_owner": False,
                                   "hash_concurrency": 64, "signup_max_per_client": 10_000,
                                   # Credit checks are their own tests' (min_credit_hours set).
                                   "min_credit_hours": 0,
                                   **overrides}
        settings = GatewaySettings(**options)
        app = create_app(settings, kube=kube, database=database, cache=cache,
                         hasher=hasher, clock=clock)
        client: TestClient[Any, Any] = TestClient(TestServer(app))
        await client.start_server()
        gateway = Gateway(client, kube, cache, database, clock, settings)
        built.append(gateway)
        return gateway

    try:
        yield build
    finally:
        for gateway in built:
            for session in gateway.extra_clients:
                await session.close()
            await gateway.client.close()
            await gateway.database.dispose()


@pytest.fixture
async def gateway(make_gateway: GatewayFactory) -> Gateway:
    return await make_gateway()
