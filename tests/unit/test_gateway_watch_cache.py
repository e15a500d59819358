"""The watch cache as an informer: list, then watch from the list's resourceVersion; bookmarks
move it forward; 410 Gone relists; errors reconnect; older versions never replace newer ones;
credential values are never kept; and reads are answered without any API-server call."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from exocorp.api_gateway.watch_cache import WatchCache
from exocorp.k8s import ApiError, informer
from exocorp.k8s import resources as r
from exocorp.k8s.informer import Informer
from exocorp.k8s.resources import Resource
from exocorp.testing import samples
from exocorp.testing.waiting import eventually
from tests.plugins.gateway import FakeKube, Gateway

pytestmark = pytest.mark.unit

Obj = dict[str, Any]


def _exo(name: str, rv: int, owner: str = "usr_1") -> Obj:
    obj = samples.exocorp(name, owner)
    obj["metadata"].update({"resourceVersion": str(rv), "generation": 1})
    return obj


class ScriptedKube(FakeKube):
    """A FakeKube whose watch streams are scripted: each watch call plays the next script
    (a list of events, possibly ending with an exception); then it blocks."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[list[Any]] = []
        self.watch_versions: list[str | None] = []
        self.lists = 0
        self.list_items: list[Obj] = []
        self.list_rv = "10"
        self.later_lists: list[tuple[list[Obj], str]] = []
        self.list_failures = 0

    async def list_pages(self, resource: Resource, namespace: str | None = None, *,
                         label_selector: str | None = None,
                         page: int = 500) -> AsyncIterator[Obj]:
        self.lists += 1
        if self.list_failures:
            self.list_failures -= 1
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if self.lists > 1 and self.later_lists:
            self.list_items, self.list_rv = self.later_lists.pop(0)
        yield {"items": list(self.list_items), "metadata": {"resourceVersion": self.list_rv}}

    async def watch(self, resource: Resource, namespace: str | None = None, *,
                    resource_version: str | None = None, label_selector: str | None = None,
                    timeout_seconds: int = 300) -> AsyncIterator[Obj]:
        self.watch_versions.append(resource_version)
        script = self.scripts.pop(0) if self.scripts else None
        if script is None:
            await asyncio.Event().wait()  # an idle stream
            return
        for item in script:
            if isinstance(item, BaseException):
                raise item
            yield item


@pytest.fixture(autouse=True)
def _fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(informer, "_BACKOFF_START", 0.01)


async def _run(informer: Informer[Any]) -> asyncio.Task[None]:
    return asyncio.create_task(informer.run())


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_list_then_watch_with_events_and_bookmarks() -> None:
    kube = ScriptedKube()
    kube.list_items = [_exo("alpha", 5)]
    kube.scripts = [[
        {"type": "ADDED", "object": _exo("bravo", 11)},
        {"type": "MODIFIED", "object": _exo("alpha", 12, owner="usr_2")},
        {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "20"}}},
        {"type": "DELETED", "object": _exo("bravo", 21)},
    ], [
        {"type": "ADDED", "object": _exo("charlie", 30)},
    ]]
    cache = WatchCache(kube, platform_namespace="ns")
    task = await _run(cache.exocorps)
    try:
        await eventually(lambda: _value(cache.exocorp("charlie")), lambda e: e is not None,
                         within=5)
        assert sorted(e.name for e in cache.exocorps.values()) == ["alpha", "charlie"]
        assert cache.exocorp("alpha").spec.owner == "usr_2"  # type: ignore[union-attr]
        assert kube.watch_versions[:2] == ["10", "21"]  # list rv, then the last event seen
        assert cache.exocorps.synced.is_set()
        assert kube.lists == 1
        assert cache.last_event_at > 0
    finally:
        await _stop(task)


async def _value(value: Any) -> Any:
    return value


async def test_410_gone_relists_and_drops_what_vanished() -> None:
    kube = ScriptedKube()
    kube.list_items = [_exo("alpha", 5), _exo("bravo", 6)]
    kube.scripts = [[ApiError(410, "Expired", "too old resource version")]]
    cache = WatchCache(kube, platform_namespace="ns")
    kube.later_lists = [([_exo("bravo", 40)], "41")]
    task = await _run(cache.exocorps)
    try:
        await eventually(lambda: _value(kube.lists), lambda n: n == 2, within=5)
        await eventually(lambda: _value(cache.exocorp("alpha")), lambda e: e is None, within=5)
        assert [e.name for e in cache.exocorps.values()] == ["bravo"]
        assert cache.exocorps.relists == 1
        await eventually(lambda: _value(kube.watch_versions), lambda v: v[-1:] == ["41"],
                         within=5)
    finally:
        await _stop(task)


async def test_not_ready_until_the_first_list_succeeds() -> None:
    kube = ScriptedKube()
    kube.list_failures = 3  # e.g. the CRDs are not installed yet
    cache = WatchCache(kube, platform_namespace="ns")
    await cache.start()
    try:
        await asyncio.sleep(0)
        assert not cache.ready
        await asyncio.wait_for(cache.wait_ready(), timeout=5)
        assert cache.ready
    finally:
        await cache.stop()


async def test_connection_errors_reconnect_from_the_last_version() -> None:
    kube = ScriptedKube()
    kube.scripts = [[{"type": "ADDED", "object": _exo("alpha", 11)}, OSError("connection reset")],
                    [{"type": "ADDED", "object": _exo("bravo", 12)}]]
    cache = WatchCache(kube, platform_namespace="ns")
    task = await _run(cache.exocorps)
    try:
        await eventually(lambda: _value(cache.exocorp("bravo")), lambda e: e is not None, within=5)
        assert kube.watch_versions[:2] == ["10", "11"]
        assert kube.lists == 1
    finally:
        await _stop(task)


def test_an_older_version_never_replaces_a_newer_one() -> None:
    cache = WatchCache(FakeKube(), platform_namespace="ns")
    cache.observe_exocorp(_exo("alpha", 50, owner="usr_new"))
    cache.exocorps.observe(_exo("alpha", 40, owner="usr_old"))
    assert cache.exocorp("alpha").spec.owner == "usr_new"  # type: ignore[union-attr]
    cache.exocorps.observe(_exo("alpha", 60, owner="usr_newer"))
    assert cache.exocorp("alpha").spec.owner == "usr_newer"  # type: ignore[union-attr]
    assert [e.name for e in cache.exocorps.by_index("owner", "usr_newer")] == ["alpha"]
    assert cache.exocorps.by_index("owner", "usr_new") == []


def test_credential_values_are_dropped_on_arrival() -> None:
    cache = WatchCache(FakeKube(), platform_namespace="exocorp-system")
    secret = samples.provider_secret("s1", "exocorp-system", "usr_1", "anthropic",
                                     "sk-very-secret")
    secret["metadata"]["resourceVersion"] = "7"
    cache.credentials.observe(secret)
    held = cache.credential("s1", "exocorp-system")
    assert held is not None
    assert (held.account, held.provider) == ("usr_1", "anthropic")
    dumped = repr(vars(held)) + repr(cache.credentials._items)
    assert "sk-very-secret" not in dumped
    assert base64.b64encode(b"sk-very-secret").decode() not in dumped
    assert cache.provider_secrets("usr_1") == {"anthropic": ["s1"]}


async def test_reads_make_no_api_server_call(gateway: Gateway) -> None:
    await gateway.signup("ada@example.com")
    await gateway.company("acme", draft=samples.draft("1.0.0"))
    await gateway.client.post("/api/registry/provider-secrets", json={
        "provider": "anthropic", "name": "main", "value": "sk-1"})
    before = len(gateway.kube.calls)
    for path in ("/api/registry/my-companies", "/api/registry/companies/acme",
                 "/api/registry/companies/acme/bindings",
                 "/api/registry/companies/acme/update-handshake",
                 "/api/registry/companies/acme/draft", "/api/registry/provider-secrets",
                 "/api/registry/company-releases/current",
                 "/api/registry/company-releases/catalog", "/api/dashboard/summary"):
        for _ in range(3):
            response = await gateway.client.get(path)
            assert response.status == 200, path
    assert gateway.kube.calls[before:] == []


async def test_own_writes_are_read_back_at_once(gateway: Gateway) -> None:
    """A client reads its own write immediately, before any watch event arrives (there is no
    watch running in the unit tests at all)."""
    await gateway.signup("ada@example.com")
    await gateway.company("acme", draft=samples.draft("1.0.0"))
    await gateway.client.post("/api/registry/provider-secrets", json={
        "provider": "anthropic", "name": "main", "value": "sk-1"})
    accepted = await gateway.client.post("/api/registry/companies/acme/provision")
    assert accepted.status == 202
    detail = await (await gateway.client.get("/api/registry/companies/acme")).json()
    assert (detail["phase"], detail["release"]["version"]) == ("Provisioning", "1.0.0")
    assert gateway.kube.objects[("exocorps", "", "acme")]["spec"]["provisioned"] is True
    assert r.EXOCORPS.plural == "exocorps"


async def test_an_unexpected_error_relists_instead_of_ending_the_informer() -> None:
    kube = ScriptedKube()
    kube.list_items = [_exo("alpha", 5)]
    kube.scripts = [[asyncio.IncompleteReadError(b"", 10)]]  # not a ClientError nor an OSError
    kube.later_lists = [([_exo("alpha", 5), _exo("bravo", 7)], "8")]
    cache = WatchCache(kube, platform_namespace="ns")
    task = await _run(cache.exocorps)
    try:
        await eventually(lambda: _value(cache.exocorp("bravo")), lambda e: e is not None,
                         within=5)
        assert not task.done()
        assert kube.lists == 2
    finally:
        await _stop(task)
