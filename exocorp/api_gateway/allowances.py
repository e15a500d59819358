"""What an account may still take, as the gateway looks it up for the lifecycle: its limits and
the platform's (the store), what its other exocorps request and cost (the watch cache, by the
model's ``footprint`` rules), and the credit requirement (``--min-credit-hours``). Every action
route plans with :func:`allowance_for` (``operations.run_action``, ``availability``); ``me`` and
the admin views show :func:`limit_usage`.

Actions on one owner's exocorps run one at a time in this process (:class:`OwnerLocks`), so two
concurrent provisions cannot both be checked against a fleet that holds neither. Across replicas
the window is the watch delay of the other replica's write.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Hashable, Iterable, Mapping

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from exocorp.api_gateway.keys import CACHE, SETTINGS
from exocorp.api_gateway.schemas import LimitUsage
from exocorp.api_gateway.watch_cache import CachedExocorp
from exocorp.lifecycle import Allowance, ResourceCaps, release_of
from exocorp.model import ExocorpReleaseSpec
from exocorp.model.footprint import Footprint, footprint, hourly_cost, total
from exocorp.model.quantity import format_bytes, format_cpu
from exocorp.store import limits

__all__ = ["OwnerLocks", "account_usage", "allowance_for", "caps_of", "fleet_usage",
           "limit_usage"]


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


# An action sums what each of the owner's other exocorps requests and costs: in an account of 500
# that was 73 % of an action's CPU (bench/action_profile.py --others 499). Each cached version
# keeps its figures for the current release catalog (its generation) and, for the cost, per price.
_CATALOG = "catalog"
_FOOTPRINT = "footprint"
_PRICES_KEPT = 4  # an account's price changes are rare; more than this and the memo starts over


def _memo(entry: CachedExocorp, generation: int) -> dict[Hashable, object]:
    if entry.usage.get(_CATALOG) != generation or len(entry.usage) > 2 + _PRICES_KEPT:
        entry.usage.clear()
        entry.usage[_CATALOG] = generation
    return entry.usage


def _footprint(entry: CachedExocorp, catalog: tuple[int, list[ExocorpReleaseSpec]]) -> Footprint:
    memo = _memo(entry, catalog[0])
    known = memo.get(_FOOTPRINT)
    if isinstance(known, Footprint):
        return known
    spec = entry.model.spec
    memo[_FOOTPRINT] = value = footprint(spec, release_of(spec, catalog[1]))
    return value


def _hourly(entry: CachedExocorp, catalog: tuple[int, list[ExocorpReleaseSpec]],
            rates: Mapping[str, int], key: Hashable) -> int:
    """``key`` stands for ``rates``: made once per sum, not per exocorp."""
    memo = _memo(entry, catalog[0])
    known = memo.get(key)
    if isinstance(known, int):
        return known
    spec = entry.model.spec
    memo[key] = value = hourly_cost(spec, release_of(spec, catalog[1]), rates)
    return value


def _usage(entries: Iterable[CachedExocorp], catalog: tuple[int, list[ExocorpReleaseSpec]],
           exclude: str | None) -> Footprint:
    return total(_footprint(e, catalog) for e in entries if e.name != exclude)


def account_usage(app: web.Application, owner: str, exclude: str | None = None) -> Footprint:
    """What ``owner``'s exocorps (but ``exclude``) request now, from the watch cache."""
    cache = app[CACHE]
    return _usage(cache.exocorps.by_index("owner", owner), cache.catalog(), exclude)


def fleet_usage(app: web.Application) -> Footprint:
    """What every exocorp of the platform requests now, from the watch cache."""
    cache = app[CACHE]
    return _usage(cache.exocorps.values(), cache.catalog(), None)


async def allowance_for(app: web.Application, session: AsyncSession, owner: str,
                        exocorp_id: str, rates: Mapping[str, int]) -> Allowance:
    """The allowance an action on ``exocorp_id`` (owned by ``owner``, priced by ``rates``) is
    planned with: everything but that exocorp is "the others"."""
    cache = app[CACHE]
    catalog = cache.catalog()
    mine = [e for e in cache.exocorps.by_index("owner", owner) if e.name != exocorp_id]
    prices = tuple(sorted(rates.items()))
    account, platform = await limits.account_and_platform_limits(session, owner)
    platform_caps = caps_of(platform)
    return Allowance(
        account_caps=caps_of(account),
        platform_caps=platform_caps,
        account_others=_usage(mine, catalog, None),
        # Summed over the whole fleet only when a platform cap needs it.
        platform_others=_usage(cache.exocorps.values(), catalog, exocorp_id)
        if _bounds_anything(platform_caps) else None,
        account_others_hourly=sum(_hourly(e, catalog, rates, prices) for e in mine),
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
