"""What the operator's watch callbacks (``handlers.py``) set in motion: which exocorps get a
reconcile pass queued for each event, and the release status written when a release changes.
The operator's state is built as its start-up handler builds it (real cache, settings,
reconciler, release status writer) on an API server (kmock's emulator); the work queue is not
started, so what a callback queued is still waiting in it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from exocorp import names
from exocorp.k8s import Kube, Obj
from exocorp.k8s import resources as r
from exocorp.operator import handlers
from exocorp.operator.cache import ObjectCache
from exocorp.operator.reconciler import Reconciler
from exocorp.operator.release_status import ReleaseStatusWriter
from exocorp.operator.settings import OperatorSettings
from exocorp.testing import samples
from tests.plugins.api_server import ApiServer

pytestmark = pytest.mark.unit
EVENTS = ("ADDED", "MODIFIED", "DELETED")


@pytest.fixture
async def operator(api_client: Kube) -> AsyncIterator[handlers.Operator]:
    state = handlers.Operator()
    state.kube, state.settings, state.cache = api_client, OperatorSettings(), ObjectCache()
    state.reconciler = Reconciler(state.kube, state.cache, state.settings)
    state.release_status = ReleaseStatusWriter(state.kube, state.cache)
    writer = asyncio.create_task(state.release_status.run())
    yield state
    writer.cancel()
    await asyncio.gather(writer, return_exceptions=True)


def queued(state: handlers.Operator) -> set[str]:
    """The exocorps waiting for a reconcile pass."""
    return set(state.reconciler.queue._queued)


def exocorp(name: str, version: str | None = None, secrets: tuple[str, ...] = ()) -> Obj:
    """An exocorp (provisioned on ``version`` if given) bound to the provider credentials
    ``secrets``, each named <account>-<provider>."""
    body = samples.exocorp(name, "alice")
    body["metadata"]["resourceVersion"] = "1"
    if version is not None:
        body["spec"].update(provisioned=True, release={"channel": "stable", "version": version},
                            config=samples.draft()["config"])
    body["spec"]["providerBindings"] = [
        {"provider": secret.split("-")[1], "secretName": secret} for secret in secrets]
    return body


def watched(state: handlers.Operator, kind: str, *bodies: Obj) -> None:
    """The watch has put ``bodies`` in the cache (it does before it calls back)."""
    for body in bodies:
        state.cache.store(kind, body)


async def until(predicate: Callable[[], Any]) -> None:
    for _ in range(500):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("not reached")


@pytest.mark.parametrize(("event", "wanted"), [
    ("ADDED", {"acme"}), ("MODIFIED", {"acme"}),
    ("DELETED", set()),  # gone; a deletion in progress is a MODIFIED (deletionTimestamp)
])
async def test_an_exocorp_event_queues_that_exocorp_unless_it_is_gone(
        operator: handlers.Operator, event: str, wanted: set[str]) -> None:
    body = exocorp("acme")
    watched(operator, "Exocorp", body, exocorp("other"))
    handlers._exocorp_changed(operator, event, body)
    assert queued(operator) == wanted


async def test_a_release_change_queues_the_exocorps_on_it_and_writes_its_status(
        operator: handlers.Operator, api_server: ApiServer) -> None:
    watched(operator, "Exocorp", exocorp("a", "1.0.0"), exocorp("b", "1.0.0"),
            exocorp("c", "2.0.0"), exocorp("draft"))
    release = samples.release("1.0.0", ("stable", "beta"))
    release["metadata"].update(generation=3, resourceVersion="7")
    api_server.store(r.RELEASES, release)
    watched(operator, "ExocorpRelease", release)

    handlers._release_changed(operator, "MODIFIED", release)
    assert queued(operator) == {"a", "b"}
    await until(lambda: (api_server.stored(r.RELEASES, "release-1-0-0") or {}).get("status"))
    stored = api_server.stored(r.RELEASES, "release-1-0-0")
    assert stored is not None
    assert stored["status"] == {"channels": "stable,beta", "observedGeneration": 3}


async def test_a_deleted_release_queues_the_exocorps_that_ran_it(
        operator: handlers.Operator, api_server: ApiServer) -> None:
    # They report ReleaseNotFound on their next pass; there is no status left to write.
    watched(operator, "Exocorp", exocorp("a", "1.0.0"), exocorp("c", "2.0.0"))
    handlers._release_changed(operator, "DELETED", samples.release("1.0.0"))
    assert queued(operator) == {"a"}


@pytest.mark.parametrize("event", EVENTS)
async def test_a_change_of_an_owned_object_queues_its_exocorp(
        operator: handlers.Operator, event: str) -> None:
    # A Deployment deleted by hand must come back too: DELETED queues its exocorp as well.
    watched(operator, "Exocorp", exocorp("acme"), exocorp("other"))
    pod = {"metadata": {"name": "agents-1", "namespace": "exo-acme",
                        "labels": {names.LABEL_EXOCORP: "acme"}}}
    handlers._owned_changed(operator, event, pod)
    stray = {"metadata": {"name": "x", "namespace": "exo-acme", "labels": {"app": "x"}}}
    handlers._owned_changed(operator, event, stray)  # not an exocorp's: nothing to do
    assert queued(operator) == {"acme"}


@pytest.mark.parametrize("event", EVENTS)
async def test_a_provider_credential_change_queues_the_exocorps_bound_to_it(
        operator: handlers.Operator, event: str) -> None:
    watched(operator, "Exocorp", exocorp("a", "1.0.0", ("alice-anthropic",)),
            exocorp("b", "1.0.0", ("alice-openai",)),
            exocorp("c", "1.0.0", ("alice-openai", "alice-anthropic")), exocorp("draft"))
    secret = samples.provider_secret("alice-anthropic", "exocorp-system", "alice", "anthropic",
                                     "sk-1")
    handlers._secret_changed(operator, event, secret)  # rotated, or removed: either way, look
    assert queued(operator) == {"a", "c"}
