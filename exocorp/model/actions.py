"""The lifecycle actions of SPEC section 3 and the body that asks for one."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field

from exocorp.model.base import ReasonText, SemVer, SpecModel
from exocorp.model.release import Channel


class Action(StrEnum):
    """A lifecycle action a user (or the platform itself) can ask for."""

    PROVISION = "provision"
    UPDATE = "update"
    RESTART = "restart"
    STOP = "stop"
    PAUSE = "pause"
    RESUME = "resume"
    REPROVISION = "reprovision"
    ROLLBACK = "rollback"
    DESTROY = "destroy"


# Actions whose spec change makes the operator roll out a revision (new content or new pods).
ROLLOUT_ACTIONS = frozenset(
    {Action.PROVISION, Action.UPDATE, Action.RESTART, Action.REPROVISION, Action.ROLLBACK}
)

# Who asked, when the platform asked by itself (automatic rollback, billing pause).
OPERATOR_ACTOR = "system:exocorp-operator"
BILLING_ACTOR = "system:billing"

RevisionSelector = Annotated[str, Field(min_length=1, max_length=253)] | Annotated[int, Field(ge=1)]


class ActionRequest(SpecModel):
    """The body of an action request; which fields matter depends on the action."""

    action: Action
    """The action to perform."""
    reason: ReasonText | None = None
    """Why; required for pause, recorded in the audit trail for every action."""
    confirm: Annotated[str, Field(max_length=64)] | None = None
    """destroy only: the exocorp's slug typed back, to confirm an irreversible delete."""
    version: SemVer | None = None
    """update only: the release version to move to (default: the newest one offered)."""
    channel: Channel | None = None
    """update only: switch to this channel (default: the exocorp's current channel)."""
    revision: RevisionSelector | None = None
    """rollback only: revision name or number (default: the previous successful revision)."""
