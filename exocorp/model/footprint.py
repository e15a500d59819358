"""What an exocorp asks of the platform while it is in a given state: the CPU and memory its
running replicas request, the storage its state volume claims, and what its running replicas
cost per hour under a price book. Per-account limits and the credit check of an action
(``exocorp.lifecycle.allowance``) compare these figures; the admin views show them.

The figures follow the operator's rules (``exocorp.operator.builders``): a size named in the
exocorp's config wins, else the release's requests (a missing request defaults to the limit, as
Kubernetes does, else to the namespace's LimitRange default, the small size); a stopped exocorp
runs nothing, a paused one only its components that are not agents; a provisioned exocorp keeps
one state volume until it is destroyed. tests/unit/test_model_footprint.py holds the operator's
tables and these side by side.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal

from exocorp.model.config import ComponentSize
from exocorp.model.quantity import parse_quantity
from exocorp.model.release import Component, ExocorpReleaseSpec
from exocorp.model.spec import ExocorpSpec

__all__ = [
    "FALLBACK_RATE_KEY",
    "SIZE_REQUESTS",
    "STATE_VOLUME_SIZE",
    "ZERO",
    "Footprint",
    "footprint",
    "hourly_cost",
    "rate_of",
    "running_components",
    "total",
]

SIZE_REQUESTS: Mapping[ComponentSize, tuple[str, str]] = {
    ComponentSize.SMALL: ("100m", "256Mi"),
    ComponentSize.MEDIUM: ("500m", "1Gi"),
    ComponentSize.LARGE: ("2", "4Gi"),
}
"""(cpu, memory) requested per replica of a component of each size (the operator's sizes)."""

STATE_VOLUME_SIZE = "1Gi"
"""The state volume every provisioned exocorp claims (the operator's ``state_volume_size``)."""

FALLBACK_RATE_KEY = "*"
"""A price book's rate for components it does not name (absent: such components are free)."""


@dataclass(frozen=True)
class Footprint:
    """Resources requested, in whole units: millicores of CPU, bytes of memory and storage."""

    cpu_millicores: int = 0
    memory_bytes: int = 0
    storage_bytes: int = 0

    def __add__(self, other: Footprint) -> Footprint:
        return Footprint(self.cpu_millicores + other.cpu_millicores,
                         self.memory_bytes + other.memory_bytes,
                         self.storage_bytes + other.storage_bytes)

    def __sub__(self, other: Footprint) -> Footprint:
        return Footprint(self.cpu_millicores - other.cpu_millicores,
                         self.memory_bytes - other.memory_bytes,
                         self.storage_bytes - other.storage_bytes)


ZERO = Footprint()


def _whole(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_CEILING))


def _replica_requests(component: Component, size: ComponentSize | None) -> tuple[int, int]:
    """(millicores, bytes) one replica of ``component`` requests."""
    small_cpu, small_memory = SIZE_REQUESTS[ComponentSize.SMALL]
    if size is not None:
        cpu, memory = SIZE_REQUESTS[size]
    else:
        resources = component.resources
        requests = resources.requests if resources is not None else None
        limits = resources.limits if resources is not None else None
        cpu = (requests.cpu if requests else None) or (limits.cpu if limits else None) \
            or small_cpu
        memory = (requests.memory if requests else None) \
            or (limits.memory if limits else None) or small_memory
    return _whole(parse_quantity(cpu) * 1000), _whole(parse_quantity(memory))


def running_components(spec: ExocorpSpec, release: ExocorpReleaseSpec) -> list[Component]:
    """The components whose replicas run in ``spec``'s state."""
    if not spec.provisioned or spec.stopped:
        return []
    return [c for c in release.components if not (spec.paused and c.agent)]


def footprint(spec: ExocorpSpec, release: ExocorpReleaseSpec | None) -> Footprint:
    """What an exocorp in ``spec``'s state requests, on ``release`` (None: the release is not
    known; its replicas count as nothing, its volume still counts)."""
    if not spec.provisioned:
        return ZERO
    storage = _whole(parse_quantity(STATE_VOLUME_SIZE))
    if release is None:
        return Footprint(storage_bytes=storage)
    sizes = spec.config.component_sizes if spec.config is not None else {}
    cpu = memory = 0
    for component in running_components(spec, release):
        each_cpu, each_memory = _replica_requests(component, sizes.get(component.name))
        cpu += each_cpu * component.replicas
        memory += each_memory * component.replicas
    return Footprint(cpu, memory, storage)


def rate_of(rates: Mapping[str, int], component: str) -> int:
    """Minor units per replica-second for ``component`` under a price book's rates."""
    return rates.get(component, rates.get(FALLBACK_RATE_KEY, 0))


def hourly_cost(spec: ExocorpSpec, release: ExocorpReleaseSpec | None,
                rates: Mapping[str, int]) -> int:
    """Minor units an hour of ``spec``'s running replicas costs (metering bills ready replicas
    x seconds x the component's rate)."""
    if release is None:
        return 0
    return sum(rate_of(rates, c.name) * c.replicas * 3600
               for c in running_components(spec, release))


def total(footprints: Iterable[Footprint]) -> Footprint:
    out = ZERO
    for each in footprints:
        out += each
    return out
