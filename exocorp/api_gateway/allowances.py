"""What an account may still take, as the gateway looks it up for the lifecycle: its limits and
the platform's (the store), what its other exocorps request and cost (the watch cache, by the
model's ``footprint`` rules, summed as they change: ``usage_totals``), and the credit requirement
(``--min-credit-hours``). Every action route plans with :func:`allowance_for`
(``operations.run_action``, ``availability``); ``me`` and the admin views show
:func:`limit_usage`.

Actions on one owner's exocorps run one at a time in this process (:class:`OwnerLocks`), so two
concurrent provisions cannot both be checked against a fleet that holds neither. Across replicas
the window is the watch delay of the other replica's write.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Mapping

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from exocorp.api_gateway.keys import CACHE, SETTINGS
from exocorp.api_gateway.schemas import LimitUsage
from exocorp.api_gateway.usage_totals import UsageTotals
from exocorp.lifecycle import Allowance, ResourceCaps
from exocorp.model.footprint import Footprint
from exocorp.model.quantity import format_bytes, format_cpu
from exocorp.store import limits

__all__ = ["USAGE_TOTALS", "OwnerLocks", "account_usage", "allowance_for", "caps_of",
           "fleet_usage", "install_usage_totals", "limit_usage"]


class OwnerLocks:
    """One lock per account whose actions are being planned and written right now."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, owner: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(owner, (asyncio.Lock(), 0))
        self._locks[owner] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[owner]
            if users == 1:
                del self._locks[owner]
            else:
                self._locks[owner] = (lock, users - 1)


def caps_of(bounds: limits.Limits) -> ResourceCaps:
    return ResourceCaps(cpu_millicores=bounds.max_cpu_millicores,
                        memory_bytes=bounds.max_memory_bytes,
                        storage_bytes=bounds.max_storage_bytes)


def _bounds_anything(caps: ResourceCaps) -> bool:
    return any(v is not None for v in (caps.cpu_millicores, caps.memory_bytes,
                                       caps.storage_bytes))


def account_usage(app: web.Application, owner: str, exclude: str | None = None) -> Footprint:
    """What ``owner``'s exocorps (but ``exclude``) request now, from the watch cache."""
    return app[USAGE_TOTALS].account(owner, exclude)


def fleet_usage(app: web.Application) -> Footprint:
    """What every exocorp of the platform requests now, from the watch cache."""
    return app[USAGE_TOTALS].platform()


async def allowance_for(app: web.Application, session: AsyncSession, owner: str,
                        exocorp_id: str, rates: Mapping[str, int]) -> Allowance:
    """The allowance an action on ``exocorp_id`` (owned by ``owner``, priced by ``rates``) is
    planned with: everything but that exocorp is "the others"."""
    totals = app[USAGE_TOTALS]
    account, platform = await limits.account_and_platform_limits(session, owner)
    platform_caps = caps_of(platform)
    return Allowance(
        account_caps=caps_of(account),
        platform_caps=platform_caps,
        account_others=totals.account(owner, exocorp_id),
        # Counted only when a platform cap needs it.
        platform_others=totals.platform(exocorp_id) if _bounds_anything(platform_caps) else None,
        account_others_hourly=totals.account_hourly(owner, rates, exocorp_id),
        min_credit_hours=app[SETTINGS].min_credit_hours)


async def limit_usage(app: web.Application, session: AsyncSession, user_id: str) -> LimitUsage:
    """``user_id``'s limits (its own, else the default) and what it uses of each."""
    bounds = await limits.account_limits(session, user_id)
    used = account_usage(app, user_id)
    return LimitUsage(
        max_exocorps=bounds.max_exocorps,
        exocorps=await limits.count_exocorps(session, user_id),
        max_cpu=_maybe(bounds.max_cpu_millicores, format_cpu),
        cpu=format_cpu(used.cpu_millicores),
        max_memory=_maybe(bounds.max_memory_bytes, format_bytes),
        memory=format_bytes(used.memory_bytes),
        max_storage=_maybe(bounds.max_storage_bytes, format_bytes),
        storage=format_bytes(used.storage_bytes))


def _maybe(value: int | None, formatted: Callable[[int], str]) -> str | None:
    return None if value is None else formatted(value)


OWNER_LOCKS: web.AppKey[OwnerLocks] = web.AppKey("exocorp.owner_locks")
"""Serialises the actions on one account's exocorps in this process."""


USAGE_TOTALS: web.AppKey[UsageTotals] = web.AppKey("exocorp.usage_totals")
"""What the cached exocorps request and cost, summed as they change (``usage_totals``)."""


def install_usage_totals(app: web.Application) -> None:
    """Keep the sums of the app's watch cache for the app's life."""
    totals = app[USAGE_TOTALS] = UsageTotals(app[CACHE].exocorps, app[CACHE].catalog)

    async def close(_app: web.Application) -> None:
        totals.close()

    app.on_cleanup.append(close)
