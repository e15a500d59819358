"""In-memory copies of the objects the operator watches (an informer's store), fed by kopf's
watch events, so a reconcile pass reads the world without a round trip per object."""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

from exocorp import names

Obj = dict[str, Any]
Key = tuple[str, str, str]  # kind, namespace ('' when cluster-scoped), name


class ObjectCache:
    """Latest body per object, indexed by the exocorp it belongs to."""

    def __init__(self) -> None:
        self._objects: dict[Key, Obj] = {}
        # By kind too: passes and handlers scan one kind (every Exocorp, say) often, and the
        # pods of a large fleet would otherwise make each scan cost the whole cache.
        self._by_kind: dict[str, dict[Key, Obj]] = defaultdict(dict)
        self._by_exocorp: dict[str, set[Key]] = defaultdict(set)
        self.last_event_at: float = 0.0

    @staticmethod
    def key(kind: str, body: Obj) -> Key:
        meta = body.get("metadata", {})
        return kind, meta.get("namespace") or "", meta.get("name", "")

    def observe(self, kind: str, event_type: str | None, body: Obj) -> None:
        """Record a watch event (``DELETED`` removes the object)."""
        self.last_event_at = time.time()
        key = self.key(kind, body)
        owner = body.get("metadata", {}).get("labels", {}).get(names.LABEL_EXOCORP)
        if event_type == "DELETED":
            self._objects.pop(key, None)
            self._by_kind[kind].pop(key, None)
            if owner:
                self._by_exocorp[owner].discard(key)
            return
        self.store(kind, body)

    def store(self, kind: str, body: Obj) -> None:
        """Record a body we read or wrote ourselves, unless the cache already has a newer one."""
        key = self.key(kind, body)
        current = self._objects.get(key)
        if current is not None and _newer(current, body):
            return
        self._objects[key] = body
        self._by_kind[kind][key] = body
        owner = body.get("metadata", {}).get("labels", {}).get(names.LABEL_EXOCORP)
        if owner:
            self._by_exocorp[owner].add(key)

    def forget(self, kind: str, namespace: str, name: str) -> None:
        self._objects.pop((kind, namespace, name), None)
        self._by_kind[kind].pop((kind, namespace, name), None)

    def get(self, kind: str, name: str, namespace: str = "") -> Obj | None:
        return self._objects.get((kind, namespace, name))

    def of_kind(self, kind: str) -> list[Obj]:
        return list(self._by_kind.get(kind, {}).values())

    def owned(self, exocorp: str, kind: str) -> list[Obj]:
        """Objects of ``kind`` labelled as belonging to ``exocorp``."""
        keys = [key for key in self._by_exocorp.get(exocorp, ()) if key[0] == kind]
        return [self._objects[key] for key in keys if key in self._objects]


def _newer(a: Obj, b: Obj) -> bool:
    """True when ``a`` is a later version than ``b`` (resourceVersions are etcd revisions)."""
    try:
        return int(a["metadata"]["resourceVersion"]) > int(b["metadata"]["resourceVersion"])
    except (KeyError, ValueError, TypeError):
        return False
