"""Typed keys of the gateway's application and request state.

Route modules read shared objects through these (a key whose value is a type of the gateway's own
core is defined beside that type: ``allowances.OWNER_LOCKS``, ``client_address.TRUSTED_PROXIES``,
``streams.STREAMS``, so this module imports nothing that imports it), e.g. ``request.app[KUBE]``,
``request.app[DATABASE]``, ``request.app[CACHE]``; the principal through
:func:`exocorp.api_gateway.access.principal_of` (or the ``require_*`` helpers).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from exocorp.api_gateway.access_cache import AccessCache
    from exocorp.api_gateway.hash_gate import HashGate
    from exocorp.api_gateway.metrics import GatewayMetrics
    from exocorp.api_gateway.principal import Principal
    from exocorp.api_gateway.settings import GatewaySettings
    from exocorp.api_gateway.watch_cache import WatchCache
    from exocorp.k8s import Kube
    from exocorp.security import PasswordHasher
    from exocorp.store import Database
    from exocorp.store.clock import Clock

__all__ = [
    "ACCESS_CACHE",
    "CACHE",
    "CLOCK",
    "DATABASE",
    "HASHER",
    "HASH_GATE",
    "KUBE",
    "METRICS",
    "OPENAPI_CACHE",
    "PRINCIPAL",
    "REQUEST_ID",
    "SETTINGS",
]

SETTINGS: web.AppKey[GatewaySettings] = web.AppKey("exocorp.settings")
"""The gateway's settings."""
KUBE: web.AppKey[Kube] = web.AppKey("exocorp.kube")
"""The Kubernetes client (for writes; reads come from CACHE)."""
DATABASE: web.AppKey[Database] = web.AppKey("exocorp.database")
"""The platform records: ``async with request.app[DATABASE].sessionmaker.begin() as s: ...``."""
CACHE: web.AppKey[WatchCache] = web.AppKey("exocorp.cache")
"""The watch cache of Exocorps, releases and provider-credential metadata."""
METRICS: web.AppKey[GatewayMetrics] = web.AppKey("exocorp.metrics")
"""The gateway's Prometheus metrics (its own CollectorRegistry)."""
HASH_GATE: web.AppKey[HashGate] = web.AppKey("exocorp.hash_gate")
"""Bound on concurrent password hashes (login, signup, password change)."""
HASHER: web.AppKey[PasswordHasher] = web.AppKey("exocorp.hasher")
"""argon2id password hasher (tests pass a cheap one)."""
CLOCK: web.AppKey[Clock] = web.AppKey("exocorp.clock")
"""The time source (tests pass a fake clock)."""
ACCESS_CACHE: web.AppKey[AccessCache] = web.AppKey("exocorp.access_cache")
"""Short-lived principals and memberships (see ``access_cache``); call its ``forget_*`` methods
after changing sessions, tokens or memberships."""
OPENAPI_CACHE: web.AppKey[dict[str, str]] = web.AppKey("exocorp.openapi_cache")
"""The rendered OpenAPI document and docs page (built on first request)."""

REQUEST_ID: web.RequestKey[str] = web.RequestKey("exocorp.request_id")
"""This request's id (X-Request-Id), also the trace id of a 500."""
PRINCIPAL: web.RequestKey[Principal] = web.RequestKey("exocorp.principal")
"""Who is calling (set by the auth middleware; anonymous when no credentials)."""
