"""Derived views of an exocorp's state: its display phase and whether a rollout is under way.

Both are derived here and nowhere else, so the operator (which writes status.phase), the
gateway (which checks action preconditions) and the dashboards agree.
"""

from __future__ import annotations

from exocorp.model.actions import ROLLOUT_ACTIONS, Action
from exocorp.model.conditions import ROLLOUT_REASONS, get_condition
from exocorp.model.objects import Exocorp
from exocorp.model.spec import ExocorpSpec
from exocorp.model.status import ConditionStatus, ConditionType, ExocorpStatus, Phase


def derive_phase(
    spec: ExocorpSpec,
    status: ExocorpStatus,
    *,
    generation: int | None = None,
    deleting: bool = False,
) -> Phase:
    """The display phase. The first rule that matches wins:

    1. deletion requested, or a destroy accepted (its spec write comes just before the delete,
       and bumps the generation: without this it would read as Starting for a moment) -> Destroying
    2. spec.provisioned is false                            -> Draft
    3. spec.stopped                                         -> Stopped
    4. Stalled=True (a revision failed, nothing to go back to or a Manual policy) -> Failed
    5. spec.paused                                          -> Paused
    6. Ready=True, observed for the current generation      -> Running
    7. no revision has ever succeeded                       -> Provisioning
    8. otherwise (coming up again after start, restart, update, rollback) -> Starting

    Stop and pause come from the spec, not from observation, so that the phase (and with it every
    action precondition) reflects a user's decision the moment it is accepted. Running needs a
    Ready condition computed for the current generation, so a stale Ready never hides a change
    the operator has not seen yet.
    """
    if deleting or (spec.last_action is not None and spec.last_action.action is Action.DESTROY):
        return Phase.DESTROYING
    if not spec.provisioned:
        return Phase.DRAFT
    if spec.stopped:
        return Phase.STOPPED
    stalled = get_condition(status.conditions, ConditionType.STALLED)
    if stalled is not None and stalled.status == ConditionStatus.TRUE:
        return Phase.FAILED
    if spec.paused:
        return Phase.PAUSED
    ready = get_condition(status.conditions, ConditionType.READY)
    if ready is not None and ready.status == ConditionStatus.TRUE:
        observed = (
            ready.observed_generation
            if ready.observed_generation is not None
            else status.observed_generation
        )
        if generation is None or (observed is not None and observed >= generation):
            return Phase.RUNNING
    if status.last_successful_revision is None:
        return Phase.PROVISIONING
    return Phase.STARTING


def phase_of(exocorp: Exocorp) -> Phase:
    """derive_phase for a whole object."""
    return derive_phase(
        exocorp.spec,
        exocorp.status,
        generation=exocorp.metadata.generation,
        deleting=exocorp.deleting,
    )


def rollout_in_progress(exocorp: Exocorp) -> bool:
    """True while a revision is "in progress" (SPEC section 3): rolling out, or about to.

    Rolling out: Progressing=True with a rollout reason (NewRevision, RolloutInProgress,
    RollingBack). About to: the spec's last action starts a rollout and the operator has not
    observed that generation yet; without this, two quick clicks would both be accepted.
    """
    progressing = get_condition(exocorp.status.conditions, ConditionType.PROGRESSING)
    if (
        progressing is not None
        and progressing.status == ConditionStatus.TRUE
        and progressing.reason in ROLLOUT_REASONS
    ):
        return True
    last_action = exocorp.spec.last_action
    generation = exocorp.metadata.generation
    observed = exocorp.status.observed_generation
    return (
        last_action is not None
        and last_action.action in ROLLOUT_ACTIONS
        and generation is not None
        and (observed is None or observed < generation)
    )
