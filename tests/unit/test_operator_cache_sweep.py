"""The operator's cache after deletions it may not have seen: tombstones keep a late write of a
deleted object out, and the sweeper drops what a relist (which reports no deletion) left behind."""

from __future__ import annotations

import asyncio
from typing import Any

from exocorp.k8s import resources as r
from exocorp.operator.cache import ObjectCache
from exocorp.operator.sweep import Sweeper, Watched

Obj = dict[str, Any]


def _obj(name: str, rv: int, owner: str = "acme") -> Obj:
    return {"metadata": {"name": name, "namespace": "exo-acme", "resourceVersion": str(rv),
                         "labels": {"exocorp.io/exocorp": owner}}}


def test_a_late_write_of_a_deleted_object_does_not_bring_it_back() -> None:
    cache = ObjectCache()
    cache.observe("ServiceAccount", "MODIFIED", _obj("sa", 10))
    cache.observe("ServiceAccount", "DELETED", _obj("sa", 12))
    cache.store("ServiceAccount", _obj("sa", 11))  # an apply answered before the deletion
    cache.observe("ServiceAccount", None, _obj("sa", 10))  # a stale listing
    assert cache.get("ServiceAccount", "sa", "exo-acme") is None
    assert cache.owned("acme", "ServiceAccount") == []
    recreated = _obj("sa", 13)
    cache.store("ServiceAccount", recreated)
    assert cache.get("ServiceAccount", "sa", "exo-acme") == recreated


def test_sweep_drops_what_the_list_no_longer_has_but_keeps_newer_writes() -> None:
    cache = ObjectCache()
    kept, gone, newer = _obj("kept", 5), _obj("gone", 6), _obj("newer", 30)
    for body in (kept, gone, newer):
        cache.store("ConfigMap", body)
    cache.store("Secret", _obj("other-kind", 7))
    dropped = cache.sweep("ConfigMap", [kept], list_rv=20)
    assert dropped == [gone]
    assert cache.get("ConfigMap", "kept", "exo-acme") == kept
    assert cache.get("ConfigMap", "newer", "exo-acme") == newer
    assert cache.get("Secret", "other-kind", "exo-acme") is not None
    cache.store("ConfigMap", _obj("gone", 6))  # the relisted body of before: still gone
    assert cache.get("ConfigMap", "gone", "exo-acme") is None


class _FakeKube:
    def __init__(self, items: dict[str, list[Obj]]) -> None:
        self.items = items
        self.lists: list[tuple[str, str | None]] = []

    async def list_all(self, resource: r.Resource, namespace: str | None = None, *,
                       label_selector: str | None = None) -> Obj:
        self.lists.append((resource.plural, label_selector))
        return {"metadata": {"resourceVersion": "100"}, "items": self.items[resource.plural]}


async def test_the_sweeper_runs_once_a_listing_is_over_and_requeues_owners() -> None:
    cache = ObjectCache()
    cache.store("Deployment", _obj("app", 50, owner="acme"))
    cache.store("Deployment", _obj("agents", 51, owner="beta"))
    kube = _FakeKube({"deployments": [_obj("agents", 51, owner="beta")]})
    queued: list[str] = []
    sweeper = Sweeper(kube, cache,  # type: ignore[arg-type]
                      [Watched("Deployment", r.DEPLOYMENTS, "managed")], queued.append,
                      quiet=0.05)
    for _ in range(3):  # a listing: several objects in a row, then quiet
        sweeper.listing_seen()
        await asyncio.sleep(0.01)
    for _ in range(200):
        if sweeper.sweeps:
            break
        await asyncio.sleep(0.01)
    await sweeper.stop()
    assert sweeper.sweeps == 1
    assert kube.lists == [("deployments", "managed")]
    assert queued == ["acme"]
    assert cache.get("Deployment", "app", "exo-acme") is None
    assert cache.get("Deployment", "agents", "exo-acme") is not None
