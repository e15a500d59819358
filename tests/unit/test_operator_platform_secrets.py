"""The operator's watch of provider-credential Secrets (an informer of the platform namespace)
survives anything: after an unexpected error, in the stream or in handling an event, it still
sees a rotated credential, so the runtimes bound to it are rolled."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from exocorp.k8s import resources as r
from exocorp.operator.cache import ObjectCache
from exocorp.operator.informer import Informer

Obj = dict[str, Any]
NAMESPACE = "exocorp-system"


def _secret(name: str, rv: int, value: str) -> Obj:
    return {"metadata": {"name": name, "namespace": NAMESPACE, "resourceVersion": str(rv)},
            "data": {"value": value}}


class _Cluster:
    """Lists the current Secrets; the first watch fails (when asked to), every later one
    delivers the rotation and then stays open."""

    def __init__(self, *, watch_fails: bool) -> None:
        self.secrets = {"acme-anthropic": _secret("acme-anthropic", 100, "djE=")}
        self.watch_fails = watch_fails
        self.watches = 0

    async def list_pages(self, resource: r.Resource, namespace: str | None = None, *,
                         label_selector: str | None = None) -> AsyncIterator[Obj]:
        yield {"metadata": {"resourceVersion": "100"}, "items": list(self.secrets.values())}

    async def watch(self, resource: r.Resource, namespace: str | None = None, *,
                    resource_version: str | None = None, label_selector: str | None = None,
                    timeout_seconds: int = 300) -> AsyncIterator[Obj]:
        self.watches += 1
        if self.watches == 1 and self.watch_fails:
            raise RuntimeError("a bug nobody anticipated")
        rotated = _secret("acme-anthropic", 101, "djI=")
        self.secrets["acme-anthropic"] = rotated
        yield {"type": "MODIFIED", "object": rotated}
        await asyncio.Event().wait()  # the stream stays open


@pytest.mark.parametrize("failure", ["in the watch stream", "in handling an event"])
async def test_an_unexpected_error_does_not_stop_credential_rotation(failure: str) -> None:
    cluster = _Cluster(watch_fails=failure == "in the watch stream")
    cache = ObjectCache()
    changed: list[str] = []
    rotated = asyncio.Event()

    def on_change(event_type: str, obj: Obj) -> None:
        name = obj["metadata"]["name"]
        body = cache.get("Secret", name, NAMESPACE) or {}
        if body.get("data", {}).get("value") == "djI=":
            if failure == "in handling an event" and "failed once" not in changed:
                changed.append("failed once")
                raise KeyError("a bug nobody anticipated")
            rotated.set()
        changed.append(name)

    watch = Informer(cluster, cache, "Secret", r.SECRETS, on_change,  # type: ignore[arg-type]
                     namespace=NAMESPACE)
    task = asyncio.create_task(watch.run())
    seen = asyncio.create_task(rotated.wait())
    done, _ = await asyncio.wait({task, seen}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
    seen.cancel()
    task.cancel()
    await asyncio.gather(task, seen, return_exceptions=True)
    assert task not in done, f"the secret watch ended: {task.exception()!r}"
    assert seen in done, "the rotated credential was never seen"
    assert changed[-1] == "acme-anthropic"
    assert cache.get("Secret", "acme-anthropic", NAMESPACE)["data"]["value"] == "djI="
