"""The operator's cache after deletions it may not have seen: tombstones keep a late write of a
deleted object out, and an informer's relist (which reports no deletion) drops what is gone."""

from __future__ import annotations

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

    async def list_all(self, resource: r.Resource, namespace: str | None = None, *,
                       label_selector: str | None = None) -> Obj:
        self.lists.append((resource.plural, label_selector))
        return {"metadata": {"resourceVersion": "100"}, "items": self.items[resource.plural]}


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
