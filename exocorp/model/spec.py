"""The Exocorp spec: desired state only, written by the lifecycle API (or by hand with kubectl)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Self

from pydantic import ConfigDict, Field, model_validator

from exocorp.model.actions import Action
from exocorp.model.base import Rfc3339, ShortText, SpecModel
from exocorp.model.config import BINDINGS_FIELD, ConfigSnapshot, ProviderBinding
from exocorp.model.release import ReleaseRef

SLUG_MIN_LENGTH = 3
SLUG_MAX_LENGTH = 40
SLUG_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"

Slug = Annotated[
    str,
    Field(
        min_length=SLUG_MIN_LENGTH,
        max_length=SLUG_MAX_LENGTH,
        pattern=SLUG_PATTERN,
        json_schema_extra={
            "x-kubernetes-validations": [
                {"rule": "self == oldSelf", "message": "slug is immutable"}
            ]
        },
    ),
]
"""An exocorp's DNS label: names its domains, so it never changes."""


class RollbackPolicy(StrEnum):
    """What the operator does when a revision fails."""

    AUTOMATIC = "Automatic"
    """Return to the last successful revision by itself."""
    MANUAL = "Manual"
    """Stop and report Failed; a user decides."""


class LastAction(SpecModel):
    """The lifecycle action that produced the current spec; stamped on the revision it makes."""

    action: Action
    """Which action."""
    requested_by: Annotated[str, Field(min_length=1, max_length=253)]
    """Who asked: a user or account id, or a system actor such as system:exocorp-operator."""
    reason: ShortText | None = None
    """Why, as given by the requester."""
    at: Rfc3339
    """When the action was accepted."""
    target_revision: Annotated[str, Field(max_length=253)] | None = None
    """rollback: the revision whose content was copied."""


class ExocorpSpec(SpecModel):
    """Desired state of one exocorp. Imperative verbs are recorded here as flags and stamps."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!(has(self.provisioned) && self.provisioned)"
                    " || (has(self.release) && has(self.config))",
                    "message": "a provisioned exocorp needs release and config",
                },
                {
                    "rule": "!(has(self.paused) && self.paused)"
                    " || (has(self.pauseReason) && self.pauseReason != '')",
                    "message": "pauseReason is required while paused",
                },
            ]
        }
    )

    owner: Annotated[str, Field(min_length=1, max_length=128)]
    """Account id of the owner."""
    display_name: Annotated[str, Field(min_length=1, max_length=100)]
    """Human-readable company name."""
    slug: Slug
    """DNS label naming the exocorp's domains (3 to 40 characters, immutable)."""
    release: ReleaseRef | None = None
    """Release channel and version; absent while Draft."""
    config: ConfigSnapshot | None = None
    """Applied configuration snapshot; absent while Draft."""
    provider_bindings: Annotated[list[ProviderBinding], BINDINGS_FIELD] = []
    """Credential Secret per provider."""
    provisioned: Annotated[
        bool,
        Field(
            json_schema_extra={
                "x-kubernetes-validations": [
                    {"rule": "!oldSelf || self", "message": "an exocorp cannot return to Draft"}
                ]
            }
        ),
    ] = False
    """False while Draft: nothing runs until the first provision."""
    paused: bool = False
    """Agent workloads at zero, portal reachable, no new work admitted."""
    pause_reason: ShortText | None = None
    """Why the exocorp is paused; required while paused."""
    stopped: bool = False
    """Every workload at zero and routes detached; data kept."""
    restart_at: Rfc3339 | None = None
    """Changing it restarts every pod (stamped on the pod template)."""
    rebuild_nonce: Annotated[int, Field(ge=0)] = 0
    """Bumped by reprovision, so an identical configuration still makes a new revision."""
    rollback_policy: RollbackPolicy = RollbackPolicy.AUTOMATIC
    """What to do when a revision fails."""
    progress_deadline_seconds: Annotated[int, Field(ge=30, le=86400)] = 600
    """Seconds a component of a revision may go without progress (its Deployment's
    progressDeadlineSeconds, judged by Kubernetes) before the revision fails."""
    crash_loop_restart_threshold: Annotated[int, Field(ge=1, le=1000)] = 3
    """Container restarts during a rollout past which the revision fails."""
    revision_history_limit: Annotated[int, Field(ge=1, le=50)] = 10
    """Revisions kept (and summarised in status.history)."""
    last_action: LastAction | None = None
    """The action that last changed this spec."""

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.provisioned and (self.release is None or self.config is None):
            raise ValueError("a provisioned exocorp needs release and config")
        if self.paused and not (self.pause_reason or "").strip():
            raise ValueError("pauseReason is required while paused")
        providers = [binding.provider for binding in self.provider_bindings]
        if len(set(providers)) != len(providers):
            raise ValueError("at most one binding per provider")
        return self
