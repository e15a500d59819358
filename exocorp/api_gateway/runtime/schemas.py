"""Response bodies of the runtime API group and of the runtime parts of the admin API: component
health, pods, events, nodes and capacity (camelCase; the OpenAPI schemas are generated from these).
"""

from __future__ import annotations

from typing import Literal

from exocorp.model import (
    WireModel,
)

# -- admin: runtime of one exocorp ---------------------------------------------------------------

ComponentHealthState = Literal["healthy", "progressing", "degraded", "down", "stopped"]


class ComponentHealth(WireModel):
    name: str
    health: ComponentHealthState
    """``healthy`` (every desired replica available), ``progressing`` (coming up, no crash),
    ``degraded`` (some available, or restarting), ``down`` (none available although wanted),
    ``stopped`` (none wanted: stopped, or an agent while paused)."""
    desired: int = 0
    ready: int = 0
    available: int = 0
    restarts: int = 0
    """Container restarts over the component's pods (as the operator last counted)."""
    pods: int = 0
    """Pods of the component found in the runtime namespace now."""


class PodView(WireModel):
    name: str
    component: str | None = None
    revision: str | None = None
    node: str | None = None
    phase: str
    """Pending, Running, Succeeded, Failed or Unknown."""
    ready: bool
    restarts: int
    waiting_reason: str | None = None
    """Why a container is not running, e.g. CrashLoopBackOff, ImagePullBackOff."""
    started_at: str | None = None


class EventView(WireModel):
    type: str
    """Normal or Warning."""
    reason: str
    message: str = ""
    object: str
    """``Kind/name`` of the object the event is about."""
    namespace: str
    count: int = 1
    first_seen: str | None = None
    last_seen: str | None = None

# -- runtime: execution providers ----------------------------------------------------------------


class Capacity(WireModel):
    cpu_allocatable_millicores: int
    cpu_requested_millicores: int
    memory_allocatable_bytes: int
    memory_requested_bytes: int
    pods_allocatable: int
    pods: int
    """Pods placed (not finished)."""


NodeHealth = Literal["healthy", "pressure", "cordoned", "not_ready"]


class NodeView(WireModel):
    name: str
    ready: bool
    schedulable: bool
    health: NodeHealth
    """``healthy``; ``pressure`` (memory, disk or PID pressure); ``cordoned`` (unschedulable);
    ``not_ready``."""
    problems: list[str] = []
    """Conditions that are not as they should be, e.g. ``MemoryPressure``."""
    capacity: Capacity
    exocorps: list[str] = []
    """Exocorps with pods on this node (for users: only their own)."""


class ExecutionProviderState(WireModel):
    provider: Literal["kubernetes"] = "kubernetes"
    scope: Literal["fleet", "own"]
    """``fleet``: a platform owner's view (every exocorp); ``own``: a user's view (placements
    of their own exocorps only)."""
    health: Literal["healthy", "degraded", "unavailable"]
    """``healthy``: every node ready without pressure; ``degraded``: some node is not;
    ``unavailable``: no node is ready."""
    nodes_total: int
    nodes_ready: int
    capacity: Capacity
    """Sums over the ready nodes."""
    nodes: list[NodeView]
    pending_pods: int
    """Exocorp pods (in scope) waiting for a node."""
    exocorps_placed: int
    """Exocorps (in scope) with at least one pod on a node."""
    observed_at: str
    """When nodes and pods were read from the API server."""
    problems: list[str] = []
    """What could not be read (e.g. the gateway lacks permission to list nodes)."""
