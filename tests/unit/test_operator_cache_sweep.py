"""The operator's cache after deletions it may not have seen: tombstones keep a late write of a
deleted object out, and an informer's relist (which reports no deletion) drops what is gone."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from exocorp.k8s import resources as r
from exocorp.operator.cache import ObjectCache
from exocorp.operator.informer import Informer

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
    """Lists what ``items`` holds; its watch ends at once (the informer then lists again
    only after a 410, which this kube never sends)."""

    def __init__(self, items: dict[str, list[Obj]]) -> None:
        self.items = items
        self.lists: list[tuple[str, str | None]] = []

    async def list_pages(self, resource: r.Resource, namespace: str | None = None, *,
                         label_selector: str | None = None) -> AsyncIterator[Obj]:
        self.lists.append((resource.plural, label_selector))
        yield {"metadata": {"resourceVersion": "100"}, "items": self.items[resource.plural]}


async def test_a_relist_drops_what_is_gone_and_reports_it_deleted() -> None:
    cache = ObjectCache()
    cache.store("Deployment", _obj("app", 50, owner="acme"))
    cache.store("Deployment", _obj("agents", 51, owner="beta"))
    kube = _FakeKube({"deployments": [_obj("agents", 51, owner="beta"),
                                      _obj("portal", 60, owner="gamma")]})
    seen: list[tuple[str, str]] = []
    informer = Informer(kube, cache, "Deployment", r.DEPLOYMENTS,  # type: ignore[arg-type]
                        lambda event, body: seen.append((event, body["metadata"]["name"])),
                        label_selector="managed")
    assert await informer.list() == "100"
    assert kube.lists == [("deployments", "managed")]
    assert sorted(seen) == [("ADDED", "agents"), ("ADDED", "portal"), ("DELETED", "app")]
    assert cache.get("Deployment", "app", "exo-acme") is None
    assert cache.get("Deployment", "agents", "exo-acme") is not None
    assert informer.synced.is_set()


class _PagedKube:
    """Serves a list in pages of two, recording when each page went out."""

    def __init__(self, items: list[Obj], log: list[str]) -> None:
        self.items = items
        self.log = log

    async def list_pages(self, resource: r.Resource, namespace: str | None = None, *,
                         label_selector: str | None = None) -> AsyncIterator[Obj]:
        for start in range(0, len(self.items), 2):
            self.log.append(f"page {start // 2}")
            last = start + 2 >= len(self.items)
            yield {"metadata": {"resourceVersion": "100", **({} if last else {"continue": "t"})},
                   "items": [dict(item) for item in self.items[start:start + 2]]}


async def test_a_relist_takes_each_page_in_before_it_asks_for_the_next() -> None:
    """A relist of 4,000 pods must not hold them all whole at once: each page's objects reach
    the cache before the next page is fetched, and the sweep still sees the whole list."""
    cache = ObjectCache()
    cache.store("Pod", _obj("gone", 10))
    log: list[str] = []
    kube = _PagedKube([_obj(f"pod-{i}", 20 + i) for i in range(5)], log)
    informer = Informer(kube, cache, "Pod", r.PODS,  # type: ignore[arg-type]
                        lambda event, body: log.append(f"{event} {body['metadata']['name']}"))
    assert await informer.list() == "100"
    assert log == ["page 0", "ADDED pod-0", "ADDED pod-1", "page 1", "ADDED pod-2",
                   "ADDED pod-3", "page 2", "ADDED pod-4", "DELETED gone"]
    assert [body["metadata"]["name"] for body in cache.of_kind("Pod")] == \
        [f"pod-{i}" for i in range(5)]
