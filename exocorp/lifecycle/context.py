"""What an action is planned from (`ActionContext`: what the caller looked up) and what planning
gives back (`ActionPlan`: the spec change, with its `AuditSummary`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from exocorp.model.actions import Action
from exocorp.model.config import Draft
from exocorp.model.footprint import ZERO, Footprint
from exocorp.model.release import (
    ExocorpReleaseSpec,
)
from exocorp.model.revision import RevisionContent
from exocorp.model.spec import ExocorpSpec
from exocorp.model.status import Phase


@dataclass(frozen=True)
class BillingStanding:
    """The owner's billing standing (SPEC section 6), as the billing package judges it
    (``exocorp.billing.billing_state``) and every action and handshake consumes it."""

    active: bool
    """The account is active and has credit left."""
    has_price_book: bool
    """A price book (the account's own, or the default) prices its runtime."""
    balance: int = 0
    """Credit left, in minor units of ``currency`` (negative when running time outran it)."""
    currency: str = ""
    rates: Mapping[str, int] = field(default_factory=dict)
    """The effective price book's rates (component -> minor units per replica-second)."""


NO_BILLING = BillingStanding(active=False, has_price_book=False)
"""A user without a billing account."""


@dataclass(frozen=True)
class ResourceCaps:
    """Upper bounds on requested resources; None: unlimited."""

    cpu_millicores: int | None = None
    memory_bytes: int | None = None
    storage_bytes: int | None = None


@dataclass(frozen=True, kw_only=True)
class Allowance:
    """What the owner's account (and the platform) may still take: the limits, what the other
    exocorps request and cost already, and how long the credit must last. Checked against every
    action that makes an exocorp ask for more (``exocorp.lifecycle.allowance``)."""

    account_caps: ResourceCaps = ResourceCaps()
    """The owner's limits (its own, else the default)."""
    platform_caps: ResourceCaps = ResourceCaps()
    """The platform-wide caps."""
    account_others: Footprint = ZERO
    """What the owner's other exocorps request now."""
    platform_others: Footprint | None = None
    """What every other exocorp of the platform requests now (None: not counted, which is
    only right when ``platform_caps`` bound nothing)."""
    account_others_hourly: int = 0
    """What the owner's other exocorps cost an hour under the owner's price book."""
    min_credit_hours: float = 0.0
    """The credit must cover this many hours of everything the owner would run."""


@dataclass(frozen=True, kw_only=True)
class ActionContext:
    """What the caller looked up for the action. Fields an action does not need may stay empty."""

    actor: str
    """Who asks: a user or account id, or a system actor (see exocorp.model.actions)."""
    now: datetime
    """The time the action is accepted (timezone-aware)."""
    releases: Sequence[ExocorpReleaseSpec] = ()
    """The release catalog (every published ExocorpRelease, withdrawn ones included)."""
    draft: Draft | Mapping[str, Any] | None = None
    """The exocorp's saved draft, as stored (validated here); provision and reprovision."""
    revisions: Mapping[str, RevisionContent] = field(default_factory=dict)
    """Revision name -> content; must hold the last successful revision (update, restart) and
    the rollback target (see `rollback_target`)."""
    billing: BillingStanding = NO_BILLING
    """The owner's billing standing."""
    provider_secrets: Mapping[str, Sequence[str]] = field(default_factory=dict)
    """Provider -> names of the owner's credential Secrets for it."""
    allowance: Allowance | None = None
    """The owner's resource limits and credit requirement; None: not checked (system actors
    that only ever take resources away, tests)."""


@dataclass(frozen=True)
class AuditSummary:
    """What the audit trail records for an accepted action (the caller adds the outcome)."""

    action: Action
    actor: str
    exocorp: str
    reason: str | None
    phase: Phase
    """The phase the action was accepted in."""
    details: Mapping[str, str] = field(default_factory=dict)
    """fromVersion / toVersion / targetRevision, where they apply."""


@dataclass(frozen=True)
class ActionPlan:
    """The accepted action as a change of desired state."""

    action: Action
    spec_patch: dict[str, Any]
    """JSON merge patch (RFC 7386) of the spec, in wire names."""
    new_spec: ExocorpSpec
    """The spec after the patch (what the watch cache will show)."""
    delete: bool
    """destroy: delete the Exocorp (after applying the patch, which names the requester)."""
    resource_version: str | None
    """The resourceVersion the plan was made from."""
    audit: AuditSummary

    @property
    def patch(self) -> dict[str, Any]:
        """The merge patch of the whole object; with resourceVersion, a concurrent change makes
        the API server answer 409, so of two conflicting actions exactly one wins."""
        patch: dict[str, Any] = {"spec": self.spec_patch}
        if self.resource_version is not None:
            patch["metadata"] = {"resourceVersion": self.resource_version}
        return patch
