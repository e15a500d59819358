"""The lifecycle API: the one place that turns an action (SPEC section 3) into a spec change.

The pure core (no I/O; it raises a :class:`LifecycleError`, which the gateway maps to HTTP):

- ``errors``: ``ErrorCode``, ``FieldError``, ``LifecycleError`` and its domain kinds
  (``InvalidRequestError``, ``ActionRefusedError``, ``ExocorpNotFoundError``; the gateway maps
  them to HTTP).
- ``context``: ``ActionContext`` (what the caller looked up), ``ActionPlan``, ``AuditSummary``,
  ``BillingStanding`` (the one shape of an owner's billing standing).
- ``plan``: ``parse_action_request``, ``plan_action`` (the nine planners), ``rollback_target``,
  ``ALLOWED_PHASES``.
- ``bindings``: ``ProviderNeed``, ``resolve_bindings``.
- ``handshake``: ``evaluate_handshake`` (the update handshake, SPEC section 4).

and its I/O half, ``perform`` (imported on its own: it talks to the API server): look up what
an action needs, plan it and write it, returning what it wrote.
"""

from exocorp.lifecycle.bindings import ProviderNeed, resolve_bindings
from exocorp.lifecycle.context import (
    NO_BILLING,
    ActionContext,
    ActionPlan,
    AuditSummary,
    BillingStanding,
)
from exocorp.lifecycle.errors import (
    ActionRefusedError,
    ErrorCode,
    ExocorpNotFoundError,
    FieldError,
    InvalidRequestError,
    LifecycleError,
)
from exocorp.lifecycle.handshake import evaluate_handshake
from exocorp.lifecycle.plan import (
    ALLOWED_PHASES,
    action_availability,
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
    "AuditSummary",
    "BillingStanding",
    "ErrorCode",
    "ExocorpNotFoundError",
    "FieldError",
    "InvalidRequestError",
    "LifecycleError",
    "ProviderNeed",
    "action_availability",
    "evaluate_handshake",
    "parse_action_request",
    "plan_action",
    "resolve_bindings",
    "rollback_target",
    "rollout_in_progress",
]
