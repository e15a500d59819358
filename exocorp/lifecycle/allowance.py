"""Whether an action may make an exocorp ask for more: per-account and platform-wide limits on
requested CPU, memory and storage, and enough credit to run everything the owner would run for
the configured number of hours.

Only growth is checked: an action whose exocorp requests (or costs) no more afterwards than
before is never refused here, so stop, pause and destroy always pass, and lowering a limit below
what already runs never blocks an action that keeps or shrinks an exocorp.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from exocorp.lifecycle.context import ActionContext, Allowance, ResourceCaps
from exocorp.lifecycle.errors import ErrorCode, InsufficientCreditError, LimitExceededError
from exocorp.model.footprint import Footprint, footprint, hourly_cost
from exocorp.model.objects import Exocorp
from exocorp.model.quantity import format_bytes, format_cpu
from exocorp.model.release import ExocorpReleaseSpec, find_release
from exocorp.model.spec import ExocorpSpec

__all__ = ["check_allowance", "release_of"]

# (wire name, what it is called in a sentence, the footprint's figure, the cap, its format)
_Dimension = tuple[str, str, Callable[[Footprint], int], Callable[[ResourceCaps], int | None],
                   Callable[[int], str]]
_DIMENSIONS: Sequence[_Dimension] = (
    ("cpu", "requested CPU", lambda f: f.cpu_millicores, lambda c: c.cpu_millicores,
     format_cpu),
    ("memory", "requested memory", lambda f: f.memory_bytes, lambda c: c.memory_bytes,
     format_bytes),
    ("storage", "requested storage", lambda f: f.storage_bytes, lambda c: c.storage_bytes,
     format_bytes),
)


def release_of(spec: ExocorpSpec, releases: Sequence[ExocorpReleaseSpec],
               ) -> ExocorpReleaseSpec | None:
    """The release ``spec`` runs (None before provisioning, or when it is no longer
    published)."""
    return find_release(releases, spec.release.version) if spec.release is not None else None


def check_allowance(exocorp: Exocorp, new_spec: ExocorpSpec, context: ActionContext) -> None:
    """Raise ``LimitExceededError`` (409) or ``InsufficientCreditError`` (402) when going from
    ``exocorp.spec`` to ``new_spec`` asks for more than the owner's allowance leaves."""
    allowance = context.allowance
    if allowance is None:
        return
    old_release = release_of(exocorp.spec, context.releases)
    new_release = release_of(new_spec, context.releases)
    before = footprint(exocorp.spec, old_release)
    after = footprint(new_spec, new_release)
    _check_caps(before, after, allowance.account_others, allowance.account_caps, "account")
    if allowance.platform_others is not None:
        _check_caps(before, after, allowance.platform_others, allowance.platform_caps,
                    "platform")
    billing = context.billing
    if allowance.min_credit_hours <= 0 or not billing.has_price_book:
        return
    cost_before = hourly_cost(exocorp.spec, old_release, billing.rates)
    cost_after = hourly_cost(new_spec, new_release, billing.rates)
    if cost_after > cost_before:
        _check_credit(allowance, cost_after, context)


def _check_caps(before: Footprint, after: Footprint, others: Footprint, caps: ResourceCaps,
                scope: str) -> None:
    for name, label, figure, cap_of, formatted in _DIMENSIONS:
        cap = cap_of(caps)
        requested = figure(others) + figure(after)
        if cap is None or figure(after) <= figure(before) or requested <= cap:
            continue
        whose = "this account's" if scope == "account" else "the platform's"
        advice = ("stop, shrink or destroy another of its exocorps, or ask a platform owner to "
                  "raise the limit" if scope == "account" else "ask a platform owner")
        raise LimitExceededError(
            ErrorCode.LIMIT_EXCEEDED,
            f"this would bring {whose} {label} to {formatted(requested)}, over its limit of "
            f"{formatted(cap)}; {advice}",
            extra={"limit": name, "scope": scope, "max": formatted(cap),
                   "requested": formatted(requested)})


def _check_credit(allowance: Allowance, cost_after: int, context: ActionContext) -> None:
    billing = context.billing
    hourly = allowance.account_others_hourly + cost_after
    required = math.ceil(hourly * allowance.min_credit_hours)
    if billing.balance >= required:
        return
    hours = f"{allowance.min_credit_hours:g}"
    raise InsufficientCreditError(
        ErrorCode.INSUFFICIENT_CREDIT,
        f"the account's credit ({billing.balance} {billing.currency} minor units) does not "
        f"cover {hours} hours of everything it would run ({hourly} an hour, {required} in "
        "all); top it up first",
        extra={"required": required, "balance": billing.balance,
               "currency": billing.currency, "hours": allowance.min_credit_hours,
               "hourlyCost": hourly})
