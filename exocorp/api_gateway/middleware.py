"""The gateway's middleware chain, outermost first:

1. :func:`edge_middleware`: what every answer gets, in one function (the cheapest read pays
   for each layer of the chain):

   - an id per request (a sane incoming ``X-Request-Id`` is kept, else :func:`new_request_id`),
     echoed in the ``X-Request-Id`` response header and in every problem body;
   - ``X-Content-Type-Options``, ``Referrer-Policy`` on every answer, and the dashboard's strict
     Content Security Policy on HTML pages that set none;
   - request count and duration by method, route template and status (``metrics``).
2. ``errors.error_middleware``: every error becomes problem+json (500s carry a trace id).
3. :func:`body_limit_middleware`: 413 for a declared body larger than the limit (the app's
   ``client_max_size`` catches chunked ones while they are read).
4. :func:`write_middleware`: cookie-authenticated writes must come from this origin
   (:func:`check_origin`); after a write, the cached action inputs are dropped.
5. :func:`auth_middleware`: resolves the principal (``access.resolve_principal``); a session
   opened with the recovery kit gets 403 ``password_change_required`` beyond the few routes it
   needs to set a new password.
6. ``idempotency.idempotency_middleware``: ``Idempotency-Key`` on POSTs (scoped by the
   principal, so it runs after authentication).
"""

from __future__ import annotations

import itertools
import os
import re
import secrets
import time
from typing import Final
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from exocorp.api_gateway.access import refuse_until_password_changed, resolve_principal
from exocorp.api_gateway.errors import error_middleware, forbidden, problem_response
from exocorp.api_gateway.idempotency import idempotency_middleware
from exocorp.api_gateway.keys import ACCESS_CACHE, METRICS, PRINCIPAL, REQUEST_ID, SETTINGS
from exocorp.api_gateway.metrics import route_label
from exocorp.api_gateway.principal import ANONYMOUS

__all__ = [
    "MIDDLEWARES",
    "auth_middleware",
    "body_limit_middleware",
    "check_origin",
    "edge_middleware",
    "new_request_id",
    "write_middleware",
]

_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})  # they change nothing
# Probes and scrapes never need a principal (and must not touch the database for one).
_NO_AUTH_PATHS = frozenset({"/healthz", "/readyz"})
_UI_ASSETS = "/assets/"  # the dashboard's static files: public, cached for a year


class _RequestIds:
    """Request ids without a system call each (``uuid4`` reads ``os.urandom`` per id): 32 hex
    digits, a random prefix per process (new after a fork) and a counter. Unique across
    processes and restarts as long as two 64-bit random prefixes never meet."""

    def __init__(self) -> None:
        self.reseed()
        os.register_at_fork(after_in_child=self.reseed)

    def reseed(self) -> None:
        self.prefix = secrets.token_hex(8)
        self.counter = itertools.count()

    def __call__(self) -> str:
        return f"{self.prefix}{next(self.counter):016x}"


new_request_id: Final = _RequestIds()
"""A fresh request id (for requests without a sane ``X-Request-Id`` of their own)."""

DASHBOARD_CSP: Final = ("default-src 'self'; script-src 'self'; style-src 'self'; "
                        "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; "
                        "base-uri 'none'; form-action 'self'")
"""The dashboard's policy: its own files only, no inline script or style, never framed."""


@web.middleware
async def edge_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Request id, security headers and metrics (see the module's docstring)."""
    incoming = request.headers.get("X-Request-Id")
    request_id = incoming if incoming and _REQUEST_ID.fullmatch(incoming) else new_request_id()
    request[REQUEST_ID] = request_id
    started = time.perf_counter()
    status = 500
    content_type = ""
    try:
        response = await handler(request)
        status = response.status
        content_type = response.content_type
    finally:
        # An event stream is open for as long as its client wants: no duration.
        request.app[METRICS].observe(
            request.method, route_label(request), status,
            None if content_type == "text/event-stream" else time.perf_counter() - started)
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    if content_type == "text/html":  # pages with a policy of their own keep it
        headers.setdefault("Content-Security-Policy", DASHBOARD_CSP)
    headers["X-Request-Id"] = request_id
    return response


@web.middleware
async def body_limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    limit = request.app[SETTINGS].max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        return problem_response(request, 413, "payload_too_large",
                                f"the request body is larger than {limit} bytes")
    return await handler(request)


def _same_origin(request: web.Request, origin: str) -> bool:
    parts = urlsplit(origin)
    if not parts.scheme or not parts.netloc:
        return False
    public = request.app[SETTINGS].public_base_url
    if public:
        trusted = urlsplit(public)
        if (parts.scheme, parts.netloc) == (trusted.scheme, trusted.netloc):
            return True
    return parts.netloc.lower() == (request.host or "").lower()


def check_origin(request: web.Request) -> None:
    """Refuse cross-origin browser writes that would ride on the session cookie.

    The rule of Go's ``http.CrossOriginProtection``: a write is allowed when the browser says
    ``Sec-Fetch-Site: same-origin`` (or ``none``: typed by the user); otherwise, when it sends an
    ``Origin``, that origin must be this host (or ``public_base_url``); requests with neither
    header are not from a browser and pass. Requests with an ``Authorization`` header carry no
    ambient credential and are not checked. SameSite=Lax on the cookie is the second layer.
    """
    if "Authorization" in request.headers:
        return
    fetch_site = request.headers.get("Sec-Fetch-Site")
    origin = request.headers.get("Origin")
    if fetch_site is not None and fetch_site.lower() in ("same-origin", "none"):
        return
    if origin is not None and _same_origin(request, origin):
        return
    if fetch_site is None and origin is None:
        return
    raise forbidden("cross-origin request refused: a write that uses the session cookie must "
                    "come from this site's own pages", code="cross_origin")


@web.middleware
async def write_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """What only writes need: :func:`check_origin` first, and once this process has served the
    write, dropping the cached action inputs (``access_cache``). Reads pass straight through."""
    if request.method in _SAFE_METHODS:
        return await handler(request)
    check_origin(request)
    try:
        return await handler(request)
    finally:
        request.app[ACCESS_CACHE].forget_action_inputs()


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path in _NO_AUTH_PATHS or request.path.startswith(_UI_ASSETS):
        request[PRINCIPAL] = ANONYMOUS
    else:
        request[PRINCIPAL] = principal = await resolve_principal(request)
        refuse_until_password_changed(request, principal)
    return await handler(request)


MIDDLEWARES: tuple[Middleware, ...] = (
    edge_middleware,
    error_middleware,
    body_limit_middleware,
    write_middleware,
    auth_middleware,
    idempotency_middleware,
)
