"""The reconciler's dispatch (``Reconciler._reconcile``), run against an API server (kmock's
emulator, tests/plugins/api_server.py) with the real cache and settings: which pass an exocorp
gets and what ends up written."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from exocorp import names
from exocorp.k8s import Kube, Obj
from exocorp.k8s import resources as r
from exocorp.model import Exocorp
from exocorp.operator import rollout
from exocorp.operator.cache import ObjectCache
from exocorp.operator.reconciler import Reconciler
from exocorp.operator.settings import OperatorSettings
from exocorp.runtime import builders
from exocorp.testing import samples
from tests.plugins.api_server import ApiServer, Write

pytestmark = pytest.mark.unit
UID = "0b7c4d7e-2f0a-4c55-9a1e-6c1f0e0d0a01"


def exocorp(*, provisioned: bool = False, finalizer: bool = False, **spec: Any) -> Obj:
    body = samples.exocorp("acme", "alice")
    body["metadata"].update(uid=UID, generation=1, resourceVersion="1")
    if finalizer:
        body["metadata"]["finalizers"] = [names.FINALIZER]
    if provisioned:
        body["spec"].update(provisioned=True, release={"channel": "stable", "version": "1.0.0"},
                            config=samples.draft()["config"])
    body["spec"].update(spec)
    return body


def reconciler(client: Kube, settings: OperatorSettings | None = None) -> Reconciler:
    return Reconciler(client, ObjectCache(), settings or OperatorSettings())


def seed(server: ApiServer, operator: Reconciler, body: Obj) -> None:
    """The exocorp exists, and this shard's watch has put it in the cache."""
    server.store(r.EXOCORPS, body)
    operator.cache.store("Exocorp", copy.deepcopy(body))


def shape(writes: list[Write]) -> list[tuple[str, str, str | None]]:
    return [(w.verb, w.plural, w.subresource) for w in writes]


def events(writes: list[Write]) -> list[tuple[str, str]]:
    return [(w.body["type"], w.body["reason"]) for w in writes if w.plural == "events"]


async def test_a_draft_gets_its_draft_status_and_nothing_is_applied(
        api_server: ApiServer, api_client: Kube) -> None:
    operator = reconciler(api_client)
    seed(api_server, operator, exocorp())
    assert await operator.reconcile("acme") is None  # nothing to look at again until it changes
    stored = api_server.stored(r.EXOCORPS, "acme")
    assert stored is not None
    status = stored["status"]
    assert status["phase"] == "Draft"
    assert {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]
            if c["type"] in ("Ready", "Progressing")} == {
        "Ready": ("False", "Draft"), "Progressing": ("False", "Draft")}
    assert sorted(d["host"] for d in status["domains"]) == [
        "acme.app.exocorp.localhost", "acme.portal.exocorp.localhost"]
    # Its finalizer, its status and the phase's event; no namespace, no revision, no workload.
    assert shape(api_server.writes()) == [("patch", "exocorps", None),
                                          ("patch", "exocorps", "status"),
                                          ("create", "events", None)]
    assert events(api_server.writes()) == [("Normal", "PhaseChanged")]


async def test_a_deleted_exocorp_is_torn_down_and_then_let_go(
        api_server: ApiServer, api_client: Kube) -> None:
    operator = reconciler(api_client)
    body = exocorp(provisioned=True, finalizer=True)
    body["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    seed(api_server, operator, body)
    api_server.store(r.NAMESPACES, builders.namespace(Exocorp.model_validate(body)))

    assert await operator.reconcile("acme") == 2.0  # back when the namespace has gone
    assert api_server.stored(r.NAMESPACES, "exo-acme") is None
    stored = api_server.stored(r.EXOCORPS, "acme")
    assert stored is not None
    assert stored["status"]["phase"] == "Destroying"
    assert stored["metadata"]["finalizers"] == [names.FINALIZER]  # held until nothing is left
    assert shape(api_server.writes()) == [("patch", "exocorps", "status"),
                                          ("create", "events", None),
                                          ("delete", "namespaces", None)]
    assert events(api_server.writes()) == [("Normal", "Destroying")]

    operator.cache.store("Exocorp", stored)  # the watch brings the pass's own write back
    assert await operator.reconcile("acme") is None
    assert api_server.stored(r.EXOCORPS, "acme") is None  # finalizer removed: the object is gone
    assert shape(api_server.writes()[3:]) == [("patch", "exocorps", None)]


@pytest.mark.parametrize(("shard", "left_alone"), [("", True), ("b", False)])
async def test_an_exocorp_of_another_shard_is_left_alone(
        api_server: ApiServer, api_client: Kube, shard: str, left_alone: bool) -> None:
    body = exocorp()
    body["metadata"]["labels"] = {names.LABEL_SHARD: "b"}
    # Not in the cache: this shard's watch (a label selector) never listed it.
    api_server.store(r.EXOCORPS, copy.deepcopy(body))
    operator = reconciler(api_client, OperatorSettings(shard=shard))
    assert await operator.reconcile("acme") is None
    stored = api_server.stored(r.EXOCORPS, "acme")
    if left_alone:
        assert api_server.writes() == []
        assert stored == body
        assert operator.cache.get("Exocorp", "acme") is None
    else:  # shard b's own operator takes it on
        assert stored is not None
        assert stored["metadata"]["finalizers"] == [names.FINALIZER]
        assert stored["status"]["phase"] == "Draft"


async def test_an_invalid_spec_is_reported_in_an_event_and_nothing_else_is_written(
        api_server: ApiServer, api_client: Kube) -> None:
    operator = reconciler(api_client)
    # Provisioned without a release or config: a CRD older than its validation rule lets it in.
    body = exocorp(finalizer=True, provisioned=True)
    del body["spec"]["release"], body["spec"]["config"]
    seed(api_server, operator, body)
    assert await operator.reconcile("acme") is None
    (write,) = api_server.writes()
    assert (write.verb, write.plural, write.namespace) == ("create", "events",
                                                           names.EVENT_NAMESPACE)
    assert (write.body["type"], write.body["reason"]) == ("Warning", "InvalidSpec")
    assert "a provisioned exocorp needs release and config" in write.body["note"]
    assert write.body["regarding"]["name"] == "acme"
    assert api_server.stored(r.EXOCORPS, "acme") == body  # no status, no finalizer change


async def test_a_provisioned_exocorp_gets_its_finalizer_before_anything_exists(
        api_server: ApiServer, api_client: Kube) -> None:
    operator = reconciler(api_client)
    seed(api_server, operator, exocorp(provisioned=True))
    operator.cache.store("ExocorpRelease", samples.release("1.0.0"))
    # A rollout under way: its progress arrives as events, the re-check is only a safety net.
    assert await operator.reconcile("acme") == rollout.PROGRESS_RECHECK_SECONDS
    writes = api_server.writes()
    first, *rest = writes
    assert (first.verb, first.plural, first.name, first.subresource) == (
        "patch", "exocorps", "acme", None)
    assert first.body["metadata"]["finalizers"] == [names.FINALIZER]
    # Then the runtime: its namespace, the revision, the workloads, the status.
    assert ("create", "namespaces", None) in shape(rest)
    assert ("create", "controllerrevisions", None) in shape(rest)
    assert {w.name for w in rest if w.plural == "deployments"} == {"portal", "app", "agents"}
    assert shape(rest)[-3] == ("patch", "exocorps", "status")
    assert events(rest) == [("Normal", "RolloutStarted"), ("Normal", "PhaseChanged")]
    namespace = api_server.stored(r.NAMESPACES, "exo-acme")
    assert namespace is not None
    assert [ref["uid"] for ref in namespace["metadata"]["ownerReferences"]] == [UID]
    stored = api_server.stored(r.EXOCORPS, "acme")
    assert stored is not None
    assert stored["metadata"]["finalizers"] == [names.FINALIZER]
    assert stored["status"]["phase"] == "Provisioning"
