"""Reading and writing status conditions, and the reasons the platform uses."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Final

from exocorp.model.base import format_timestamp
from exocorp.model.status import Condition, ConditionStatus, ConditionType


class Reason:
    """Condition reasons (CamelCase, as Kubernetes wants them)."""

    # Progressing=True while a revision rolls out (these are the "rollout" reasons):
    NEW_REVISION: Final = "NewRevision"
    ROLLOUT_IN_PROGRESS: Final = "RolloutInProgress"
    ROLLING_BACK: Final = "RollingBack"
    # Progressing=False once it ends:
    ROLLOUT_COMPLETE: Final = "RolloutComplete"
    PROGRESS_DEADLINE_EXCEEDED: Final = "ProgressDeadlineExceeded"
    CRASH_LOOP: Final = "CrashLoop"
    ROLLOUT_CANCELLED: Final = "RolloutCancelled"
    # Shared:
    INITIALIZING: Final = "Initializing"
    DRAFT: Final = "Draft"
    STOPPED: Final = "Stopped"
    PAUSED: Final = "Paused"
    DESTROYING: Final = "Destroying"
    AVAILABLE: Final = "Available"
    COMPONENTS_NOT_READY: Final = "ComponentsNotReady"
    ROLLED_BACK: Final = "RolledBack"
    NO_SUCCESSFUL_REVISION: Final = "NoSuccessfulRevision"
    MANUAL_ROLLBACK_POLICY: Final = "ManualRollbackPolicy"
    BOUND: Final = "Bound"
    MISSING_CREDENTIALS: Final = "MissingCredentials"
    ATTACHED: Final = "Attached"
    DETACHED: Final = "Detached"
    ATTACHING: Final = "Attaching"


# Progressing=True with one of these reasons means a revision is rolling out right now. A bare
# Progressing=True is not enough: like Deployments, it may stay True after a rollout completes.
ROLLOUT_REASONS: Final = frozenset(
    {Reason.NEW_REVISION, Reason.ROLLOUT_IN_PROGRESS, Reason.ROLLING_BACK}
)


def get_condition(conditions: Sequence[Condition], type_: ConditionType) -> Condition | None:
    """The condition of this type, if present."""
    return next((condition for condition in conditions if condition.type == type_), None)


def condition_is(
    conditions: Sequence[Condition], type_: ConditionType, status: ConditionStatus
) -> bool:
    """True when the condition is present with this status."""
    condition = get_condition(conditions, type_)
    return condition is not None and condition.status == status


def set_condition(
    conditions: Sequence[Condition],
    type_: ConditionType,
    status: ConditionStatus,
    *,
    reason: str,
    message: str = "",
    now: datetime,
    observed_generation: int | None = None,
) -> list[Condition]:
    """A copy of `conditions` with this one set; order kept, new types appended.

    lastTransitionTime moves only when the status changes, so it tells how long the condition has
    held, whatever reason or message updates happen in between.
    """
    existing = get_condition(conditions, type_)
    transition = (
        existing.last_transition_time
        if existing is not None and existing.status == status
        else format_timestamp(now)
    )
    updated = Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=transition,
        observed_generation=observed_generation,
    )
    if existing is None:
        return [*conditions, updated]
    return [updated if condition.type == type_ else condition for condition in conditions]


def initial_conditions(now: datetime, observed_generation: int | None = None) -> list[Condition]:
    """Every condition type as Unknown: what the operator writes on first sight."""
    return [
        Condition(
            type=type_,
            status=ConditionStatus.UNKNOWN,
            reason=Reason.INITIALIZING,
            last_transition_time=format_timestamp(now),
            observed_generation=observed_generation,
        )
        for type_ in ConditionType
    ]
