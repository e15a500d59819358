"""The gateway application: :func:`create_app` wires settings, the Kubernetes client, the
database and the watch cache into an aiohttp app with the middleware chain and every route table.

Route modules, in order (the order of the OpenAPI document's tags):

- ``CORE_ROUTE_TABLES``: health, auth, registry, releases, provider secrets, dashboard.
- ``EXTENSION_ROUTE_TABLES``: the hook list for further API groups. To add one, write
  ``exocorp/api_gateway/<group>/routes.py`` with a ``routes = RouteTable(...)`` (see
  ``routing``), import it here and append ``<group>.routes``; then regenerate
  docs/openapi.json (``python -m exocorp.api_gateway.openapi --write docs/openapi.json``).
"""

from __future__ import annotations

from aiohttp import web

from exocorp.api_gateway import health
from exocorp.api_gateway.access_cache import AccessCache
from exocorp.api_gateway.admin import routes as admin
from exocorp.api_gateway.agents import routes as agents
from exocorp.api_gateway.allowances import OWNER_LOCKS, OwnerLocks, install_usage_totals
from exocorp.api_gateway.audit import routes as audit
from exocorp.api_gateway.auth import routes as auth
from exocorp.api_gateway.billing import routes as billing
from exocorp.api_gateway.client_address import TRUSTED_PROXIES, parse_networks
from exocorp.api_gateway.dashboard import routes as dashboard
from exocorp.api_gateway.hash_gate import DEFAULT_SLOTS, HashGate, hash_slots, memory_limit_bytes
from exocorp.api_gateway.keys import (
    ACCESS_CACHE,
    CACHE,
    CLOCK,
    DATABASE,
    HASH_GATE,
    HASHER,
    KUBE,
    METRICS,
    OPENAPI_CACHE,
    SETTINGS,
)
from exocorp.api_gateway.members import routes as members
from exocorp.api_gateway.metrics import GatewayMetrics
from exocorp.api_gateway.middleware import MIDDLEWARES
from exocorp.api_gateway.registry import routes as registry
from exocorp.api_gateway.releases import routes as releases
from exocorp.api_gateway.routing import ROUTE_TABLES, RouteTable
from exocorp.api_gateway.runtime import routes as runtime
from exocorp.api_gateway.secrets import routes as secrets
from exocorp.api_gateway.settings import GatewaySettings
from exocorp.api_gateway.streams import install_streams
from exocorp.api_gateway.ui_serving import install_ui
from exocorp.api_gateway.watch_cache import WatchCache
from exocorp.api_gateway.workers import BackgroundWork, install_workers
from exocorp.k8s import Kube
from exocorp.security import PasswordHasher
from exocorp.store import Database
from exocorp.store.clock import Clock, utcnow

__all__ = ["CORE_ROUTE_TABLES", "EXTENSION_ROUTE_TABLES", "create_app", "route_tables"]

CORE_ROUTE_TABLES: list[RouteTable] = [
    health.routes,
    auth.routes,
    registry.routes,
    releases.routes,
    secrets.routes,
    dashboard.routes,
]

EXTENSION_ROUTE_TABLES: list[RouteTable] = [
    # Append further API groups here (admin, audit, runtime, agents, billing).
    admin.routes,
    audit.routes,
    runtime.routes,
    agents.routes,
    billing.routes,
    members.routes,
]


def route_tables() -> list[RouteTable]:
    """Every route table, in registration order."""
    return [*CORE_ROUTE_TABLES, *EXTENSION_ROUTE_TABLES]


def _hash_slots(settings: GatewaySettings, hasher: PasswordHasher) -> int:
    if settings.hash_concurrency:
        return settings.hash_concurrency
    limit = settings.memory_limit_bytes or memory_limit_bytes()
    if limit is None:
        return DEFAULT_SLOTS
    # The container's limit holds every process of the pod: each hashes within its share.
    return hash_slots(memory_limit_bytes=limit // settings.processes,
                      hash_memory_bytes=hasher.memory_bytes)


def create_app(settings: GatewaySettings, *, kube: Kube, database: Database, cache: WatchCache,
               metrics: GatewayMetrics | None = None, hasher: PasswordHasher | None = None,
               clock: Clock = utcnow,
               workers: BackgroundWork = BackgroundWork.SYSTEM_AUDIT) -> web.Application:
    """The gateway app. The caller owns ``kube``, ``database`` and ``cache`` (starts and stops
    them); ``main.run`` does that for the real process, tests do it with fixtures. The app runs
    the background ``workers`` named (``workers`` module): a test's app the system audit alone."""
    app = web.Application(middlewares=MIDDLEWARES, client_max_size=settings.max_body_bytes)
    app[SETTINGS] = settings
    app[KUBE] = kube
    app[DATABASE] = database
    app[CACHE] = cache
    app[METRICS] = metrics or GatewayMetrics()
    app[METRICS].watch_last_event.set_function(lambda: cache.last_event_at)
    app[HASHER] = hasher or PasswordHasher()
    app[CLOCK] = clock
    app[TRUSTED_PROXIES] = parse_networks(settings.trusted_proxies)
    app[HASH_GATE] = HashGate(_hash_slots(settings, app[HASHER]),
                              None if settings.hash_queue < 0 else settings.hash_queue)
    app[OPENAPI_CACHE] = {}
    app[ACCESS_CACHE] = AccessCache(settings.auth_cache_seconds, clock)
    app[OWNER_LOCKS] = OwnerLocks()
    install_usage_totals(app)
    install_streams(app)
    tables = route_tables()
    app[ROUTE_TABLES] = tables
    for table in tables:
        table.register(app)
    install_ui(app)  # the dashboard, after the API: it never shadows a route
    install_workers(app, workers)
    return app
