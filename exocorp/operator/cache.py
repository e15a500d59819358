"""In-memory copies of the objects the operator watches (an informer's store), fed by kopf's
watch events, so a reconcile pass reads the world without a round trip per object.

A deletion leaves a tombstone (the resourceVersion it was seen at), so a body of the deleted
object written or read earlier and stored late (an apply whose answer is processed after the
DELETED event) cannot bring it back. ``sweep`` drops what a fresh list no longer has: a
relist reports only what exists, never what vanished (see ``informer.py``).

Every body is compacted on the way in (``compact``), like controller-runtime's cache transforms:
the cache keeps only the fields the operator reads. A runtime object's spec is ours (we apply
it and remember its hash), so only its metadata stays, plus the few status fields the health
check reads; ``managedFields`` shrinks to which manager owns which top-level fields. At 1,000
exocorps that is ~25,000 objects, most of whose bytes (pod specs, managed fields, ConfigMap
and revision data) nothing here ever looked at."""

from __future__ import annotations

import sys
import time
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from exocorp import names

Obj = dict[str, Any]
Key = tuple[str, str, str]  # kind, namespace ('' when cluster-scoped), name
MAX_TOMBSTONES = 10_000
# Kinds kept whole (less managedFields): the reconciler reads their spec and data.
WHOLE_KINDS = frozenset({"Exocorp", "ExocorpRelease", "Secret"})
_METADATA = ("name", "namespace", "uid", "resourceVersion", "generation", "labels",
             "deletionTimestamp", "finalizers")
# Runtime objects' annotations the operator reads (health: which restart a pod belongs to).
_ANNOTATIONS = frozenset({names.ANNOTATION_RESTART_AT})
_DEPLOYMENT_STATUS = ("replicas", "readyReplicas", "availableReplicas", "updatedReplicas",
                      "observedGeneration")
_LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def compact(kind: str, body: Obj) -> Obj:
    """The parts of ``body`` the operator reads (a new dict; ``body`` is left as it was).
    Keys and label values are interned: decoded JSON makes a new string for every key of
    every object, and the same few hundred names repeat across 25,000 objects."""
    meta = body.get("metadata") or {}
    if kind in WHOLE_KINDS:
        small = {k: v for k, v in meta.items() if k != "managedFields"}
        if _LAST_APPLIED in (meta.get("annotations") or {}):
            small["annotations"] = {k: v for k, v in meta["annotations"].items()
                                    if k != _LAST_APPLIED}
        interned: Obj = _interned({**body, "metadata": small})
        return interned
    out_meta: Obj = {k: meta[k] for k in _METADATA if k in meta}
    if "labels" in out_meta:
        out_meta["labels"] = {_i(k): _i(v) for k, v in out_meta["labels"].items()}
    if kind == "Namespace" and meta.get("ownerReferences"):
        # Whose the runtime namespace is (operator.ownership): never adopt another's.
        out_meta["ownerReferences"] = [{"kind": _i(str(ref.get("kind"))), "uid": ref.get("uid")}
                                       for ref in meta["ownerReferences"]]
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k in _ANNOTATIONS}
    if annotations:
        out_meta["annotations"] = annotations
    # Entries that can show a hand edit of content (reconciler._edited_by_someone_else):
    # not a status subresource, and owning more than metadata and status. Pods and revisions
    # are never applied by the operator, so theirs are never read.
    edits = [entry for entry in meta.get("managedFields") or ()
             if not entry.get("subresource")
             and set(entry.get("fieldsV1") or ()) - {"f:metadata", "f:status"}]
    if edits and kind not in ("Pod", "ControllerRevision"):
        out_meta["managedFields"] = [
            {"manager": _i(str(entry.get("manager"))),
             "fieldsV1": {_i(key): {} for key in entry.get("fieldsV1") or {}}}
            for entry in edits]
    out: Obj = {"metadata": out_meta}
    status = body.get("status") or {}
    if kind == "Deployment" and status:
        out["status"] = {k: status[k] for k in _DEPLOYMENT_STATUS if k in status}
        # Kubernetes' own judgement of progress (health.deadline_exceeded).
        progressing = [{"type": _i(str(c.get("type"))), "status": _i(str(c.get("status"))),
                        "reason": _i(str(c.get("reason")))}
                       for c in status.get("conditions") or () if c.get("type") == "Progressing"]
        if progressing:
            out["status"]["conditions"] = progressing
    elif kind == "Pod" and status.get("containerStatuses"):
        out["status"] = {"containerStatuses": [_container(cs)
                                               for cs in status["containerStatuses"]]}
    return out


def _i(value: str) -> str:
    return sys.intern(value) if isinstance(value, str) else value


def _interned(value: Any) -> Any:
    """``value`` with every dict key interned (and short strings, which repeat: phases,
    reasons, condition types, label values)."""
    if isinstance(value, dict):
        return {sys.intern(k): _interned(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_interned(v) for v in value]
    if isinstance(value, str) and len(value) <= 32:
        return sys.intern(value)
    return value


def _container(status: Obj) -> Obj:
    """A pod's container status as health reads it: restarts, and why it waits."""
    out: Obj = {"restartCount": status.get("restartCount", 0)}
    reason = ((status.get("state") or {}).get("waiting") or {}).get("reason")
    if reason:
        out["state"] = {"waiting": {"reason": reason}}
    return out


class ObjectCache:
    """Latest body per object, indexed by the exocorp it belongs to."""

    def __init__(self) -> None:
        self._objects: dict[Key, Obj] = {}
        # By kind too: passes and handlers scan one kind (every Exocorp, say) often, and the
        # pods of a large fleet would otherwise make each scan cost the whole cache.
        self._by_kind: dict[str, dict[Key, Obj]] = defaultdict(dict)
        self._by_exocorp: dict[str, set[Key]] = defaultdict(set)
        self._tombstones: dict[Key, int] = {}
        self.last_event_at: float = 0.0

    @staticmethod
    def key(kind: str, body: Obj) -> Key:
        meta = body.get("metadata", {})
        return kind, meta.get("namespace") or "", meta.get("name", "")

    def observe(self, kind: str, event_type: str | None, body: Obj) -> None:
        """Record a watch event (``DELETED`` removes the object)."""
        self.last_event_at = time.time()
        key = self.key(kind, body)
        if event_type == "DELETED":
            self._drop(key, _rv(body))
            return
        self.store(kind, body)

    def _drop(self, key: Key, rv: int | None) -> None:
        body = self._objects.pop(key, None)
        self._by_kind[key[0]].pop(key, None)
        owner = ((body or {}).get("metadata", {}).get("labels") or {}).get(names.LABEL_EXOCORP)
        if owner:
            self._by_exocorp[owner].discard(key)
        if rv is not None:
            self._tombstones.pop(key, None)
            self._tombstones[key] = rv
            while len(self._tombstones) > MAX_TOMBSTONES:
                del self._tombstones[next(iter(self._tombstones))]

    def store(self, kind: str, body: Obj) -> None:
        """Record a body we read or wrote ourselves, unless the cache already has a newer one."""
        body = compact(kind, body)
        key = self.key(kind, body)
        current = self._objects.get(key)
        if current is not None and _newer(current, body):
            return
        rv = _rv(body)
        tombstone = self._tombstones.get(key)
        if tombstone is not None:
            if rv is not None and rv <= tombstone:
                return  # an older version of an object since deleted
            del self._tombstones[key]
        self._objects[key] = body
        self._by_kind[kind][key] = body
        owner = body.get("metadata", {}).get("labels", {}).get(names.LABEL_EXOCORP)
        if owner:
            self._by_exocorp[owner].add(key)

    def sweep(self, kind: str, listed: Iterable[Obj], list_rv: int) -> list[Obj]:
        """Drop the objects of ``kind`` a fresh list (taken at ``list_rv``) no longer has, unless
        the cache holds a version newer than the list; return what was dropped."""
        present = {self.key(kind, body) for body in listed}
        gone = [(key, body) for key, body in self._by_kind.get(kind, {}).items()
                if key not in present and (_rv(body) or 0) <= list_rv]
        for key, _ in gone:
            self._drop(key, list_rv)
        return [body for _, body in gone]

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


def _rv(body: Obj) -> int | None:
    try:
        return int(body["metadata"]["resourceVersion"])
    except (KeyError, ValueError, TypeError):
        return None


def _newer(a: Obj, b: Obj) -> bool:
    """True when ``a`` is a later version than ``b`` (resourceVersions are etcd revisions)."""
    try:
        return int(a["metadata"]["resourceVersion"]) > int(b["metadata"]["resourceVersion"])
    except (KeyError, ValueError, TypeError):
        return False
