"""The gateway's watch cache: an informer per resource (``exocorp.k8s.informer``: list, then watch
from the list's resourceVersion with bookmarks; relist on 410 Gone; reconnect with backoff on
errors), so that reads never make an API-server round trip.

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
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from exocorp import names
from exocorp.api_gateway.credentials import CREDENTIAL_SELECTOR, Credential, from_secret
from exocorp.k8s import Kube, Obj
from exocorp.k8s import resources as r
from exocorp.k8s.informer import Informer, Subscription
from exocorp.model import Exocorp, ExocorpRelease, ExocorpReleaseSpec, RevisionContent
from exocorp.model.compact import interned, share_fields_sets

__all__ = ["CachedExocorp", "CachedRevision", "Informer", "Subscription", "WatchCache"]

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class CachedExocorp:
    """One Exocorp as read from the watch: the parsed model (the raw body is not kept; the
    model's fields sets are shared, so it must not be assigned to), and answers rendered from it
    (a new version of the object is a new entry)."""

    model: Exocorp
    rendered: dict[tuple[str, str], bytes] = field(default_factory=dict, compare=False,
                                                   repr=False)
    actions: dict[Hashable, tuple[tuple[object, ...], bytes]] = field(
        default_factory=dict, compare=False, repr=False)
    """The ``actions`` map of the detail answer, per caller: what it was planned from (see
    ``availability.company_actions_json``) and its JSON."""
    usage: dict[Hashable, object] = field(default_factory=dict, compare=False, repr=False)
    """What this version requests and costs, per release catalog (and price): see
    ``allowances``. Every action sums it over the owner's other exocorps."""

    @property
    def name(self) -> str:
        return self.model.metadata.name

    @property
    def owner(self) -> str:
        return self.model.spec.owner


def _read_fields(obj: Obj) -> Obj:
    """``obj`` without the metadata the model ignores and is the bulk of an object's bytes (each
    writer's ``managedFields``): not worth interning."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or "managedFields" not in meta:
        return obj
    return {**obj, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}


def _exocorp(obj: Obj) -> CachedExocorp | None:
    try:
        model = Exocorp.model_validate(interned(_read_fields(obj)))
    except ValidationError:
        log.warning("ignoring Exocorp %s: it does not match the schema",
                    (obj.get("metadata") or {}).get("name"))
        return None
    share_fields_sets(model)  # with interned(): 60% fewer bytes (docs/performance.md)
    return CachedExocorp(model)


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
        content = RevisionContent.model_validate(interned(obj.get("data") or {}))
    except ValidationError:
        return None
    share_fields_sets(content)
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
        return self.catalog()[1]

    def catalog(self) -> tuple[int, list[ExocorpReleaseSpec]]:
        """:meth:`release_specs` with the generation it was built at: what is worked out from
        the catalog can be memoised against that number."""
        generation, specs = self._catalog
        if generation != self.releases.generation:
            specs = [release.spec for release in self.releases.values()]
            specs.sort(key=lambda spec: spec.semver, reverse=True)
            self._catalog = (self.releases.generation, specs)
        return self._catalog

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
