"""Whole Kubernetes objects (metadata + spec + status) as the API server returns them."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from exocorp.model.base import WireModel
from exocorp.model.release import ExocorpReleaseSpec
from exocorp.model.spec import ExocorpSpec
from exocorp.model.status import ExocorpStatus
from exocorp.names import API_VERSION, EXOCORP_KIND, RELEASE_KIND


class ObjectMeta(WireModel):
    """The parts of metadata the platform reads; everything else is ignored."""

    name: str
    """Object name."""
    uid: str | None = None
    """Unique id assigned by the API server."""
    generation: int | None = None
    """Bumped by the API server on every spec change."""
    resource_version: str | None = None
    """Optimistic-concurrency token."""
    creation_timestamp: str | None = None
    """When the object was created."""
    deletion_timestamp: str | None = None
    """Set once deletion was requested (the object then waits on finalizers)."""
    labels: dict[str, str] = {}
    """Labels."""
    annotations: dict[str, str] = {}
    """Annotations."""


def _none_as_empty(value: Any) -> Any:
    return {} if value is None else value


class Exocorp(WireModel):
    """One Exocorp object."""

    api_version: str = API_VERSION
    """exocorp.io/v1alpha1."""
    kind: str = EXOCORP_KIND
    """Exocorp."""
    metadata: ObjectMeta
    """Object metadata."""
    spec: ExocorpSpec
    """Desired state."""
    status: Annotated[ExocorpStatus, BeforeValidator(_none_as_empty)] = Field(
        default_factory=ExocorpStatus
    )
    """Observed state (empty until the operator first reports)."""

    @property
    def deleting(self) -> bool:
        """Deletion was requested."""
        return self.metadata.deletion_timestamp is not None


class ExocorpRelease(WireModel):
    """One ExocorpRelease object."""

    api_version: str = API_VERSION
    """exocorp.io/v1alpha1."""
    kind: str = RELEASE_KIND
    """ExocorpRelease."""
    metadata: ObjectMeta
    """Object metadata."""
    spec: ExocorpReleaseSpec
    """The release."""
