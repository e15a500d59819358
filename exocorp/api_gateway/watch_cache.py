"""The gateway's watch cache: an informer per resource (list, then watch from the list's
resourceVersion with bookmarks; relist on 410 Gone; reconnect with backoff on errors), so that
reads never make an API-server round trip.

Four resources are kept: Exocorps (parsed into models), ExocorpReleases (parsed), the
*metadata* of provider-credential Secrets in the platform namespace (their values are dropped the
moment an event arrives; see ``credentials``) and the content of the operator's revisions
(ControllerRevisions, immutable: what an action's availability depends on). The cache is ready
once every informer has listed.

Writes made by this process feed their answer back with :meth:`WatchCache.observe_exocorp` (and
``observe_credential``), so a client reads its own write at once instead of waiting for the
watch event; an object's older versions never replace newer ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import aiohttp
from pydantic import ValidationError

from exocorp import names
from exocorp.api_gateway.credentials import CREDENTIAL_SELECTOR, Credential, from_secret
from exocorp.k8s import ApiError, Kube, Obj
from exocorp.k8s import resources as r
from exocorp.model import Exocorp, ExocorpRelease, ExocorpReleaseSpec, RevisionContent

__all__ = ["CachedExocorp", "CachedRevision", "Informer", "Subscription", "WatchCache"]

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

    def close(self) -> None:
        """Stop receiving changes (idempotent)."""
        self._release()
        self._release = lambda: None

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Informer(Generic[T]):
    """List + watch of one resource, holding ``convert(object)`` per object (None: not kept)."""

    def __init__(self, kube: Kube, resource: r.Resource, convert: Callable[[Obj], T | None], *,
                 namespace: str | None = None, label_selector: str | None = None,
                 indexers: dict[str, Callable[[T], Iterable[str]]] | None = None,
                 on_activity: Callable[[], None] = lambda: None,
                 timeout_seconds: int = 300) -> None:
        self.kube = kube
        self.resource = resource
        self.convert = convert
        self.namespace = namespace
        self.label_selector = label_selector
        self.on_activity = on_activity
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
                    await self._list()
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

    async def _list(self) -> None:
        result = await self.kube.list_all(self.resource, self.namespace,
                                          label_selector=self.label_selector)
        list_rv = _rv(result)
        fresh: dict[str, _Entry[T]] = {}
        for obj in result.get("items", []):
            value = self.convert(obj)
            if value is not None:
                fresh[_key(obj)] = _Entry(_rv(obj), value)
        # Keep what this process wrote after the snapshot was taken.
        for key, entry in self._items.items():
            if key not in fresh and entry.rv is not None and list_rv is not None \
                    and entry.rv > list_rv:
                fresh[key] = entry
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
        self.on_activity()
        self.synced.set()

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
            if rv:
                self.resource_version = rv
            self.on_activity()


@dataclass(frozen=True)
class CachedExocorp:
    """One Exocorp as read from the watch: the parsed model (the raw body is not kept), and
    answers rendered from it (a new version of the object is a new entry)."""

    model: Exocorp
    rendered: dict[tuple[str, str], bytes] = field(default_factory=dict, compare=False,
                                                   repr=False)

    @property
    def name(self) -> str:
        return self.model.metadata.name

    @property
    def owner(self) -> str:
        return self.model.spec.owner


def _exocorp(obj: Obj) -> CachedExocorp | None:
    try:
        return CachedExocorp(Exocorp.model_validate(obj))
    except ValidationError:
        log.warning("ignoring Exocorp %s: it does not match the schema",
                    (obj.get("metadata") or {}).get("name"))
        return None


def _release(obj: Obj) -> ExocorpRelease | None:
    try:
        return ExocorpRelease.model_validate(obj)
    except ValidationError:
        log.warning("ignoring ExocorpRelease %s: it does not match the schema",
                    (obj.get("metadata") or {}).get("name"))
        return None


@dataclass(frozen=True)
class CachedRevision:
    """One of the operator's revisions: whose it is and its content (nothing else is kept)."""

    exocorp: str
    name: str
    content: RevisionContent


_REVISION_SELECTOR = f"{names.LABEL_MANAGED_BY}={names.MANAGER}"


def _revision(obj: Obj) -> CachedRevision | None:
    meta = obj.get("metadata") or {}
    exocorp = (meta.get("labels") or {}).get(names.LABEL_EXOCORP)
    if not exocorp:
        return None
    try:
        content = RevisionContent.model_validate(obj.get("data") or {})
    except ValidationError:
        return None
    return CachedRevision(exocorp, str(meta.get("name")), content)


def _bound_secrets(entry: CachedExocorp) -> list[str]:
    return sorted({b.secret_name for b in entry.model.spec.provider_bindings})


class WatchCache:
    """Exocorps, releases and credential metadata, kept current by watches."""

    def __init__(self, kube: Kube, *, platform_namespace: str,
                 on_activity: Callable[[], None] = lambda: None,
                 timeout_seconds: int = 300) -> None:
        self.last_event_at = 0.0
        self._on_activity = on_activity

        def activity() -> None:
            self.last_event_at = time.time()
            self._on_activity()

        self.exocorps: Informer[CachedExocorp] = Informer(
            kube, r.EXOCORPS, _exocorp, on_activity=activity, timeout_seconds=timeout_seconds,
            indexers={"owner": lambda e: [e.owner], "secret": _bound_secrets})
        self.releases: Informer[ExocorpRelease] = Informer(
            kube, r.RELEASES, _release, on_activity=activity, timeout_seconds=timeout_seconds)
        self.credentials: Informer[Credential] = Informer(
            kube, r.SECRETS, from_secret, namespace=platform_namespace,
            label_selector=CREDENTIAL_SELECTOR, on_activity=activity,
            timeout_seconds=timeout_seconds, indexers={"account": lambda c: [c.account]})
        self.revisions: Informer[CachedRevision] = Informer(
            kube, r.CONTROLLERREVISIONS, _revision, namespace=platform_namespace,
            label_selector=_REVISION_SELECTOR, on_activity=activity,
            timeout_seconds=timeout_seconds, indexers={"exocorp": lambda rev: [rev.exocorp]})
        self._tasks: list[asyncio.Task[None]] = []
        self._catalog: tuple[int, list[ExocorpReleaseSpec]] = (-1, [])

    @property
    def informers(self) -> tuple[Informer[Any], ...]:
        return (self.exocorps, self.releases, self.credentials, self.revisions)

    async def start(self) -> None:
        for informer in self.informers:
            self._tasks.append(asyncio.create_task(informer.run(),
                                                   name=f"watch-{informer.resource.plural}"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    @property
    def ready(self) -> bool:
        return all(informer.synced.is_set() for informer in self.informers)

    async def wait_ready(self) -> None:
        for informer in self.informers:
            await informer.synced.wait()

    # -- exocorps --------------------------------------------------------------------------------

    def exocorp(self, name: str) -> Exocorp | None:
        entry = self.exocorps.get(name)
        return entry.model if entry is not None else None

    def exocorp_entry(self, name: str) -> CachedExocorp | None:
        """The cached entry (model plus memoised renderings)."""
        return self.exocorps.get(name)

    def exocorps_bound_to(self, secret_name: str) -> list[Exocorp]:
        return [entry.model for entry in self.exocorps.by_index("secret", secret_name)]

    def revision_contents(self, name: str) -> dict[str, RevisionContent]:
        """Revision name -> content of one exocorp's revisions (``actions.revision_contents``'s
        shape, from the cache)."""
        return {rev.name: rev.content for rev in self.revisions.by_index("exocorp", name)}

    def observe_exocorp(self, obj: Obj) -> None:
        """Feed back an Exocorp this process wrote (the API server's answer)."""
        if obj.get("kind") == "Status":
            return
        self.exocorps.observe(obj)

    # -- releases --------------------------------------------------------------------------------

    def release_specs(self) -> list[ExocorpReleaseSpec]:
        """Every valid published release (withdrawn ones included), memoised per change."""
        generation, specs = self._catalog
        if generation != self.releases.generation:
            specs = [release.spec for release in self.releases.values()]
            specs.sort(key=lambda spec: spec.semver, reverse=True)
            self._catalog = (self.releases.generation, specs)
        return specs

    # -- credentials -----------------------------------------------------------------------------

    def credentials_of(self, account: str) -> list[Credential]:
        return self.credentials.by_index("account", account)

    def credential(self, secret_id: str, namespace: str) -> Credential | None:
        return self.credentials.get(f"{namespace}/{secret_id}")

    def provider_secrets(self, account: str) -> dict[str, list[str]]:
        """Provider -> credential Secret names of one account (``actions.provider_secrets``'s
        shape, from the cache)."""
        out: dict[str, list[str]] = {}
        for credential in self.credentials_of(account):
            out.setdefault(credential.provider, []).append(credential.id)
        return {provider: sorted(ids) for provider, ids in out.items()}

    def observe_credential(self, obj: Obj) -> None:
        """Feed back a credential Secret this process wrote (its value is dropped here)."""
        if obj.get("kind") == "Status":
            return
        self.credentials.observe(obj)

    def forget_credential(self, secret_id: str, namespace: str) -> None:
        """Drop a credential this process deleted (the DELETED event follows)."""
        self.credentials.forget(f"{namespace}/{secret_id}")
