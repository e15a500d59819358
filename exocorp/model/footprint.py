"""What an exocorp asks of the platform while it is in a given state: the CPU and memory its
running replicas request, the storage its state volume claims, and what its running replicas
cost per hour under a price book. Per-account limits and the credit check of an action
(``exocorp.lifecycle.allowance``) compare these figures; the admin views show them.

The sizes, the state volume and the rule for what a container ends up with are defined here
and the operator (``exocorp.runtime.builders``) builds its containers, quota and LimitRange from
them, so what is counted is what runs: a size named in the exocorp's config wins, else the
release's resources, each missing value defaulted as Kubernetes does (a missing request to the
limit, else to the namespace's LimitRange default request; a missing limit to its default limit:
both the small size); a stopped exocorp runs nothing, a paused one only its components that are
not agents; a provisioned exocorp keeps one state volume until it is destroyed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from types import MappingProxyType

from exocorp.model.config import ComponentSize
from exocorp.model.quantity import parse_quantity
from exocorp.model.release import Component, ExocorpReleaseSpec
from exocorp.model.spec import ExocorpSpec

__all__ = [
    "FALLBACK_RATE_KEY",
    "SIZES",
    "STATE_VOLUME_SIZE",
    "ZERO",
    "Footprint",
    "SizeResources",
    "admitted_resources",
    "footprint",
    "hourly_cost",
    "rate_of",
    "running_components",
    "total",
]


@dataclass(frozen=True)
class SizeResources:
    """Requests and limits of one container (quantity strings)."""

    cpu_request: str
    memory_request: str
    cpu_limit: str
    memory_limit: str


SIZES: Mapping[ComponentSize, SizeResources] = MappingProxyType({
    ComponentSize.SMALL: SizeResources("100m", "256Mi", "500m", "512Mi"),
    ComponentSize.MEDIUM: SizeResources("500m", "1Gi", "1", "2Gi"),
    ComponentSize.LARGE: SizeResources("2", "4Gi", "4", "8Gi"),
})
"""Requests and limits per replica of a component of each size. The small size is also the
runtime namespace's LimitRange default, which fills in what a release leaves out."""

STATE_VOLUME_SIZE = "1Gi"
"""The state volume every provisioned exocorp claims."""

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


def admitted_resources(component: Component, size: ComponentSize | None) -> SizeResources:
    """What one container of ``component`` runs with once admitted: the named size's, else the
    release's values with each missing one filled in as the API server does (a missing
    request takes the limit, else the LimitRange's default request; a missing limit takes
    the LimitRange's default limit)."""
    if size is not None:
        return SIZES[size]
    small = SIZES[ComponentSize.SMALL]
    resources = component.resources
    requests = resources.requests if resources is not None else None
    limits = resources.limits if resources is not None else None
    cpu_limit = limits.cpu if limits else None
    memory_limit = limits.memory if limits else None
    return SizeResources(
        cpu_request=(requests.cpu if requests else None) or cpu_limit or small.cpu_request,
        memory_request=(requests.memory if requests else None) or memory_limit
        or small.memory_request,
        cpu_limit=cpu_limit or small.cpu_limit,
        memory_limit=memory_limit or small.memory_limit)


def _replica_requests(component: Component, size: ComponentSize | None) -> tuple[int, int]:
    """(millicores, bytes) one replica of ``component`` requests."""
    admitted = admitted_resources(component, size)
    return (_whole(parse_quantity(admitted.cpu_request) * 1000),
            _whole(parse_quantity(admitted.memory_request)))


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
    cpu = memory = storage = 0  # no Footprint per step: an action sums a whole account's
    for each in footprints:
        cpu += each.cpu_millicores
        memory += each.memory_bytes
        storage += each.storage_bytes
    return Footprint(cpu, memory, storage)
