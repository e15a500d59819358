"""Why the lifecycle refuses an action: a machine-readable code, the HTTP status the gateway
answers with (400, 402 or 409; the gateway maps it to problem+json), the invalid fields and any
figures a client needs to act on it (``extra``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import ValidationError


class ErrorCode(StrEnum):
    """Machine-readable codes of refused actions."""

    INVALID_REQUEST = "invalid_request"
    NOT_FOUND = "not_found"
    CONCURRENT_CHANGE = "concurrent_change"
    REASON_REQUIRED = "reason_required"
    CONFIRMATION_MISMATCH = "confirmation_mismatch"
    INVALID_PHASE = "invalid_phase"
    IN_PROGRESS = "in_progress"
    DRAFT_MISSING = "draft_missing"
    DRAFT_INVALID = "draft_invalid"
    RELEASE_NOT_FOUND = "release_not_found"
    RELEASE_WITHDRAWN = "release_withdrawn"
    PROVIDER_MISSING = "provider_missing"
    BILLING_INACTIVE = "billing_inactive"
    NO_PRICE_BOOK = "no_price_book"
    UPDATE_NOT_AVAILABLE = "update_not_available"
    NO_SUCCESSFUL_REVISION = "no_successful_revision"
    REVISION_NOT_FOUND = "revision_not_found"
    REVISION_NOT_SUCCESSFUL = "revision_not_successful"
    LIMIT_EXCEEDED = "limit_exceeded"
    INSUFFICIENT_CREDIT = "insufficient_credit"


@dataclass(frozen=True)
class FieldError:
    """One invalid field of a request or draft."""

    field: str
    """Dotted path of the field, in wire (camelCase) names."""
    message: str
    """What is wrong with it."""


class LifecycleError(Exception):
    """An action the lifecycle will not carry out. The subclass says why in domain terms; the
    gateway maps each to an HTTP status (``exocorp.api_gateway.errors``)."""

    def __init__(self, code: ErrorCode, detail: str,
                 field_errors: Sequence[FieldError] = (),
                 extra: Mapping[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.field_errors = tuple(field_errors)
        self.extra = dict(extra or {})
        """Members the problem answer carries besides ``detail`` (wire names)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code.value!r}, {self.detail!r})"


class InvalidRequestError(LifecycleError):
    """The request itself is wrong: malformed, a field the action does not take, a reason or
    confirmation missing. Fix the request (HTTP 400)."""


class ActionRefusedError(LifecycleError):
    """The exocorp's state does not allow the action now: its phase, a rollout in progress, or
    something the action needs (a draft, a release, a credential, billing). HTTP 409."""


class LimitExceededError(ActionRefusedError):
    """The action would take the owner's account, or the platform, past a resource limit
    (``extra`` names it: ``limit``, ``scope``, ``max``, ``requested``). HTTP 409."""


class InsufficientCreditError(LifecycleError):
    """The owner's credit does not cover what the action would run for the required number of
    hours (``extra``: ``required``, ``balance``, ``currency``, ``hours``). HTTP 402."""


class ExocorpNotFoundError(LifecycleError):
    """The exocorp does not exist (HTTP 404)."""


def conflict(code: ErrorCode, detail: str, errors: Sequence[FieldError] = ()) -> ActionRefusedError:
    return ActionRefusedError(code, detail, errors)


def bad_request(code: ErrorCode, detail: str,
                errors: Sequence[FieldError] = ()) -> InvalidRequestError:
    return InvalidRequestError(code, detail, errors)


def field_errors_of(error: ValidationError) -> list[FieldError]:
    """Pydantic errors as dotted wire paths; errors about the whole body are on "(body)"."""
    return [
        FieldError(
            field=".".join(str(part) for part in item["loc"]) or "(body)",
            message=item["msg"],
        )
        for item in error.errors(include_url=False)
    ]
