"""The Exocorp status: observed state, written only by the operator."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field

from exocorp.model.actions import Action
from exocorp.model.base import DnsLabel, Rfc3339, ShortText, WireModel
from exocorp.model.release import Channel

MAX_HISTORY = 50
_Count = Annotated[int, Field(ge=0)]
_Name = Annotated[str, Field(min_length=1, max_length=253)]


class ConditionType(StrEnum):
    """The conditions an Exocorp reports. Ready summarises the others."""

    READY = "Ready"
    PROGRESSING = "Progressing"
    DEGRADED = "Degraded"
    PAUSED = "Paused"
    STALLED = "Stalled"
    CREDENTIALS_BOUND = "CredentialsBound"
    DOMAINS_ATTACHED = "DomainsAttached"


class ConditionStatus(StrEnum):
    """A condition's truth value, as in Kubernetes."""

    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Phase(StrEnum):
    """The display phase, derived from conditions and spec (see exocorp.model.phase)."""

    DRAFT = "Draft"
    PROVISIONING = "Provisioning"
    STARTING = "Starting"
    RUNNING = "Running"
    PAUSED = "Paused"
    STOPPED = "Stopped"
    FAILED = "Failed"
    DESTROYING = "Destroying"


class RevisionOutcome(StrEnum):
    """Where a revision's rollout ended (or stands)."""

    PENDING = "Pending"
    PROGRESSING = "Progressing"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    SUPERSEDED = "Superseded"
    CANCELLED = "Cancelled"


class DomainKind(StrEnum):
    """Which of the two canonical domains."""

    PORTAL = "portal"
    APP = "app"


class RoutingState(StrEnum):
    """Where a domain's route stands."""

    PENDING = "pending"
    RECONCILING = "reconciling"
    ATTACHED = "attached"
    DETACHED = "detached"


class TlsState(StrEnum):
    """Where a domain's certificate stands."""

    PENDING = "pending"
    ISSUED = "issued"
    FAILED = "failed"


class ReleaseState(StrEnum):
    """How the exocorp's release is doing."""

    INSTALLING = "Installing"
    INSTALLED = "Installed"
    FAILED = "Failed"
    WITHDRAWN = "Withdrawn"


class Condition(WireModel):
    """A Kubernetes-style condition (the metav1.Condition shape)."""

    type: ConditionType
    """Condition type."""
    status: ConditionStatus
    """True, False or Unknown."""
    reason: Annotated[
        str,
        Field(min_length=1, max_length=1024, pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"),
    ]
    """CamelCase machine-readable cause of the last transition."""
    message: Annotated[str, Field(max_length=32768)] = ""
    """Human-readable details."""
    last_transition_time: Rfc3339
    """When status last changed (not when the condition was last written)."""
    observed_generation: Annotated[int, Field(ge=0)] | None = None
    """metadata.generation the condition was computed from."""


class RevisionRef(WireModel):
    """Points at one revision object."""

    name: _Name
    """Revision object name, <exocorp>-<content hash>."""
    number: Annotated[int, Field(ge=1)]
    """Increasing revision number."""


class RevisionSummary(WireModel):
    """One entry of the revision history: the "jobs" users see."""

    name: _Name
    """Revision object name."""
    number: Annotated[int, Field(ge=1)]
    """Revision number."""
    version: Annotated[str, Field(max_length=128)]
    """Release version the revision runs."""
    action: Action | None = None
    """The action that made it (absent for a spec written by hand)."""
    requested_by: Annotated[str, Field(max_length=253)] | None = None
    """Who asked."""
    outcome: RevisionOutcome = RevisionOutcome.PENDING
    """Where its rollout ended."""
    created_at: Rfc3339
    """When the revision was created."""
    finished_at: Rfc3339 | None = None
    """When the rollout ended."""
    reason: ShortText | None = None
    """Why it ended so (e.g. the failure) or why it was made (e.g. automatic rollback)."""


class RolloutStatus(WireModel):
    """The rollout the operator is driving (or drove last): its record survives operator restarts,
    so a pass after a crash resumes the same rollout instead of starting a duplicate."""

    key: Annotated[str, Field(min_length=1, max_length=128)]
    """Identifies the rollout: a hash of the content, restart stamp and accepted action."""
    revision: _Name
    """Revision object being rolled out."""
    number: Annotated[int, Field(ge=1)]
    """Its revision number."""
    action: Action | None = None
    """The action that started it (absent for a spec written by hand)."""
    started_at: Rfc3339
    """When the rollout started; the progress deadline counts from here."""
    outcome: RevisionOutcome = RevisionOutcome.PROGRESSING
    """Where the rollout stands."""


class ComponentStatus(WireModel):
    """Observed state of one release component."""

    name: DnsLabel
    """Component name."""
    desired: _Count = 0
    """Replicas wanted now (zero when stopped, or an agent while paused)."""
    ready: _Count = 0
    """Replicas passing readiness."""
    available: _Count = 0
    """Replicas ready long enough to count as available."""
    restarts: _Count = 0
    """Container restarts summed over the component's pods."""


class DomainStatus(WireModel):
    """One canonical domain and its route."""

    host: Annotated[str, Field(min_length=1, max_length=253)]
    """Fully qualified host name."""
    kind: DomainKind
    """portal or app."""
    routing: RoutingState = RoutingState.PENDING
    """Route state."""
    tls: TlsState = TlsState.PENDING
    """Certificate state."""


class ReleaseStatus(WireModel):
    """The release actually rolled out."""

    version: Annotated[str, Field(max_length=128)]
    """Release version."""
    channel: Channel
    """Channel followed."""
    status: ReleaseState
    """How the release is doing."""


class ExocorpStatus(WireModel):
    """Observed state of one exocorp. Conditions are the truth; phase is for display."""

    observed_generation: Annotated[int, Field(ge=0)] | None = None
    """metadata.generation the operator last acted on."""
    conditions: Annotated[
        list[Condition],
        Field(
            max_length=16,
            json_schema_extra={
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["type"],
            },
        ),
    ] = []
    """Ready, Progressing, Degraded, Paused, Stalled, CredentialsBound, DomainsAttached."""
    phase: Phase | None = None
    """Display phase derived from conditions and spec."""
    current_revision: RevisionRef | None = None
    """The revision the exocorp is on or rolling out."""
    rollout: RolloutStatus | None = None
    """The operator's record of the current (or last) rollout."""
    last_successful_revision: RevisionRef | None = None
    """The newest revision whose rollout succeeded."""
    history: Annotated[list[RevisionSummary], Field(max_length=MAX_HISTORY)] = []
    """Newest first, bounded by spec.revisionHistoryLimit."""
    components: Annotated[list[ComponentStatus], Field(max_length=64)] = []
    """Per component readiness and restarts."""
    domains: Annotated[list[DomainStatus], Field(max_length=8)] = []
    """The canonical domains and their routes."""
    release: ReleaseStatus | None = None
    """The release rolled out."""
    failed_revisions_since_success: _Count = 0
    """Failed revisions since the last success (reset on success)."""
    rollbacks_since_success: _Count = 0
    """Automatic rollbacks since the last success (reset on success)."""
    running_seconds: dict[DnsLabel, Annotated[int, Field(ge=0)]] = {}
    """Seconds each component has run (monotonic, never reset; billing reads it)."""
    running_seconds_total: _Count = 0
    """Sum of runningSeconds (monotonic)."""
    running_seconds_accrued_at: Rfc3339 | None = None
    """The instant runningSeconds is accrued up to (whole seconds; the rest carries over)."""
    last_reconcile_seconds: Annotated[float, Field(ge=0)] | None = None
    """How long the last reconcile pass took."""
    last_reconcile_time: Rfc3339 | None = None
    """When the last reconcile pass finished."""

    def summary(self, name: str) -> RevisionSummary | None:
        """The history entry of the revision called `name`, if still kept."""
        return next((entry for entry in self.history if entry.name == name), None)
