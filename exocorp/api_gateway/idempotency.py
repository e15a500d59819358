"""``Idempotency-Key`` on every POST, with Stripe's semantics, in one middleware.

A POST carrying ``Idempotency-Key: <1 to 255 visible ASCII characters>``:

- first time: the request runs; its answer (status, body, ``Location``/``Content-Type``/
  ``Cache-Control``) is stored and replayed to every later request with the same key and the
  same request (method, path, exact body), with ``Idempotent-Replayed: true``;
- same key, different request: 422 ``idempotency_key_reused``;
- same key while the first request still runs: 409 ``idempotency_in_progress`` with
  ``Retry-After``;
- 5xx answers, and refusals before any work (400, 401, 413, 415, 429), are not stored: the key
  is freed and a retry runs afresh;
- an invalid key (empty, too long, not visible ASCII, repeated header): 400
  ``invalid_idempotency_key``.

Scope: the user the request acts for (session, or an agent's token acting for its user).
Requests without a user (signup, an agent's draft, redeeming a draft token) share the
``anonymous`` scope; there the key is stored only as a digest and the raw key is mixed into the
request fingerprint, so a replay needs both the key and the identical body (which for signup
holds the password). ``POST /api/auth/login`` and ``/api/auth/logout`` ignore the header: a
login's answer is a new session, a password-equivalent that must never be stored, and a retried
login or logout has no effect worth de-duplicating.

Secrets are never stored: ``Set-Cookie`` is dropped and the once-shown secret fields of an
answer (:data:`SECRET_FIELDS`) are removed before storing; a replay says which ones it withheld
in ``Idempotent-Secrets-Withheld``.

Crash safety. The record is claimed (a pending row) before the handler runs and completed after
it. Handlers whose effect lives outside the database make that write the commit point: the
lifecycle actions put :attr:`IdempotencyClaim.digest` into the Exocorp's
``exocorp.io/request-keys`` annotation in the same patch as the action, and company creation
puts it on the new object. A pending record whose owner died is taken over by a retry after
``idempotency_stale_after`` (30 s by default); the handler then finds its key on the object and
answers the original result instead of acting again. Records are purged after
``idempotency_retention`` (24 h).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import os
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import web
from aiohttp.typedefs import Handler
from sqlalchemy.ext.asyncio import AsyncSession

from exocorp.api_gateway.errors import Problem, as_problem, bad_request, problem_response
from exocorp.api_gateway.keys import CLOCK, DATABASE, PRINCIPAL, SETTINGS
from exocorp.api_gateway.routing import EXEMPT_PATHS
from exocorp.store import idempotency as records

__all__ = [
    "CRASH_AFTER_KUBE_WRITE_ENV",
    "HEADER",
    "IDEMPOTENCY",
    "REPLAYED_HEADER",
    "SECRET_FIELDS",
    "IdempotencyClaim",
    "answered",
    "claim_of",
    "complete_in",
    "crash_point",
    "idempotency_middleware",
    "store_answer",
]

log = logging.getLogger(__name__)

HEADER: Final = "Idempotency-Key"
REPLAYED_HEADER: Final = "Idempotent-Replayed"
WITHHELD_HEADER: Final = "Idempotent-Secrets-Withheld"
SECRET_FIELDS: Final = frozenset({"recoveryKit", "token", "draftToken", "password", "value"})
"""Answer fields shown once and never stored (removed at any depth of the JSON body)."""
STORED_HEADERS: Final = ("Content-Type", "Location", "Cache-Control")
NOT_STORED: Final = frozenset({400, 401, 413, 415, 429})
"""Refusals before the endpoint did anything: fix the request and retry with the same key."""
CRASH_AFTER_KUBE_WRITE_ENV: Final = "EXOCORP_TEST_CRASH_AFTER_KUBE_WRITE"
"""TEST ONLY, unset in every deployment: when it equals a request's Idempotency-Key, the process
exits abruptly (``os._exit``) right after that request's Kubernetes write, as a crash there
would. The crash-safety integration test sets it on its own gateway process."""
_MAX_KEY = 255


@dataclass(frozen=True)
class IdempotencyClaim:
    """This request holds ``key`` in ``scope`` (set on the request while its handler runs)."""

    scope: str
    key: str
    """The raw key (as sent)."""
    stored_key: str
    """What the database holds: the raw key for a user, a digest for the anonymous scope."""

    @property
    def digest(self) -> str:
        """Names this request on Kubernetes objects (annotations): never the raw key."""
        return hashlib.sha256(f"{self.scope}\n{self.key}".encode()).hexdigest()[:32]


IDEMPOTENCY: web.RequestKey[IdempotencyClaim] = web.RequestKey("exocorp.idempotency")
_COMPLETED: web.RequestKey[int] = web.RequestKey("exocorp.idempotency_completed")


def claim_of(request: web.Request) -> IdempotencyClaim | None:
    """The request's claim on its Idempotency-Key, or None (no key, not a POST, exempt)."""
    return request.get(IDEMPOTENCY)


async def complete_in(session: AsyncSession, request: web.Request,
                      response: web.Response) -> web.Response:
    """Store ``response`` as the answer to the request's Idempotency-Key inside the handler's
    own transaction ``session``: the work and its record commit together, so no crash can
    leave the work done and the key pending. A no-op without a key. Returns ``response``.
    (A commit that then fails raises, so the middleware frees the key as for any 5xx.)"""
    if await store_answer(session, request, response):
        answered(request, response)
    return response


async def store_answer(session: AsyncSession, request: web.Request,
                       response: web.Response) -> bool:
    """Write ``response`` as the answer to the request's Idempotency-Key in ``session``, if it
    has one and the answer is kept; True when written. Call :func:`answered` once ``session``
    committed: until then the middleware still stores the answer itself."""
    claim = claim_of(request)
    if claim is None or response.status >= 500 or response.status in NOT_STORED:
        return False
    await records.complete_request(session, user_id=claim.scope, key=claim.stored_key,
                                   status=response.status, body=stored_form(response),
                                   now=request.app[CLOCK]())
    return True


def answered(request: web.Request, response: web.Response) -> None:
    """The answer :func:`store_answer` wrote has committed: the middleware need not."""
    request[_COMPLETED] = response.status


def crash_point(request: web.Request) -> None:
    """Test-only fault injection (see :data:`CRASH_AFTER_KUBE_WRITE_ENV`); a no-op otherwise."""
    target = os.environ.get(CRASH_AFTER_KUBE_WRITE_ENV)
    claim = claim_of(request)
    if target and claim is not None and claim.key == target:
        log.critical("test fault injection: exiting right after the Kubernetes write")
        os._exit(86)


def _parse_key(request: web.Request) -> str | None:
    values = request.headers.getall(HEADER, [])
    if not values:
        return None
    if len(values) > 1:
        raise bad_request(f"send one {HEADER} header", code="invalid_idempotency_key")
    key = values[0]
    if not 1 <= len(key) <= _MAX_KEY or not all(" " <= ch <= "~" for ch in key) \
            or key.strip() != key:
        raise bad_request(f"{HEADER} must be 1 to {_MAX_KEY} visible ASCII characters "
                          "(a UUID is a good choice)", code="invalid_idempotency_key")
    return key


def _claim(request: web.Request, key: str) -> IdempotencyClaim:
    user_id = request[PRINCIPAL].user_id
    if user_id is not None:
        return IdempotencyClaim(scope=user_id, key=key, stored_key=key)
    digest = hashlib.sha256(key.encode()).hexdigest()
    return IdempotencyClaim(scope=records.ANONYMOUS_SCOPE, key=key,
                            stored_key=f"sha256:{digest}")


def _fingerprint(request: web.Request, claim: IdempotencyClaim, body: bytes) -> str:
    plain = records.request_fingerprint(request.method, request.path_qs, body)
    if claim.scope != records.ANONYMOUS_SCOPE:
        return plain
    # Anonymous bodies hold passwords: without the raw key (not stored) the fingerprint is no
    # help in guessing one.
    return hmac.new(claim.key.encode(), plain.encode(), hashlib.sha256).hexdigest()


def _withhold(value: Any, withheld: set[str]) -> Any:
    if isinstance(value, dict):
        out = {}
        for name, item in value.items():
            if name in SECRET_FIELDS and item is not None:
                withheld.add(name)
                continue
            out[name] = _withhold(item, withheld)
        return out
    if isinstance(value, list):
        return [_withhold(item, withheld) for item in value]
    return value


def stored_form(response: web.Response) -> dict[str, Any]:
    """What is kept of an answer: status, a few headers, the body without secrets."""
    headers = {name: response.headers[name] for name in STORED_HEADERS if name in response.headers}
    raw = response.body if isinstance(response.body, bytes) else b""
    withheld: set[str] = set()
    body: Any
    if raw and "json" in response.content_type:
        body = _withhold(json.loads(raw), withheld)
        return {"headers": headers, "json": body, "withheld": sorted(withheld)}
    return {"headers": headers, "text": raw.decode("utf-8", "replace"), "withheld": []}


def replay(status: int, stored: dict[str, Any]) -> web.Response:
    headers = dict(stored.get("headers") or {})
    headers[REPLAYED_HEADER] = "true"
    if stored.get("withheld"):
        headers[WITHHELD_HEADER] = ", ".join(stored["withheld"])
    content_type = headers.pop("Content-Type", None)
    if "json" in stored:
        text = json.dumps(stored["json"], separators=(",", ":"))
    else:
        text = stored.get("text") or ""
    response = web.Response(status=status, text=text if status != 204 else None,
                            headers=headers)
    if content_type and status != 204:
        response.headers["Content-Type"] = content_type
    return response


async def _begin(request: web.Request, claim: IdempotencyClaim,
                 fingerprint: str) -> web.Response | None:
    app = request.app
    try:
        async with app[DATABASE].sessionmaker.begin() as s:
            record = await records.begin_request(
                s, user_id=claim.scope, key=claim.stored_key, method=request.method,
                path=request.path_qs, fingerprint=fingerprint,
                stale_after=app[SETTINGS].idempotency_stale_after, now=app[CLOCK]())
            if record is None:
                return None
            assert record.response_status is not None
            return replay(record.response_status, record.response_body or {})
    except records.KeyReused:
        raise Problem(422, "idempotency_key_reused",
                      f"this {HEADER} was used for a different request (another method, path or "
                      "body); use a new key for a new request") from None
    except records.RequestInProgress as error:
        raise Problem(409, "idempotency_in_progress",
                      f"a request with this {HEADER} is still being processed; retry after a "
                      "moment to get its result",
                      headers={"Retry-After": str(max(1, math.ceil(error.retry_after)))}) from None


async def _finish(request: web.Request, claim: IdempotencyClaim,
                  response: web.StreamResponse) -> None:
    app = request.app
    if request.get(_COMPLETED) == response.status:
        return  # stored with the work, in the handler's transaction
    try:
        async with app[DATABASE].sessionmaker.begin() as s:
            if response.status >= 500 or response.status in NOT_STORED \
                    or not isinstance(response, web.Response):
                await records.abandon_request(s, user_id=claim.scope, key=claim.stored_key)
            else:
                await records.complete_request(s, user_id=claim.scope, key=claim.stored_key,
                                               status=response.status,
                                               body=stored_form(response), now=app[CLOCK]())
    except Exception:
        # The answer stands; the pending record is taken over by a retry once stale.
        log.warning("could not store the result of %s %s under its Idempotency-Key",
                    request.method, request.path, exc_info=True)


@web.middleware
async def idempotency_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method != "POST" or request.path in EXEMPT_PATHS:
        return await handler(request)
    key = _parse_key(request)
    if key is None:
        return await handler(request)
    claim = _claim(request, key)
    body = await request.read()  # cached: the handler reads it again
    stored = await _begin(request, claim, _fingerprint(request, claim, body))
    if stored is not None:
        return stored
    request[IDEMPOTENCY] = claim
    try:
        response = await handler(request)
    except Exception as error:
        problem = as_problem(error)
        # Cancellation (client gone, shutdown) is no Exception: the record stays pending, and
        # a retry takes it over once stale.
        if problem is None:  # a 500: free the key, let the error middleware answer
            await _finish(request, claim, web.Response(status=500))
            raise
        response = problem_response(request, problem.status, problem.code, problem.detail,
                                    errors=problem.errors, headers=problem.headers,
                                    extra=problem.extra)
    await _finish(request, claim, response)
    return response
