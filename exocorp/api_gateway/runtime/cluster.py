"""What the cluster says about runtimes: pods, events and nodes, read from the API server.

Exocorps and releases come from the gateway's watch cache; pods, events and nodes do not. They
change constantly, there are many more of them than exocorps (every pod and event of the whole
cluster), and only platform owners' admin pages and the capacity endpoint read them, rarely. A
watch of each would make every gateway replica hold and follow the whole cluster's pods and
events around the clock for a handful of reads a day. So they are read on demand instead, with
two bounds on what that costs the API server:

- one exocorp's runtime (``exocorp_runtime``) is two or three small, scoped lists: the pods of
  its namespace (label-selected) and the events of that namespace and of its Exocorp object
  (field-selected), at most ``EVENT_LIMIT`` of each;
- the cluster view (``cluster``: every node and every unfinished pod) is a snapshot shared by
  all callers for ``ttl`` seconds (default 5), loaded by one caller while the others wait, so a
  burst of N requests costs one pair of lists, not N.

Answers carry ``observedAt``, so a reader knows how fresh they are. A read the gateway is not
allowed to make (RBAC) or that fails is reported in ``problems`` instead of failing the page.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Generic, TypeVar

from aiohttp import web

from exocorp import names
from exocorp.api_gateway.keys import CLOCK, KUBE
from exocorp.api_gateway.runtime.schemas import (
    Capacity,
    ComponentHealth,
    ComponentHealthState,
    EventView,
    ExecutionProviderState,
    NodeHealth,
    NodeView,
    PodView,
)
from exocorp.k8s import ApiError, Kube, Obj
from exocorp.k8s import resources as r
from exocorp.model import ComponentStatus, format_timestamp
from exocorp.model.quantity import parse_quantity
from exocorp.names import EVENT_NAMESPACE, runtime_namespace

__all__ = [
    "CLUSTER_READER",
    "EVENT_LIMIT",
    "ClusterReader",
    "ClusterSnapshot",
    "ExocorpRuntime",
    "cluster_reader",
    "component_health",
    "cpu_millicores",
    "execution_state",
    "install_cluster_reader",
    "memory_bytes",
    "parse_quantity",
    "pod_requests",
    "pod_view",
]

log = logging.getLogger(__name__)

EVENT_LIMIT = 50
_PAGE = 500
_TERMINAL = "status.phase!=Succeeded,status.phase!=Failed"
_PRESSURE = ("MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable")

# -- quantities ----------------------------------------------------------------------------------


def _quantity_or_zero(value: object) -> Decimal:
    try:
        return parse_quantity(value)
    except ValueError:
        return Decimal(0)


def cpu_millicores(value: object) -> int:
    """CPU quantity in millicores, rounded up (as the scheduler counts)."""
    return int((_quantity_or_zero(value) * 1000).to_integral_value(rounding="ROUND_CEILING"))


def memory_bytes(value: object) -> int:
    return int(_quantity_or_zero(value).to_integral_value(rounding="ROUND_CEILING"))


def pod_requests(pod: Obj) -> tuple[int, int]:
    """(CPU millicores, memory bytes) a pod requests, as the scheduler counts it: the sum over
    its containers, at least the largest init container's, plus the pod overhead."""
    spec = pod.get("spec") or {}

    def requests(container: Obj) -> tuple[int, int]:
        wanted = (container.get("resources") or {}).get("requests") or {}
        return cpu_millicores(wanted.get("cpu", 0)), memory_bytes(wanted.get("memory", 0))

    main = [requests(c) for c in spec.get("containers") or []]
    init = [requests(c) for c in spec.get("initContainers") or []]
    cpu = max(sum(c for c, _ in main), max((c for c, _ in init), default=0))
    memory = max(sum(m for _, m in main), max((m for _, m in init), default=0))
    overhead = spec.get("overhead") or {}
    return (cpu + cpu_millicores(overhead.get("cpu", 0)),
            memory + memory_bytes(overhead.get("memory", 0)))


# -- pods and events -----------------------------------------------------------------------------


def _labels(obj: Obj) -> Mapping[str, str]:
    labels: Mapping[str, str] = (obj.get("metadata") or {}).get("labels") or {}
    return labels


def pod_view(pod: Obj) -> PodView:
    meta = pod.get("metadata") or {}
    status = pod.get("status") or {}
    containers = status.get("containerStatuses") or []
    waiting = next((c["state"]["waiting"].get("reason") for c in containers
                    if (c.get("state") or {}).get("waiting")), None)
    ready = next((c.get("status") == "True" for c in status.get("conditions") or []
                  if c.get("type") == "Ready"), False)
    labels = _labels(pod)
    return PodView(name=meta.get("name", ""), component=labels.get(names.LABEL_COMPONENT),
                   revision=labels.get(names.LABEL_REVISION),
                   node=(pod.get("spec") or {}).get("nodeName"),
                   phase=status.get("phase") or "Unknown", ready=ready,
                   restarts=sum(int(c.get("restartCount") or 0) for c in containers),
                   waiting_reason=waiting, started_at=status.get("startTime"))


def _event_time(event: Obj) -> str:
    series = event.get("series") or {}
    return str(event.get("lastTimestamp") or series.get("lastObservedTime")
               or event.get("eventTime") or event.get("firstTimestamp")
               or (event.get("metadata") or {}).get("creationTimestamp") or "")


def event_view(event: Obj) -> EventView:
    involved = event.get("involvedObject") or event.get("regarding") or {}
    return EventView(type=event.get("type") or "Normal", reason=event.get("reason") or "",
                     message=(event.get("message") or event.get("note") or "")[:1024],
                     object=f"{involved.get('kind', '')}/{involved.get('name', '')}",
                     namespace=(event.get("metadata") or {}).get("namespace") or "",
                     count=int(event.get("count") or (event.get("series") or {}).get("count")
                               or 1),
                     first_seen=event.get("firstTimestamp") or event.get("eventTime"),
                     last_seen=_event_time(event) or None)


def component_health(status: ComponentStatus, pods: Sequence[PodView], *,
                     rolling_out: bool) -> ComponentHealth:
    crashing = any(p.waiting_reason in ("CrashLoopBackOff", "Error", "ImagePullBackOff",
                                        "ErrImagePull", "CreateContainerConfigError")
                   for p in pods)
    state: ComponentHealthState
    if status.desired == 0:
        state = "stopped"
    elif status.available >= status.desired and not crashing:
        state = "healthy"
    elif rolling_out and not crashing:
        state = "progressing"
    elif status.available == 0:
        state = "down"
    else:
        state = "degraded"
    return ComponentHealth(name=status.name, health=state, desired=status.desired,
                           ready=status.ready, available=status.available,
                           restarts=status.restarts, pods=len(pods))


@dataclass(frozen=True)
class ExocorpRuntime:
    namespace: str
    pods: list[PodView]
    events: list[EventView]
    observed_at: str
    problems: list[str] = field(default_factory=list)


# -- nodes ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClusterSnapshot:
    nodes: list[Obj]
    pods: list[Obj]
    """Every pod not yet finished (Succeeded or Failed), cluster-wide."""
    observed_at: datetime
    problems: list[str] = field(default_factory=list)


def _node_health(node: Obj) -> tuple[bool, bool, NodeHealth, list[str]]:
    conditions = {c.get("type"): c.get("status")
                  for c in (node.get("status") or {}).get("conditions") or []}
    ready = conditions.get("Ready") == "True"
    schedulable = not (node.get("spec") or {}).get("unschedulable", False)
    problems = [kind for kind in _PRESSURE if conditions.get(kind) == "True"]
    if not ready:
        problems.insert(0, "NotReady")
    health: NodeHealth = ("not_ready" if not ready else "pressure" if problems
                          else "cordoned" if not schedulable else "healthy")
    return ready, schedulable, health, problems


def execution_state(snapshot: ClusterSnapshot, visible: Callable[[str], bool], *,
                    scope: str) -> ExecutionProviderState:
    """The capacity view; ``visible(exocorp)`` says which exocorps' placements to name."""
    per_node: dict[str, list[Obj]] = {}
    pending = 0
    placed: set[str] = set()
    for pod in snapshot.pods:
        node = (pod.get("spec") or {}).get("nodeName")
        exocorp = _labels(pod).get(names.LABEL_EXOCORP)
        if node:
            per_node.setdefault(node, []).append(pod)
            if exocorp and visible(exocorp):
                placed.add(exocorp)
        elif exocorp and visible(exocorp):
            pending += 1
    views: list[NodeView] = []
    for node in sorted(snapshot.nodes, key=lambda n: (n.get("metadata") or {}).get("name", "")):
        name = (node.get("metadata") or {}).get("name", "")
        allocatable = (node.get("status") or {}).get("allocatable") or {}
        pods = per_node.get(name, [])
        requested = [pod_requests(pod) for pod in pods]
        ready, schedulable, health, problems = _node_health(node)
        views.append(NodeView(
            name=name, ready=ready, schedulable=schedulable, health=health, problems=problems,
            capacity=Capacity(
                cpu_allocatable_millicores=cpu_millicores(allocatable.get("cpu", 0)),
                cpu_requested_millicores=sum(c for c, _ in requested),
                memory_allocatable_bytes=memory_bytes(allocatable.get("memory", 0)),
                memory_requested_bytes=sum(m for _, m in requested),
                pods_allocatable=int(_quantity_or_zero(allocatable.get("pods", 0))),
                pods=len(pods)),
            exocorps=sorted({e for e in (_labels(p).get(names.LABEL_EXOCORP) for p in pods)
                             if e and visible(e)})))
    ready_nodes = [v for v in views if v.ready]
    total = Capacity(
        cpu_allocatable_millicores=sum(v.capacity.cpu_allocatable_millicores
                                       for v in ready_nodes),
        cpu_requested_millicores=sum(v.capacity.cpu_requested_millicores for v in ready_nodes),
        memory_allocatable_bytes=sum(v.capacity.memory_allocatable_bytes for v in ready_nodes),
        memory_requested_bytes=sum(v.capacity.memory_requested_bytes for v in ready_nodes),
        pods_allocatable=sum(v.capacity.pods_allocatable for v in ready_nodes),
        pods=sum(v.capacity.pods for v in ready_nodes))
    overall = ("unavailable" if not ready_nodes else
               "healthy" if all(v.health == "healthy" for v in views) else "degraded")
    return ExecutionProviderState(
        scope="fleet" if scope == "fleet" else "own", health=overall, nodes_total=len(views),
        nodes_ready=len(ready_nodes), capacity=total, nodes=views, pending_pods=pending,
        exocorps_placed=len(placed), observed_at=format_timestamp(snapshot.observed_at),
        problems=snapshot.problems)


# -- reading -------------------------------------------------------------------------------------

T = TypeVar("T")


class _Shared(Generic[T]):
    """A value loaded at most once per ``ttl`` seconds; concurrent callers share one load."""

    def __init__(self, load: Callable[[], Awaitable[T]], ttl: float) -> None:
        self._load = load
        self.ttl = ttl
        self._lock = asyncio.Lock()
        self._value: tuple[float, T] | None = None

    async def get(self) -> T:
        async with self._lock:
            if self._value is not None and time.monotonic() - self._value[0] < self.ttl:
                return self._value[1]
            value = await self._load()
            self._value = (time.monotonic(), value)
            return value


def _describe(what: str, error: Exception) -> str:
    if isinstance(error, ApiError) and error.status in (401, 403):
        return f"{what}: the gateway is not allowed to read them (check its RBAC)"
    return f"{what}: the API server did not answer ({type(error).__name__})"


class ClusterReader:
    """Reads pods, events and nodes for the admin and runtime endpoints (see the module doc)."""

    def __init__(self, kube: Kube, *, ttl: float = 5.0,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.kube = kube
        self.clock = clock
        self._cluster = _Shared(self._load_cluster, ttl)

    @property
    def ttl(self) -> float:
        return self._cluster.ttl

    @ttl.setter
    def ttl(self, value: float) -> None:
        self._cluster.ttl = value

    async def _list_pages(self, resource: r.Resource, namespace: str | None = None, *,
                          label_selector: str | None = None, field_selector: str | None = None,
                          limit: int | None = None) -> list[Obj]:
        items: list[Obj] = []
        token: str | None = None
        while True:
            page = await self.kube.list(resource, namespace, label_selector=label_selector,
                                        field_selector=field_selector,
                                        limit=min(limit or _PAGE, _PAGE), continue_=token)
            items.extend(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue")
            if not token or (limit is not None and len(items) >= limit):
                return items[:limit] if limit is not None else items

    async def _load_cluster(self) -> ClusterSnapshot:
        problems: list[str] = []
        nodes: list[Obj] = []
        pods: list[Obj] = []
        try:
            nodes = await self._list_pages(r.NODES)
        except (ApiError, OSError, TimeoutError) as error:
            log.warning("could not list nodes: %s", error)
            problems.append(_describe("nodes", error))
        try:
            pods = await self._list_pages(r.PODS, field_selector=_TERMINAL)
        except (ApiError, OSError, TimeoutError) as error:
            log.warning("could not list pods: %s", error)
            problems.append(_describe("pods", error))
        return ClusterSnapshot(nodes=nodes, pods=pods, observed_at=self.clock(),
                               problems=problems)

    async def cluster(self) -> ClusterSnapshot:
        return await self._cluster.get()

    async def exocorp_runtime(self, exocorp: str) -> ExocorpRuntime:
        namespace = runtime_namespace(exocorp)
        problems: list[str] = []

        async def attempt(what: str, read: Awaitable[list[Obj]]) -> list[Obj]:
            try:
                return await read
            except (ApiError, OSError, TimeoutError) as error:
                log.warning("could not list %s of %s: %s", what, exocorp, error)
                problems.append(_describe(what, error))
                return []

        pods, own_events, object_events = await asyncio.gather(
            attempt("pods", self._list_pages(
                r.PODS, namespace, label_selector=f"{names.LABEL_EXOCORP}={exocorp}")),
            attempt("events", self._list_pages(r.EVENTS, namespace, limit=EVENT_LIMIT * 4)),
            attempt("events", self._list_pages(
                r.EVENTS, EVENT_NAMESPACE, limit=EVENT_LIMIT * 4,
                field_selector=f"involvedObject.kind={names.EXOCORP_KIND},"
                               f"involvedObject.name={exocorp}")))
        events = sorted(_dedupe([*own_events, *object_events]), key=_event_time, reverse=True)
        views = sorted((pod_view(p) for p in pods), key=lambda p: (p.component or "", p.name))
        return ExocorpRuntime(namespace=namespace, pods=views,
                              events=[event_view(e) for e in events[:EVENT_LIMIT]],
                              observed_at=format_timestamp(self.clock()),
                              problems=sorted(set(problems)))


def _dedupe(events: Iterable[Obj]) -> list[Obj]:
    seen: dict[Any, Obj] = {}
    for event in events:
        meta = event.get("metadata") or {}
        seen[(meta.get("namespace"), meta.get("name"))] = event
    return list(seen.values())


CLUSTER_READER: web.AppKey[ClusterReader] = web.AppKey("exocorp.admin.cluster_reader")
"""The app's cluster reader (``install_cluster_reader`` adds it)."""


def install_cluster_reader(app: web.Application) -> None:
    """Give the app its reader (idempotent: the admin and runtime route tables both ask)."""
    if CLUSTER_READER not in app:
        app[CLUSTER_READER] = ClusterReader(app[KUBE], clock=app[CLOCK])


def cluster_reader(app: web.Application) -> ClusterReader:
    """The app's reader (installed when the admin or runtime routes are registered)."""
    return app[CLUSTER_READER]
