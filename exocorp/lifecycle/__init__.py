"""The lifecycle API: the one place that turns an action (SPEC section 3) into a spec change.

The pure core (no I/O; it raises a :class:`LifecycleError`, which the gateway maps to HTTP):

- ``errors``: ``ErrorCode``, ``FieldError``, ``LifecycleError`` and its domain kinds
  (``InvalidRequestError``, ``ActionRefusedError``, ``ExocorpNotFoundError``; the gateway maps
  them to HTTP).
- ``context``: ``ActionContext`` (what the caller looked up), ``ActionPlan``, ``AuditSummary``,
  ``BillingStanding`` (the one shape of an owner's billing standing), ``Allowance``,
  ``ResourceCaps``.
- ``plan``: ``parse_action_request``, ``plan_action`` (the nine planners), ``rollback_target``,
  ``draft_and_release``, ``ALLOWED_PHASES``.
- ``bindings``: ``ProviderNeed``, ``resolve_bindings``.
- ``handshake``: ``evaluate_handshake`` (the update handshake, SPEC section 4).
- ``manifest``: ``preview_manifest`` (the owner's manifest preview: the operator's runtime
  objects rendered from the draft or the spec, credentials redacted), ``ManifestPreview``.
- ``allowance``: ``check_allowance`` (resource limits and the credit an action needs), with
  ``Allowance`` and ``ResourceCaps`` (in ``context``) describing what the owner may still take.

and its I/O half, ``perform`` (imported on its own: it talks to the API server): look up what
an action needs, plan it and write it, returning what it wrote.
"""

from exocorp.lifecycle.allowance import check_allowance, release_of
from exocorp.lifecycle.bindings import ProviderNeed, resolve_bindings
from exocorp.lifecycle.context import (
    NO_BILLING,
    ActionContext,
    ActionPlan,
    Allowance,
    AuditSummary,
    BillingStanding,
    ResourceCaps,
)
from exocorp.lifecycle.errors import (
    ActionRefusedError,
    ErrorCode,
    ExocorpNotFoundError,
    FieldError,
    InsufficientCreditError,
    InvalidRequestError,
    LifecycleError,
    LimitExceededError,
)
from exocorp.lifecycle.handshake import evaluate_handshake
from exocorp.lifecycle.manifest import ManifestPreview, preview_manifest
from exocorp.lifecycle.plan import (
    ALLOWED_PHASES,
    action_availability,
    draft_and_release,
    parse_action_request,
    plan_action,
    rollback_target,
)
from exocorp.model.phase import rollout_in_progress

__all__ = [
    "ALLOWED_PHASES",
    "NO_BILLING",
    "ActionContext",
    "ActionPlan",
    "ActionRefusedError",
    "Allowance",
    "AuditSummary",
    "BillingStanding",
    "ErrorCode",
    "ExocorpNotFoundError",
    "FieldError",
    "InsufficientCreditError",
    "InvalidRequestError",
    "LifecycleError",
    "LimitExceededError",
    "ManifestPreview",
    "ProviderNeed",
    "ResourceCaps",
    "action_availability",
    "check_allowance",
    "draft_and_release",
    "evaluate_handshake",
    "parse_action_request",
    "plan_action",
    "preview_manifest",
    "release_of",
    "resolve_bindings",
    "rollback_target",
    "rollout_in_progress",
]
