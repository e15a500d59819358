"""Request and response bodies of the admin API group (the OpenAPI schemas are generated from
these). Requests are strict (unknown fields are a 400); responses are camelCase.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_CEILING
from typing import Annotated, Literal

from pydantic import Field, ValidationInfo, field_validator

from exocorp.api_gateway.audit.schemas import AuditEventView
from exocorp.api_gateway.runtime.schemas import ComponentHealth, EventView, PodView
from exocorp.api_gateway.schemas import CompanyActions, CompanyState, Reason
from exocorp.model import (
    Action,
    Channel,
    Condition,
    DomainStatus,
    LastAction,
    Phase,
    RevisionRef,
    RevisionSummary,
    SpecModel,
    WireModel,
)
from exocorp.model.base import SEMVER_PATTERN, Quantity
from exocorp.model.quantity import format_bytes, format_cpu, parse_quantity
from exocorp.store.limits import Limits

# -- admin: companies ----------------------------------------------------------------------------


class UserRef(WireModel):
    id: str
    email: str | None = None
    """Absent when the id names no user (an exocorp written by hand with kubectl)."""


class MemberView(WireModel):
    user_id: str
    email: str | None = None
    role: Literal["owner", "member", "viewer"]
    since: str | None = None


class AdminCompanySummary(WireModel):
    id: str
    """The exocorp's id (its slug and Kubernetes object name)."""
    slug: str
    display_name: str
    registered: bool
    """Has a platform record (False: the Exocorp was created with kubectl, not through the API)."""
    owner: UserRef
    members: list[MemberView] = []
    """Everyone with access, the owner first."""
    phase: Phase
    ready: bool
    rollout_in_progress: bool
    channel: Channel | None = None
    """Release channel followed (absent while Draft)."""
    version: str | None = None
    """Desired release version (absent while Draft)."""
    installed_version: str | None = None
    """The release version actually rolled out (status.release)."""
    latest_job: RevisionSummary | None = None
    """The newest revision (the "latest job"): number, version, action, requester, outcome."""
    last_update: str | None = None
    """The newest of: the last accepted action, the latest job's creation or end."""
    paused: bool = False
    pause_reason: str | None = None
    stopped: bool = False
    last_action: LastAction | None = None
    created_at: str | None = None


class AdminCompanyList(WireModel):
    companies: list[AdminCompanySummary]
    total: int
    by_phase: dict[str, int]
    """Counts of the listed exocorps by phase, every phase included."""


class AdminCompanyQuery(SpecModel):
    phase: Phase | None = None
    """Only exocorps in this phase."""
    owner: Annotated[str, Field(min_length=1, max_length=320)] | None = None
    """Only exocorps of this owner (user id or e-mail address)."""


class DraftInfo(WireModel):
    version: int
    updated_at: str | None = None


# Not a ``CompanyDetail``: the platform owner's summary differs from a member's (owner with
# e-mail, members, channel and version; no role). The state both detail views show is shared.
class AdminCompanyDetail(CompanyState, AdminCompanySummary):
    current_revision: RevisionRef | None = None
    domains: list[DomainStatus] = []
    last_reconcile_seconds: float | None = None
    last_reconcile_time: str | None = None
    runtime_namespace: str
    draft: DraftInfo | None = None
    """The saved draft's version (what provision and reprovision apply)."""
    recent_audit: list[AuditEventView] = []
    """The exocorp's latest audit events, newest first (see ``/api/admin/audit``)."""
    actions: CompanyActions | None = None
    """What a platform owner may do now: each action's availability, computed by the lifecycle
    planners (the rules ``POST .../actions`` applies)."""


class AdminActionRequest(SpecModel):
    """One lifecycle action on any exocorp, with the same rules as the owner's endpoints."""

    action: Action
    """provision, update, restart, stop, pause, resume, reprovision, rollback or destroy."""
    reason: Reason | None = None
    """Why; required for pause (400 ``reason_required``), kept in the audit trail."""
    confirm: Annotated[str, Field(max_length=64)] | None = None
    """destroy only: the exocorp's slug typed back (400 ``confirmation_mismatch`` otherwise)."""
    revision: Annotated[str, Field(min_length=1, max_length=253)] | Annotated[
        int, Field(ge=1)] | None = None
    """rollback only: revision name or number (default: the previous successful one)."""
    version: Annotated[str, Field(max_length=128, pattern=SEMVER_PATTERN)] | None = None
    """update only: release version to move to (default: the newest on the channel)."""
    channel: Channel | None = None
    """update only: switch to this channel."""


class AdminActionAccepted(WireModel):
    """The action became desired state; the operator now does the work (watch ``phase``)."""

    action: str
    exocorp_id: str
    phase: Phase
    """The phase right after the action was accepted."""
    details: dict[str, str] = {}
    """fromVersion, toVersion, targetRevision where they apply."""
    company: AdminCompanySummary

class AdminRuntime(WireModel):
    exocorp_id: str
    namespace: str
    """The exocorp's runtime namespace."""
    phase: Phase
    ready: bool
    conditions: list[Condition] = []
    components: list[ComponentHealth]
    pods: list[PodView]
    restarts: int
    """Container restarts over the pods listed."""
    events: list[EventView]
    """Recent events about the Exocorp and its namespace, newest first (at most 50)."""
    observed_at: str
    """When the pods and events were read from the API server."""
    problems: list[str] = []
    """What could not be read (e.g. the gateway lacks permission to read events)."""

# -- admin: fleet statistics ---------------------------------------------------------------------


class ReconcileLatency(WireModel):
    """The operator's last reconcile pass per exocorp (status.lastReconcileSeconds)."""

    samples: int
    """Exocorps that report one."""
    mean_seconds: float | None = None
    p50_seconds: float | None = None
    p95_seconds: float | None = None
    max_seconds: float | None = None
    slowest: str | None = None
    """The exocorp with the slowest last pass."""
    oldest_reconcile_age_seconds: float | None = None
    """Seconds since the least recently reconciled exocorp's last pass."""


class RuntimeStats(WireModel):
    total: int
    by_phase: dict[str, int]
    """Every phase, zeros included."""
    pods_ready: int
    """Ready replicas over every component of every exocorp."""
    pods_total: int
    """Desired replicas over every component of every exocorp."""
    pods_available: int
    restarts: int
    """Container restarts over every component (as the operator last counted)."""
    failed_revisions: int
    """Revisions with outcome Failed in the kept histories."""
    failing_exocorps: int
    """Exocorps with at least one failed revision since their last success."""
    rollouts_in_progress: int
    reconcile: ReconcileLatency
    observed_at: str


_MAX_CPU_MILLICORES = 10**12
_MAX_BYTES = 2**60  # 1 EiB


def _whole(value: str, scale: int, most: int, what: str) -> int:
    """A non-negative quantity in whole units of 1/``scale`` (rounded up), at most ``most``."""
    amount = parse_quantity(value) * scale
    if amount < 0:
        raise ValueError(f"{what} cannot be negative")
    if amount > most:
        raise ValueError(f"{what} is too large")
    return int(amount.to_integral_value(rounding=ROUND_CEILING))


class LimitSetting(SpecModel):
    """The limits of one scope (``PUT /api/admin/limits/{scope}``): every bound at once, an absent
    or null one unlimited. CPU, memory and storage bound what the runtimes of the scope's
    exocorps request, as Kubernetes quantities."""

    max_exocorps: Annotated[int, Field(ge=0, le=1_000_000)] | None = None
    """Exocorps allowed (not destroyed)."""
    max_cpu: Quantity | None = None
    """CPU the running exocorps may request, e.g. "16" or "2500m"."""
    max_memory: Quantity | None = None
    """Memory the running exocorps may request, e.g. "64Gi"."""
    max_storage: Quantity | None = None
    """Storage the exocorps' state volumes may claim (one each while provisioned), e.g.
    "100Gi"."""

    @field_validator("max_cpu")
    @classmethod
    def _cpu(cls, value: str | None) -> str | None:
        return None if value is None else format_cpu(
            _whole(value, 1000, _MAX_CPU_MILLICORES, "maxCpu"))

    @field_validator("max_memory", "max_storage")
    @classmethod
    def _bytes(cls, value: str | None, info: ValidationInfo) -> str | None:
        return None if value is None else format_bytes(
            _whole(value, 1, _MAX_BYTES, str(info.field_name)))

    def to_limits(self) -> Limits:
        def whole(value: str | None, scale: int) -> int | None:
            return None if value is None else _whole(value, scale, 2**63 - 1, "limit")

        return Limits(max_exocorps=self.max_exocorps,
                      max_cpu_millicores=whole(self.max_cpu, 1000),
                      max_memory_bytes=whole(self.max_memory, 1),
                      max_storage_bytes=whole(self.max_storage, 1))

    @classmethod
    def of(cls, limits: Limits) -> LimitSetting:
        def shown(value: int | None, formatted: Callable[[int], str]) -> str | None:
            return None if value is None else formatted(value)

        return cls(max_exocorps=limits.max_exocorps,
                   max_cpu=shown(limits.max_cpu_millicores, format_cpu),
                   max_memory=shown(limits.max_memory_bytes, format_bytes),
                   max_storage=shown(limits.max_storage_bytes, format_bytes))


class LimitsOverview(WireModel):
    default: LimitSetting
    """What every account without limits of its own may have."""
    platform: LimitSetting
    """What the whole platform may run."""
    exocorps: int
    """Exocorps existing now (not destroyed)."""
    cpu: str
    """CPU every running exocorp requests now, together."""
    memory: str
    """Memory every running exocorp requests now, together."""
    storage: str
    """Storage every provisioned exocorp's state volume claims now, together."""
