"""An informer: list + watch of one Kubernetes resource into memory (list, then watch from the
list's resourceVersion with bookmarks; relist on 410 Gone; reconnect with backoff on errors;
start over from a list on anything unexpected). The gateway's watch cache holds one per resource;
the operator watches provider-credential Secrets in the platform namespace with one."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

import aiohttp

from exocorp.k8s import resources as r
from exocorp.k8s.client import Kube, Obj
from exocorp.k8s.errors import ApiError

__all__ = ["Informer", "Subscription"]

log = logging.getLogger(__name__)

T = TypeVar("T")
_BACKOFF_START = 0.5
_BACKOFF_MAX = 30.0


def _rv(obj: Obj) -> int | None:
    try:
        return int(obj["metadata"]["resourceVersion"])
    except (KeyError, TypeError, ValueError):
        return None


def _key(obj: Obj) -> str:
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace")
    return f"{namespace}/{meta.get('name')}" if namespace else str(meta.get("name"))


@dataclass(frozen=True)
class _Entry(Generic[T]):
    rv: int | None
    value: T


class Subscription:
    """Keys of an informer's objects that changed (or went away) since the reader last looked.

    The informer only records a key (O(1), never blocking); repeated changes of one object
    coalesce, so the reader renders each object's current state once. At most ``limit`` keys
    wait: beyond that the subscription overflows and the reader must start over (a client that
    stopped reading is dropped, never buffered for ever)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.overflowed = False
        self._pending: dict[str, None] = {}
        self._wake = asyncio.Event()
        self._release: Callable[[], None] = lambda: None

    def notify(self, key: str) -> None:
        if self.overflowed or key in self._pending:
            return
        if len(self._pending) >= self.limit:
            self.overflowed = True
            self._pending.clear()
        else:
            self._pending[key] = None
        self._wake.set()

    async def changes(self, within: float) -> list[str]:
        """The changed keys, oldest first, once there are any (empty after ``within`` s)."""
        if not self._pending and not self.overflowed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), within)
        self._wake.clear()
        keys = list(self._pending)
        self._pending.clear()
        return keys

    def take(self) -> list[str] | None:
        """The changed keys so far, without waiting (None: it overflowed; the reader must start
        over, and the subscription records changes again from now on)."""
        self._wake.clear()
        if self.overflowed:
            self.overflowed = False
            return None
        keys = list(self._pending)
        self._pending.clear()
        return keys

    def close(self) -> None:
        """Stop receiving changes (idempotent)."""
        self._release()
        self._release = lambda: None

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Informer(Generic[T]):
    """List + watch of one resource, holding ``convert(object)`` per object (None: not kept).

    ``on_event(type, object)`` (optional) sees every ADDED/MODIFIED/DELETED event, each listed
    object as ADDED (as its page arrives) and each object a relist no longer has as DELETED;
    ``on_list(listed, resourceVersion)`` (optional) sees each complete list, for a caller that
    keeps the objects itself (``convert`` returning None keeps nothing here): ``listed`` holds
    each object's name and namespace only, its body went to ``on_event``. Whatever goes wrong,
    in the stream or in a callback, the loop goes on (from a fresh list): a dead informer would
    leave its readers stale for ever."""

    def __init__(self, kube: Kube, resource: r.Resource, convert: Callable[[Obj], T | None], *,
                 namespace: str | None = None, label_selector: str | None = None,
                 indexers: dict[str, Callable[[T], Iterable[str]]] | None = None,
                 on_activity: Callable[[], None] = lambda: None,
                 on_event: Callable[[str, Obj], None] | None = None,
                 on_list: Callable[[list[Obj], str | None], None] | None = None,
                 timeout_seconds: int = 300) -> None:
        self.kube = kube
        self.resource = resource
        self.convert = convert
        self.namespace = namespace
        self.label_selector = label_selector
        self.on_activity = on_activity
        self.on_event = on_event
        self.on_list = on_list
        self.timeout_seconds = timeout_seconds
        self.synced = asyncio.Event()
        self.resource_version: str | None = None
        self.generation = 0
        """Bumped on every change: lets readers memoise derived views."""
        self.relists = 0
        self._items: dict[str, _Entry[T]] = {}
        self._indexers = indexers or {}
        self._indexes: dict[str, dict[str, set[str]]] = {name: {} for name in self._indexers}
        self._subscribers: dict[str | None, set[Subscription]] = {}

    # -- subscribing -----------------------------------------------------------------------------

    def subscribe(self, key: str | None = None, *, limit: int = 1000) -> Subscription:
        """Be told when the object ``key`` (None: any object) is added, changes or is removed.
        Close the subscription (or use it as a context manager) when done."""
        subscription = Subscription(limit)
        self._subscribers.setdefault(key, set()).add(subscription)

        def release() -> None:
            subscribers = self._subscribers.get(key)
            if subscribers is not None:
                subscribers.discard(subscription)
                if not subscribers:
                    del self._subscribers[key]

        subscription._release = release
        return subscription

    @property
    def subscriptions(self) -> int:
        return sum(len(subscribers) for subscribers in self._subscribers.values())

    def _notify(self, key: str) -> None:
        for subscription in (*self._subscribers.get(key, ()), *self._subscribers.get(None, ())):
            subscription.notify(key)

    # -- reading ---------------------------------------------------------------------------------

    def get(self, key: str) -> T | None:
        entry = self._items.get(key)
        return entry.value if entry is not None else None

    def values(self) -> list[T]:
        return [entry.value for entry in self._items.values()]

    def by_index(self, index: str, value: str) -> list[T]:
        keys = self._indexes[index].get(value, ())
        return [self._items[key].value for key in sorted(keys) if key in self._items]

    def __len__(self) -> int:
        return len(self._items)

    def versions(self) -> dict[str, int | None]:
        """Key -> resourceVersion of every object held (to compare with a fresh list)."""
        return {key: entry.rv for key, entry in self._items.items()}

    # -- writing ---------------------------------------------------------------------------------

    def observe(self, obj: Obj, *, deleted: bool = False) -> None:
        """Apply one object version unless a newer one is already held."""
        key = _key(obj)
        rv = _rv(obj)
        current = self._items.get(key)
        if current is not None and current.rv is not None and rv is not None and current.rv > rv:
            return
        if deleted:
            self._remove(key, notify=True)
            return
        if current is not None and rv is not None and current.rv == rv:
            return  # the version held already (a write of ours fed back, then its event)
        value = self.convert(obj)
        if value is None:
            self._remove(key, notify=True)
            return
        self._put(key, _Entry(rv, value), notify=True)

    def forget(self, key: str) -> None:
        self._remove(key, notify=True)

    def _put(self, key: str, entry: _Entry[T], *, notify: bool = False) -> None:
        self._remove(key)
        self._items[key] = entry
        for name, indexer in self._indexers.items():
            for value in indexer(entry.value):
                self._indexes[name].setdefault(value, set()).add(key)
        self.generation += 1
        if notify:
            self._notify(key)

    def _remove(self, key: str, *, notify: bool = False) -> None:
        entry = self._items.pop(key, None)
        if entry is None:
            return
        if notify:
            self._notify(key)
        for name, indexer in self._indexers.items():
            for value in indexer(entry.value):
                keys = self._indexes[name].get(value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del self._indexes[name][value]
        self.generation += 1

    # -- the loop --------------------------------------------------------------------------------

    async def run(self) -> None:
        backoff = _BACKOFF_START
        relist = True
        while True:
            try:
                if relist:
                    await self.list()
                    relist = False
                await self._watch()
                backoff = _BACKOFF_START
            except ApiError as error:
                if error.gone:
                    log.info("%s watch expired (410 Gone); relisting", self.resource.plural)
                    relist = True
                    self.relists += 1
                    continue
                log.warning("%s watch failed: %s; retrying in %.1fs", self.resource.plural,
                            error, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX)
            except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as error:
                log.warning("%s watch connection lost: %r; retrying in %.1fs",
                            self.resource.plural, error, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX)
                if self.resource_version is None:
                    relist = True
            except Exception:
                # Anything else must not end the loop: a dead informer would leave the cache
                # stale for ever while the gateway still reports ready. Start over from a list.
                log.exception("%s watch failed unexpectedly; relisting in %.1fs",
                              self.resource.plural, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX)
                relist = True

    async def list(self) -> str | None:
        """List (replacing what is held); returns the list's resourceVersion.

        Page by page: each page's objects are converted (and shown to ``on_event``) as it
        arrives and then let go, so a relist of 4,000 pods never holds them all whole at once
        (the whole bodies of one page are the peak, not the whole list's)."""
        fresh: dict[str, _Entry[T]] = {}
        listed: list[Obj] = []
        result: Obj = {}
        async for result in self.kube.list_pages(self.resource, self.namespace,
                                                 label_selector=self.label_selector):
            for obj in result.get("items", []):
                key = _key(obj)
                value = self.convert(obj)
                if value is not None:
                    fresh[key] = _Entry(_rv(obj), value)
                if self.on_event is not None:
                    self.on_event("ADDED", obj)
                if self.on_list is not None:
                    meta = obj.get("metadata") or {}
                    listed.append({"metadata": {k: meta[k] for k in ("name", "namespace")
                                                if k in meta}})
            result.pop("items", None)
        list_rv = _rv(result)
        # Keep what this process wrote after the snapshot was taken.
        for key, entry in self._items.items():
            if key not in fresh and entry.rv is not None and list_rv is not None \
                    and entry.rv > list_rv:
                fresh[key] = entry
        gone = [key for key in self._items if key not in fresh]
        before = self.versions()
        for key in list(self._items):
            self._remove(key)
        for key, entry in fresh.items():
            self._put(key, entry)
        # Tell subscribers what the relist changed (it runs without yielding: no reader ever
        # sees the cache half-filled).
        for key in before.keys() | fresh.keys():
            if key not in fresh or key not in before or before[key] != fresh[key].rv:
                self._notify(key)
        self.resource_version = result.get("metadata", {}).get("resourceVersion")
        if self.on_event is not None:  # a relist reports deletions missed while down
            for key in gone:
                namespace, _, name = key.rpartition("/")
                self.on_event("DELETED", {"metadata": {"name": name, "namespace": namespace}
                                          if namespace else {"name": name}})
        if self.on_list is not None:
            self.on_list(listed, self.resource_version)
        self.on_activity()
        self.synced.set()
        return self.resource_version

    async def _watch(self) -> None:
        self.on_activity()
        async for event in self.kube.watch(self.resource, self.namespace,
                                           resource_version=self.resource_version,
                                           label_selector=self.label_selector,
                                           timeout_seconds=self.timeout_seconds):
            kind = event.get("type")
            obj: Obj = event.get("object") or {}
            rv = (obj.get("metadata") or {}).get("resourceVersion")
            if kind in ("ADDED", "MODIFIED"):
                self.observe(obj)
            elif kind == "DELETED":
                self.observe(obj, deleted=True)
            if self.on_event is not None and kind in ("ADDED", "MODIFIED", "DELETED"):
                self.on_event(kind, obj)
            if rv:
                self.resource_version = rv
            self.on_activity()
