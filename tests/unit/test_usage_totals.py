"""The running sums an action's allowance is planned with (``api_gateway.usage_totals``) always
equal the sums counted afresh over the watch cache, whatever the watch brings in between:
exocorps created, resized, moved to another release or owner, stopped, deleted; a new release
catalog; a new price book; more changes than the subscription holds (a relist)."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest

from exocorp.api_gateway import usage_totals
from exocorp.api_gateway.usage_totals import UsageTotals
from exocorp.api_gateway.watch_cache import WatchCache
from exocorp.k8s import resources as r
from exocorp.lifecycle import release_of
from exocorp.model.footprint import ZERO, Footprint, footprint, hourly_cost, total
from exocorp.testing import samples
from tests.plugins.gateway import FakeKube, synced_cache

pytestmark = pytest.mark.unit

OWNERS = ("ada", "bob", "cy")
SIZES = ("small", "medium", "large")


def _body(name: str, rng: random.Random, versions: list[str]) -> dict[str, Any]:
    body = samples.exocorp(name, rng.choice(OWNERS))
    provisioned = rng.random() < 0.8
    body["spec"].update(
        provisioned=provisioned, stopped=provisioned and rng.random() < 0.2,
        release={"channel": "stable", "version": rng.choice(versions)},
        config={**samples.draft()["config"], "componentSizes": {"agents": rng.choice(SIZES)}})
    return body


def _fresh(cache: WatchCache, owner: str | None, exclude: str | None) -> Footprint:
    catalog = cache.catalog()[1]
    return total(footprint(e.model.spec, release_of(e.model.spec, catalog))
                 for e in cache.exocorps.values()
                 if (owner is None or e.owner == owner) and e.name != exclude)


def _fresh_hourly(cache: WatchCache, owner: str, rates: dict[str, int],
                  exclude: str | None) -> int:
    catalog = cache.catalog()[1]
    return sum(hourly_cost(e.model.spec, release_of(e.model.spec, catalog), rates)
               for e in cache.exocorps.by_index("owner", owner) if e.name != exclude)


def _check(cache: WatchCache, totals: UsageTotals, rng: random.Random,
           rates: dict[str, int]) -> None:
    names = [e.name for e in cache.exocorps.values()]
    exclude = rng.choice([*names, "nobody", None])
    for owner in OWNERS:
        assert totals.account(owner, exclude) == _fresh(cache, owner, exclude)
        assert totals.account_hourly(owner, rates, exclude) == _fresh_hourly(
            cache, owner, rates, exclude)
    assert totals.platform(exclude) == _fresh(cache, None, exclude)


@pytest.fixture
async def cache() -> WatchCache:
    return await synced_cache(FakeKube())


@pytest.fixture
def small_subscription(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(usage_totals, "_PENDING_LIMIT", 3)


async def _run(cache: WatchCache, seed: int, steps: int) -> None:
    rng = random.Random(seed)
    kube = cache.exocorps.kube
    totals = UsageTotals(cache.exocorps, cache.catalog)
    versions = ["1.0.0", "1.1.0", "9.9.9"]  # 9.9.9: not published (yet)
    rates = {"*": 2}
    # Ever newer resource versions (above the in-memory API server's), so every change applies.
    version = itertools.count(10**6)
    try:
        for step in range(steps):
            roll = rng.random()
            names = [e.name for e in cache.exocorps.values()]
            if roll < 0.45 or not names:
                name = f"x{rng.randrange(40)}"
                cache.observe_exocorp({**_body(name, rng, versions),
                                       "metadata": {"name": name,
                                                    "resourceVersion": str(next(version))}})
            elif roll < 0.65:
                cache.exocorps.forget(rng.choice(names))
            elif roll < 0.72:
                release = samples.release("9.9.9") if step % 2 else samples.release("1.2.0")
                release["metadata"]["resourceVersion"] = str(next(version))
                release["spec"]["components"][0]["replicas"] = rng.randint(1, 3)
                cache.releases.observe(await kube.create(r.RELEASES, release)
                                       if cache.releases.get(release["metadata"]["name"]) is None
                                       else release)
            elif roll < 0.8:
                rates = {"*": rng.randint(1, 5), "agents": rng.randint(1, 9)}
            elif roll < 0.85:  # several changes at once (beyond a small subscription's hold)
                for _ in range(5):
                    name = f"x{rng.randrange(40)}"
                    cache.observe_exocorp({**_body(name, rng, versions), "metadata": {
                        "name": name, "resourceVersion": str(next(version))}})
            _check(cache, totals, rng, rates)
    finally:
        totals.close()


@pytest.mark.parametrize("seed", range(4))
async def test_the_sums_equal_a_fresh_count_after_every_change(cache: WatchCache,
                                                               seed: int) -> None:
    await _run(cache, seed, 300)


async def test_a_subscription_that_overflowed_counts_everything_again(
        small_subscription: None, cache: WatchCache) -> None:
    await _run(cache, 7, 300)


async def test_an_empty_cache_sums_to_nothing(cache: WatchCache) -> None:
    totals = UsageTotals(cache.exocorps, cache.catalog)
    assert (totals.account("ada"), totals.platform(), totals.account_hourly("ada", {"*": 1})) \
        == (ZERO, ZERO, 0)
    totals.close()
    assert cache.exocorps.subscriptions == 0
