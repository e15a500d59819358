"""Every error the gateway answers is ``application/problem+json`` (RFC 9457).

Handlers raise :class:`Problem` (or one of its helpers: :func:`bad_request`, :func:`not_found`,
...); :func:`error_middleware` also turns the lifecycle API's ``LifecycleError``, the store's
typed errors, pydantic validation errors and aiohttp's own HTTP errors (404 for an unknown route,
405, 413) into problems. Anything else is a 500 whose body carries only a trace id; the exception
is logged with that id. No body ever holds a stack trace, an input value or a secret.

Body members: ``type`` (always ``about:blank``), ``title`` (the status phrase), ``status``,
``detail`` (a sentence for people), ``code`` (for programs, e.g. ``invalid_phase``),
``instance`` (the request path), ``requestId``, ``errors`` (``[{field, message}]`` for 400s),
``traceId`` (5xx only) and, where they apply, ``currentVersion`` (stale draft saves) and the
figures of a refused action (``limit``, ``scope``, ``max``, ``requested`` of
``limit_exceeded``; ``required``, ``balance``, ``currency``, ``hours``, ``hourlyCost`` of
``insufficient_credit``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any, Final

from aiohttp import web
from aiohttp.typedefs import Handler
from pydantic import ValidationError

from exocorp.api_gateway.keys import REQUEST_ID
from exocorp.lifecycle import (
    ActionRefusedError,
    ExocorpNotFoundError,
    FieldError,
    InsufficientCreditError,
    InvalidRequestError,
    LifecycleError,
)
from exocorp.store.errors import (
    AccountDisabled,
    Conflict,
    InvalidCredentials,
    NotFound,
    StaleVersion,
    StoreError,
)
from exocorp.store.outage import database_unavailable

__all__ = [
    "PROBLEM_CONTENT_TYPE",
    "FieldError",
    "Problem",
    "bad_request",
    "conflict",
    "error_middleware",
    "field_errors",
    "forbidden",
    "not_found",
    "problem_response",
    "too_many_requests",
    "unauthorized",
    "unavailable",
]

log = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE: Final = "application/problem+json"

_HTTP_CODES: Final[Mapping[int, str]] = {
    400: "invalid_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    411: "length_required",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
    500: "internal",
    503: "unavailable",
}


class Problem(Exception):  # noqa: N818 (named for the answer it is, like the store errors)
    """An error answer. ``status`` is the HTTP status, ``code`` the machine-readable cause."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        errors: Sequence[FieldError] = (),
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.errors = tuple(errors)
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})

    def __repr__(self) -> str:
        return f"Problem({self.status}, {self.code!r}, {self.detail!r})"


def bad_request(detail: str, errors: Sequence[FieldError] = (), *,
                code: str = "invalid_request") -> Problem:
    return Problem(400, code, detail, errors=errors)


def unauthorized(detail: str = "log in first (session cookie or Authorization: Bearer)") -> Problem:
    return Problem(401, "unauthenticated", detail, headers={"WWW-Authenticate": "Bearer"})


def forbidden(detail: str, *, code: str = "forbidden") -> Problem:
    return Problem(403, code, detail)


def not_found(detail: str) -> Problem:
    return Problem(404, "not_found", detail)


def conflict(detail: str, *, code: str = "conflict", errors: Sequence[FieldError] = (),
             extra: Mapping[str, Any] | None = None) -> Problem:
    return Problem(409, code, detail, errors=errors, extra=extra)


def too_many_requests(detail: str, retry_after: int) -> Problem:
    return Problem(429, "too_many_requests", detail,
                   headers={"Retry-After": str(max(1, retry_after))})


def busy(detail: str = "too many passwords are being checked right now; retry in a moment",
         retry_after: int = 1) -> Problem:
    """503 ``busy``: a bounded resource (password hashing) is saturated; nothing was done."""
    return Problem(503, "busy", detail, headers={"Retry-After": str(max(1, retry_after))})


UNAVAILABLE_RETRY_AFTER: Final = 2
"""Seconds a client is told to wait (``Retry-After``) when a backing service is unreachable."""


def unavailable(detail: str = "the platform's database (or another backing service) is "
                "unreachable right now; nothing was changed by this request unless a retry "
                "with the same Idempotency-Key says so; retry shortly") -> Problem:
    return Problem(503, "unavailable", detail,
                   headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER)})


def field_errors(error: ValidationError, prefix: str = "") -> list[FieldError]:
    """Pydantic errors as ``{field, message}``: dotted wire paths, never the offending input."""
    out = []
    for item in error.errors(include_url=False, include_input=False, include_context=False):
        path = ".".join(str(part) for part in item["loc"])
        field = ".".join(p for p in (prefix, path) if p) or "(body)"
        out.append(FieldError(field=field, message=item["msg"]))
    return out


def problem_response(
    request: web.Request | None,
    status: int,
    code: str,
    detail: str,
    *,
    errors: Sequence[FieldError] = (),
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
    trace_id: str | None = None,
) -> web.Response:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": _phrase(status),
        "status": status,
        "detail": detail,
        "code": code,
    }
    if request is not None:
        body["instance"] = request.path
        request_id = request.get(REQUEST_ID)
        if request_id:
            body["requestId"] = request_id
    if errors:
        body["errors"] = [{"field": e.field, "message": e.message} for e in errors]
    if trace_id:
        body["traceId"] = trace_id
    body.update(extra or {})
    return web.Response(status=status, text=json.dumps(body), content_type=PROBLEM_CONTENT_TYPE,
                        headers=dict(headers or {}))


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


_LIFECYCLE_STATUS: dict[type[LifecycleError], int] = {
    InvalidRequestError: 400, InsufficientCreditError: 402, ActionRefusedError: 409,
    ExocorpNotFoundError: 404}


def _lifecycle_status(error: LifecycleError) -> int:
    """The HTTP status of a refused action, by the kind of refusal."""
    return next((status for kind, status in _LIFECYCLE_STATUS.items()
                 if isinstance(error, kind)), 409)


def as_problem(error: BaseException) -> Problem | None:
    """The problem an expected error stands for; None for an unexpected one (a 500)."""
    if isinstance(error, Problem):
        return error
    if isinstance(error, LifecycleError):
        return Problem(_lifecycle_status(error), error.code.value, error.detail,
                       errors=error.field_errors, extra=error.extra)
    if isinstance(error, ValidationError):
        return bad_request("the request is invalid", field_errors(error))
    if isinstance(error, StoreError):
        return _store_problem(error)
    if isinstance(error, web.HTTPException) and error.status >= 400:
        return _http_problem(error)
    if database_unavailable(error):
        log.warning("backing service unreachable: %s", type(error).__name__)
        return unavailable()
    return None


def _store_problem(error: StoreError) -> Problem | None:
    if isinstance(error, StaleVersion):
        return Problem(409, "stale_version", str(error),
                       extra={"currentVersion": error.current_version})
    if isinstance(error, Conflict):
        errors = [FieldError(error.field, str(error))] if error.field else []
        return Problem(409, "conflict", str(error), errors=errors)
    if isinstance(error, NotFound):
        return not_found(str(error))
    if isinstance(error, InvalidCredentials):
        return unauthorized(str(error))
    if isinstance(error, AccountDisabled):
        return forbidden(str(error), code="account_disabled")
    return None


def _http_problem(error: web.HTTPException) -> Problem:
    status = error.status
    headers = {k: v for k, v in error.headers.items() if k.lower() in ("allow", "retry-after")}
    if status == 404:
        detail = "no such endpoint; see /api/docs for the API"
    elif status == 405:
        allowed = headers.get("Allow", "")
        detail = "method not allowed here" + (f"; allowed: {allowed}" if allowed else "")
    elif status == 413:
        detail = "the request body is too large"
    else:
        detail = error.reason or _phrase(status)
    return Problem(status, _HTTP_CODES.get(status, "http_error"), detail, headers=headers)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every error into problem+json; log unexpected ones with a trace id."""
    problem: Problem | None
    try:
        return await handler(request)
    except web.HTTPException as error:
        if error.status < 400:
            raise  # redirects and the like pass through
        problem = _http_problem(error)
    except Exception as error:
        problem = as_problem(error)
    if problem is None:
        trace_id = str(request.get(REQUEST_ID) or "unknown")
        log.exception("unhandled error answering %s %s (trace id %s)",
                      request.method, request.path, trace_id)
        return problem_response(
            request, 500, "internal",
            "internal error; it was recorded under the trace id, and retrying may help",
            trace_id=trace_id)
    return problem_response(request, problem.status, problem.code, problem.detail,
                            errors=problem.errors, headers=problem.headers, extra=problem.extra)
