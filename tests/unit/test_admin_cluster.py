"""Reading the cluster for the admin and runtime endpoints: quantities, what a pod requests,
node health and capacity, who sees which placements, component health, and what the reader
asks the API server (scoped lists; one shared snapshot for a burst of callers; failures reported,
not raised)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from exocorp import names
from exocorp.api_gateway.runtime.cluster import (
    ClusterReader,
    ClusterSnapshot,
    component_health,
    cpu_millicores,
    execution_state,
    memory_bytes,
    parse_quantity,
    pod_requests,
    pod_view,
)
from exocorp.k8s import ApiError
from exocorp.k8s.resources import Resource
from exocorp.model import ComponentStatus

pytestmark = pytest.mark.unit
Obj = dict[str, Any]
NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("text", "expected"), [
    ("250m", Decimal("0.25")), ("2", Decimal(2)), ("1.5", Decimal("1.5")),
    ("512Mi", Decimal(512 * 2**20)), ("1Gi", Decimal(2**30)), ("1k", Decimal(1000)),
    ("1e3", Decimal(1000)), ("1E", Decimal(10) ** 18), ("100n", Decimal("1e-7")),
    (".5", Decimal("0.5")), ("+3", Decimal(3)), (7, Decimal(7)),
])
def test_quantities_parse_as_kubernetes_writes_them(text: object, expected: Decimal) -> None:
    assert parse_quantity(text) == expected


@pytest.mark.parametrize("text", ["", "m", "1.2.3", "12Zi", "abc", "1 Gi", None, True, "nan"])
def test_malformed_quantities_are_refused(text: object) -> None:
    with pytest.raises(ValueError, match="not a quantity"):
        parse_quantity(text)


def test_cpu_rounds_up_to_millicores_and_bad_values_count_as_zero() -> None:
    assert cpu_millicores("100m") == 100
    assert cpu_millicores("0.0005") == 1
    assert cpu_millicores("2") == 2000
    assert memory_bytes("1Ki") == 1024
    assert cpu_millicores("garbage") == 0


def _pod(name: str, *, node: str | None = "n1", exocorp: str | None = "acme",
         cpu: str = "100m", memory: str = "64Mi", **extra: Any) -> Obj:
    labels = {names.LABEL_EXOCORP: exocorp, names.LABEL_COMPONENT: "portal"} if exocorp else {}
    spec: Obj = {"containers": [{"name": "c", "resources": {
        "requests": {"cpu": cpu, "memory": memory}}}]}
    if node:
        spec["nodeName"] = node
    return {"metadata": {"name": name, "namespace": f"exo-{exocorp}", "labels": labels},
            "spec": spec, "status": extra.pop("status", {"phase": "Running"}), **extra}


def test_pod_requests_count_like_the_scheduler() -> None:
    pod = _pod("p")
    pod["spec"]["containers"].append({"name": "side", "resources": {
        "requests": {"cpu": "50m"}}})
    assert pod_requests(pod) == (150, 64 * 2**20)
    pod["spec"]["initContainers"] = [{"name": "init", "resources": {
        "requests": {"cpu": "1", "memory": "1Mi"}}}]
    assert pod_requests(pod) == (1000, 64 * 2**20)  # the biggest init container wins CPU
    pod["spec"]["overhead"] = {"cpu": "10m", "memory": "1Mi"}
    assert pod_requests(pod) == (1010, 65 * 2**20)
    assert pod_requests({"spec": {"containers": [{"name": "bare"}]}}) == (0, 0)


def _node(name: str, *, ready: bool = True, unschedulable: bool = False,
          pressure: str | None = None) -> Obj:
    conditions = [{"type": "Ready", "status": "True" if ready else "False"}]
    if pressure:
        conditions.append({"type": pressure, "status": "True"})
    return {"metadata": {"name": name}, "spec": {"unschedulable": unschedulable},
            "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                       "conditions": conditions}}


def test_execution_state_sums_requests_per_node_and_grades_health() -> None:
    snapshot = ClusterSnapshot(
        nodes=[_node("n1"), _node("n2", pressure="MemoryPressure"), _node("n3", ready=False),
               _node("n4", unschedulable=True)],
        pods=[_pod("a", cpu="500m"), _pod("b", exocorp="other", cpu="250m"),
              _pod("c", node="n3"), _pod("sys", exocorp=None, cpu="1"),
              _pod("pending", node=None), _pod("pending-other", node=None, exocorp="other")],
        observed_at=NOW)
    state = execution_state(snapshot, lambda _: True, scope="fleet")
    assert (state.scope, state.health, state.nodes_total, state.nodes_ready) == (
        "fleet", "degraded", 4, 3)
    n1, n2, n3, n4 = state.nodes
    assert (n1.health, n2.health, n3.health, n4.health) == (
        "healthy", "pressure", "not_ready", "cordoned")
    assert n2.problems == ["MemoryPressure"]
    assert n3.problems == ["NotReady"]
    assert (n1.capacity.cpu_allocatable_millicores, n1.capacity.cpu_requested_millicores,
            n1.capacity.memory_allocatable_bytes, n1.capacity.pods) == (4000, 1750, 8 * 2**30, 3)
    assert n1.exocorps == ["acme", "other"]
    # Totals cover ready nodes only: n3's pod and allocatable are not counted.
    assert state.capacity.cpu_allocatable_millicores == 3 * 4000
    assert state.capacity.cpu_requested_millicores == 1750
    assert (state.pending_pods, state.exocorps_placed) == (2, 2)
    assert state.observed_at == "2030-01-01T12:00:00Z"


def test_users_see_only_their_own_placements() -> None:
    snapshot = ClusterSnapshot(nodes=[_node("n1")], pods=[
        _pod("a"), _pod("b", exocorp="other"), _pod("p", node=None, exocorp="other")],
        observed_at=NOW)
    state = execution_state(snapshot, {"acme"}.__contains__, scope="own")
    assert state.scope == "own"
    assert state.nodes[0].exocorps == ["acme"]
    assert (state.pending_pods, state.exocorps_placed) == (0, 1)
    # Capacity is the cluster's, whoever asks: requests of every pod count.
    assert state.nodes[0].capacity.cpu_requested_millicores == 200


def test_no_ready_node_is_unavailable() -> None:
    state = execution_state(ClusterSnapshot(nodes=[_node("n1", ready=False)], pods=[],
                                            observed_at=NOW), lambda _: True, scope="fleet")
    assert (state.health, state.nodes_ready, state.capacity.cpu_allocatable_millicores) == (
        "unavailable", 0, 0)
    empty = execution_state(ClusterSnapshot(nodes=[], pods=[], observed_at=NOW),
                            lambda _: True, scope="fleet")
    assert empty.health == "unavailable"


def test_pod_view_reports_readiness_restarts_and_why_it_waits() -> None:
    pod = _pod("portal-1", status={
        "phase": "Running", "startTime": "2030-01-01T11:00:00Z",
        "conditions": [{"type": "Ready", "status": "False"}],
        "containerStatuses": [
            {"name": "c", "restartCount": 4, "state": {"waiting": {"reason": "CrashLoopBackOff"}}},
            {"name": "d", "restartCount": 1, "state": {"running": {}}}]})
    view = pod_view(pod)
    assert (view.name, view.component, view.node, view.ready, view.restarts,
            view.waiting_reason) == ("portal-1", "portal", "n1", False, 5, "CrashLoopBackOff")


@pytest.mark.parametrize(("status", "waiting", "rolling", "health"), [
    (ComponentStatus(name="c", desired=2, ready=2, available=2), None, False, "healthy"),
    (ComponentStatus(name="c", desired=0), None, False, "stopped"),
    (ComponentStatus(name="c", desired=2, available=0), None, True, "progressing"),
    (ComponentStatus(name="c", desired=2, available=0), "CrashLoopBackOff", True, "down"),
    (ComponentStatus(name="c", desired=2, available=0), None, False, "down"),
    (ComponentStatus(name="c", desired=2, available=1), None, False, "degraded"),
    (ComponentStatus(name="c", desired=2, available=2), "CrashLoopBackOff", False, "degraded"),
])
def test_component_health(status: ComponentStatus, waiting: str | None, rolling: bool,
                          health: str) -> None:
    pods = [pod_view(_pod("x", status={"phase": "Running", "containerStatuses": [
        {"restartCount": 0, "state": {"waiting": {"reason": waiting}} if waiting else {}}]}))]
    assert component_health(status, pods, rolling_out=rolling).health == health


class StubKube:
    """Answers lists from canned items; records each call; may refuse a resource."""

    def __init__(self, items: dict[tuple[str, str | None], list[Obj]],
                 refuse: dict[str, ApiError] | None = None) -> None:
        self.items = items
        self.refuse = refuse or {}
        self.calls: list[tuple[str, str | None, str | None, str | None]] = []
        self.delay = 0.0

    async def list(self, resource: Resource, namespace: str | None = None, *,
                   label_selector: str | None = None, field_selector: str | None = None,
                   limit: int | None = None, continue_: str | None = None) -> Obj:
        self.calls.append((resource.plural, namespace, label_selector, field_selector))
        await asyncio.sleep(self.delay)
        if resource.plural in self.refuse:
            raise self.refuse[resource.plural]
        items = self.items.get((resource.plural, namespace), [])
        start = int(continue_ or 0)
        page = items[start:start + (limit or len(items))]
        more = start + len(page) < len(items)
        return {"items": page, "metadata": {"continue": str(start + len(page)) if more else ""}}


def _event(name: str, at: str, namespace: str = "exo-acme", kind: str = "Pod") -> Obj:
    return {"metadata": {"name": name, "namespace": namespace}, "type": "Warning",
            "reason": "BackOff", "message": "restarting", "lastTimestamp": at,
            "involvedObject": {"kind": kind, "name": "x"}, "count": 3}


async def test_one_exocorps_runtime_is_read_with_scoped_lists() -> None:
    kube = StubKube({
        ("pods", "exo-acme"): [_pod("b-pod"), _pod("a-pod")],
        ("events", "exo-acme"): [_event("e1", "2030-01-01T10:00:00Z"),
                                 _event("e2", "2030-01-01T11:00:00Z")],
        ("events", "default"): [_event("x1", "2030-01-01T10:30:00Z", "default", "Exocorp")],
    })
    reader = ClusterReader(kube, clock=lambda: NOW)  # type: ignore[arg-type]
    runtime = await reader.exocorp_runtime("acme")
    assert runtime.namespace == "exo-acme"
    assert [p.name for p in runtime.pods] == ["a-pod", "b-pod"]
    assert [(e.reason, e.namespace, e.object) for e in runtime.events] == [
        ("BackOff", "exo-acme", "Pod/x"), ("BackOff", "default", "Exocorp/x"),
        ("BackOff", "exo-acme", "Pod/x")]
    assert [e.last_seen for e in runtime.events] == [
        "2030-01-01T11:00:00Z", "2030-01-01T10:30:00Z", "2030-01-01T10:00:00Z"]
    assert sorted(kube.calls, key=str) == sorted([
        ("pods", "exo-acme", f"{names.LABEL_EXOCORP}=acme", None),
        ("events", "exo-acme", None, None),
        ("events", "default", None, "involvedObject.kind=Exocorp,involvedObject.name=acme")],
        key=str)
    assert runtime.problems == []


async def test_a_forbidden_read_is_a_problem_not_an_error() -> None:
    kube = StubKube({("pods", "exo-acme"): [_pod("a")]},
                    refuse={"events": ApiError(403, "Forbidden", "events is forbidden")})
    runtime = await ClusterReader(kube).exocorp_runtime("acme")  # type: ignore[arg-type]
    assert [p.name for p in runtime.pods] == ["a"]
    assert runtime.events == []
    assert runtime.problems == ["events: the gateway is not allowed to read them (check its "
                                "RBAC)"]


async def test_a_burst_of_callers_shares_one_cluster_snapshot() -> None:
    kube = StubKube({("nodes", None): [_node("n1")],
                     ("pods", None): [_pod(f"p{i}") for i in range(1200)]})
    kube.delay = 0.01
    reader = ClusterReader(kube, ttl=60)  # type: ignore[arg-type]
    snapshots = await asyncio.gather(*(reader.cluster() for _ in range(20)))
    assert all(s is snapshots[0] for s in snapshots)
    assert len(snapshots[0].pods) == 1200  # paged: 500 + 500 + 200
    assert [c[0] for c in kube.calls] == ["nodes", "pods", "pods", "pods"]
    assert {c[3] for c in kube.calls if c[0] == "pods"} == {
        "status.phase!=Succeeded,status.phase!=Failed"}
    reader.ttl = 0
    await reader.cluster()
    assert len(kube.calls) == 8  # expired: read again


async def test_cluster_read_failures_are_reported() -> None:
    kube = StubKube({}, refuse={"nodes": ApiError(500, "InternalError", "boom")})
    snapshot = await ClusterReader(kube).cluster()  # type: ignore[arg-type]
    assert snapshot.nodes == []
    assert snapshot.problems == ["nodes: the API server did not answer (ApiError)"]
