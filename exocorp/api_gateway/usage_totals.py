"""Running sums of what the cached exocorps request, per account and platform-wide, and of what
each account's exocorps cost an hour: the figures every action's allowance is planned with.

Summed afresh at each action, they cost O(the account) and, under a platform cap, O(the fleet):
10.2 ms an action at 10,000 exocorps against 1.7 ms alone (``uv run python
bench/action_profile.py --others 499 --fleet 9500 --platform-cap``). So they are kept, and
brought up to date at each read from the exocorps the watch changed since the last (an
informer subscription): O(the changes). Each exocorp's share is remembered as it was counted, so
a change takes away exactly what it once added.

Everything is counted again when the release catalog changes (a footprint depends on the
release) and when the subscription overflowed (a relist that changed most of a large fleet). An
account's cost an hour depends on its price book: it is kept under the prices it was last asked
with and counted again when they differ. An exocorp's figures are memoised on its cached version
(``CachedExocorp.usage``), so counting again is cheap too."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field

from exocorp.api_gateway.watch_cache import CachedExocorp
from exocorp.k8s.informer import Informer
from exocorp.lifecycle import release_of
from exocorp.model import ExocorpReleaseSpec
from exocorp.model.footprint import ZERO, Footprint, footprint, hourly_cost

__all__ = ["Catalog", "UsageTotals"]

Catalog = tuple[int, list[ExocorpReleaseSpec]]
"""The release catalog with its generation (``WatchCache.catalog``)."""
Prices = tuple[tuple[str, int], ...]
"""A price book's rates, hashable: what an exocorp's memoised cost an hour is filed under."""

_CATALOG = "catalog"
_FOOTPRINT = "footprint"
_PRICES_KEPT = 4  # an account's price changes are rare; more than this and the memo starts over
_PENDING_LIMIT = 10_000  # changed exocorps waiting for a read; beyond, count everything again


def _memo(entry: CachedExocorp, generation: int) -> dict[Hashable, object]:
    if entry.usage.get(_CATALOG) != generation or len(entry.usage) > 2 + _PRICES_KEPT:
        entry.usage.clear()
        entry.usage[_CATALOG] = generation
    return entry.usage


def _footprint(entry: CachedExocorp, catalog: Catalog) -> Footprint:
    """What this cached version requests, memoised per catalog."""
    memo = _memo(entry, catalog[0])
    known = memo.get(_FOOTPRINT)
    if isinstance(known, Footprint):
        return known
    spec = entry.model.spec
    memo[_FOOTPRINT] = value = footprint(spec, release_of(spec, catalog[1]))
    return value


def _hourly(entry: CachedExocorp, catalog: Catalog, prices: Prices) -> int:
    memo = _memo(entry, catalog[0])
    known = memo.get(prices)
    if isinstance(known, int):
        return known
    spec = entry.model.spec
    memo[prices] = value = hourly_cost(spec, release_of(spec, catalog[1]), dict(prices))
    return value


@dataclass
class _Account:
    exocorps: int = 0
    requests: Footprint = ZERO


@dataclass
class _Hourly:
    """One account's cost an hour under one price book, and each exocorp's part of it."""

    prices: Prices
    total: int = 0
    shares: dict[str, int] = field(default_factory=dict)


class UsageTotals:
    """Sums over the exocorps of ``exocorps`` (a watch cache's informer). Close it when done."""

    def __init__(self, exocorps: Informer[CachedExocorp],
                 catalog: Callable[[], Catalog]) -> None:
        self._exocorps = exocorps
        self._catalog = catalog
        self._changes = exocorps.subscribe(limit=_PENDING_LIMIT)
        self._generation: int | None = None
        self._shares: dict[str, tuple[str, Footprint]] = {}
        self._accounts: dict[str, _Account] = {}
        self._platform = ZERO
        self._hourly: dict[str, _Hourly] = {}

    def close(self) -> None:
        self._changes.close()

    def account(self, owner: str, exclude: str | None = None) -> Footprint:
        """What ``owner``'s exocorps (but ``exclude``) request now."""
        self._refresh()
        account = self._accounts.get(owner)
        total = account.requests if account is not None else ZERO
        share = self._shares.get(exclude) if exclude is not None else None
        return total - share[1] if share is not None and share[0] == owner else total

    def platform(self, exclude: str | None = None) -> Footprint:
        """What every exocorp (but ``exclude``) requests now."""
        self._refresh()
        share = self._shares.get(exclude) if exclude is not None else None
        return self._platform - share[1] if share is not None else self._platform

    def account_hourly(self, owner: str, rates: Mapping[str, int],
                       exclude: str | None = None) -> int:
        """What ``owner``'s exocorps (but ``exclude``) cost an hour under ``rates``."""
        catalog = self._refresh()
        prices = tuple(sorted(rates.items()))
        hourly = self._hourly.get(owner)
        if hourly is None or hourly.prices != prices:
            hourly = self._hourly[owner] = _Hourly(prices)
            for entry in self._exocorps.by_index("owner", owner):
                hourly.shares[entry.name] = value = _hourly(entry, catalog, prices)
                hourly.total += value
        return hourly.total - (hourly.shares.get(exclude, 0) if exclude is not None else 0)

    def _refresh(self) -> Catalog:
        catalog = self._catalog()
        changed = self._changes.take()
        if changed is None or catalog[0] != self._generation:
            self._count_all(catalog)
        else:
            for name in changed:
                self._uncount(name)
                entry = self._exocorps.get(name)
                if entry is not None:
                    self._count(entry, catalog)
        return catalog

    def _count_all(self, catalog: Catalog) -> None:
        self._generation = catalog[0]
        self._shares.clear()
        self._accounts.clear()
        self._platform = ZERO
        self._hourly.clear()
        for entry in self._exocorps.values():
            self._count(entry, catalog)

    def _count(self, entry: CachedExocorp, catalog: Catalog) -> None:
        owner, requests = entry.owner, _footprint(entry, catalog)
        self._shares[entry.name] = (owner, requests)
        account = self._accounts.setdefault(owner, _Account())
        account.exocorps += 1
        account.requests += requests
        self._platform += requests
        hourly = self._hourly.get(owner)
        if hourly is not None:
            hourly.shares[entry.name] = value = _hourly(entry, catalog, hourly.prices)
            hourly.total += value

    def _uncount(self, name: str) -> None:
        share = self._shares.pop(name, None)
        if share is None:
            return
        owner, requests = share
        account = self._accounts[owner]
        account.exocorps -= 1
        account.requests -= requests
        if account.exocorps == 0:
            del self._accounts[owner]
        self._platform -= requests
        hourly = self._hourly.get(owner)
        if hourly is not None:
            hourly.total -= hourly.shares.pop(name, 0)
            if not hourly.shares:
                del self._hourly[owner]
