"""Route tables: each API group is a module with one ``RouteTable`` whose entries carry what the
OpenAPI document needs (summary, auth, body, query and response models, error statuses).

A route module looks like this::

    from exocorp.api_gateway.routing import Auth, RouteTable, json_body

    routes = RouteTable("admin", "Platform-owner operations.")

    @routes.get("/api/admin/companies", summary="All exocorps", auth=Auth.PLATFORM_OWNER,
                response=AdminCompanyList)
    async def list_companies(request: web.Request) -> web.Response:
        principal = require_platform_owner(request)
        ...
        return json_response(AdminCompanyList(...))

and is registered by adding ``admin.routes`` to ``EXTENSION_ROUTE_TABLES`` in ``app.py``.
Request bodies are read with :func:`json_body` (400 for malformed JSON or invalid fields, 415 for
a non-JSON content type), query strings with :func:`query_params`; a query parameter the
route's ``query`` model does not name is refused before the handler runs (one rule for all).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from exocorp.api_gateway.errors import FieldError, Problem, bad_request, field_errors

__all__ = [
    "Auth",
    "Handler",
    "RouteInfo",
    "RouteTable",
    "idempotent",
    "json_body",
    "json_response",
    "query_params",
]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
M = TypeVar("M", bound=BaseModel)
SetupHook = Callable[[web.Application], None]


class Auth(StrEnum):
    """Who may call a route (drives the OpenAPI security section and default error statuses)."""

    PUBLIC = "public"
    """Anyone."""
    USER = "user"
    """Any logged-in user (or an agent's bearer token acting for one)."""
    MEMBER = "member"
    """An owner, member or viewer of the exocorp named in the path; others get 404. Writes
    (draft, lifecycle) refuse a viewer with 403."""
    OWNER = "owner"
    """The exocorp's owner; members get 403, others 404."""
    PLATFORM_OWNER = "platform_owner"
    """A platform owner (admin role); other users get 403."""
    DRAFT_TOKEN = "draft_token"  # noqa: S105 (a name)
    """An operator client's draft access token."""


_AUTH_ERRORS: dict[Auth, tuple[int, ...]] = {
    Auth.PUBLIC: (),
    Auth.USER: (401, 403),
    Auth.MEMBER: (401, 403, 404),
    Auth.OWNER: (401, 403, 404),
    Auth.PLATFORM_OWNER: (401, 403),
    Auth.DRAFT_TOKEN: (401, 403),
}


@dataclass(frozen=True)
class RouteInfo:
    method: str
    path: str
    handler: Handler
    summary: str
    description: str
    tag: str
    auth: Auth
    body: type[BaseModel] | None
    body_required: bool
    query: type[BaseModel] | None
    response: type[BaseModel] | None
    status: int
    errors: tuple[int, ...]
    content_type: str
    """Of a successful answer: application/json, or e.g. text/markdown."""
    other_successes: tuple[int, ...] = ()
    """Further success statuses with the same answer (e.g. 200 for an idempotent repeat of a
    201)."""
    events: tuple[tuple[str, type[BaseModel]], ...] = ()
    """A ``text/event-stream`` route's events: name and the model of its JSON ``data``."""
    other_content_types: tuple[str, ...] = ()
    """Further renderings of a successful answer (text, e.g. application/yaml), chosen by the
    client."""

    @property
    def operation_id(self) -> str:
        return self.handler.__name__.lstrip("_")

    @property
    def error_statuses(self) -> list[int]:
        statuses = set(self.errors) | set(_AUTH_ERRORS[self.auth])
        statuses.add(400)  # an unknown query parameter, on every route
        if self.body is not None:
            statuses |= {413, 415}
        if "{" in self.path:  # an unknown id in the path
            statuses.add(404)
        if self.method not in ("GET", "HEAD", "OPTIONS"):  # a cross-origin cookie write
            statuses.add(403)
        if self.path.startswith("/api/"):
            statuses |= {500, 503}
        if idempotent(self):
            statuses |= {400, 409, 422}
        return sorted(statuses)

EXEMPT_PATHS: Final = frozenset({"/api/auth/login", "/api/auth/logout"})
"""POSTs that ignore ``Idempotency-Key`` (see ``idempotency``)."""


def idempotent(info: RouteInfo) -> bool:
    """Does the route honour ``Idempotency-Key`` (every POST but login and logout)?"""
    return info.method == "POST" and info.path not in EXEMPT_PATHS


@dataclass
class RouteTable:
    """The routes of one API group (one OpenAPI tag)."""

    tag: str
    description: str = ""
    routes: list[RouteInfo] = field(default_factory=list)
    setup_hooks: list[SetupHook] = field(default_factory=list)

    def route(self, method: str, path: str, *, summary: str, description: str = "",
              auth: Auth = Auth.USER, body: type[BaseModel] | None = None,
              body_required: bool = True, query: type[BaseModel] | None = None,
              response: type[BaseModel] | None = None, status: int = 200,
              errors: Sequence[int] = (), content_type: str = "application/json",
              other_successes: Sequence[int] = (),
              events: Sequence[tuple[str, type[BaseModel]]] = (),
              other_content_types: Sequence[str] = (),
              ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.routes.append(RouteInfo(
                method=method.upper(), path=path, handler=handler, summary=summary,
                description=description or (handler.__doc__ or "").strip(), tag=self.tag,
                auth=auth, body=body, body_required=body_required, query=query,
                response=response, status=status, errors=tuple(errors),
                content_type=content_type, other_successes=tuple(other_successes),
                events=tuple(events), other_content_types=tuple(other_content_types)))
            return handler
        return register

    def get(self, path: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        return self.route("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        return self.route("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        return self.route("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        return self.route("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        return self.route("DELETE", path, **kwargs)

    def on_setup(self, hook: SetupHook) -> SetupHook:
        """Run ``hook(app)`` when the app is built: app state the group's routes need, and so on
        (background loops belong in ``workers``)."""
        self.setup_hooks.append(hook)
        return hook

    def register(self, app: web.Application) -> None:
        for info in self.routes:
            app.router.add_route(info.method, info.path, _known_query_only(info),
                                 name=info.operation_id)
        for hook in self.setup_hooks:
            hook(app)


# -- request bodies, query strings, responses ----------------------------------------------------


def query_names(info: RouteInfo) -> frozenset[str]:
    """The query parameters a route takes (its query model's wire names)."""
    if info.query is None:
        return frozenset()
    return frozenset(field.alias or name for name, field in info.query.model_fields.items())


def _known_query_only(info: RouteInfo) -> Handler:
    """One rule for every route: a query parameter the route does not take is a 400 naming it,
    so a typo (``?chanel=beta``) never silently means the default."""
    allowed = query_names(info)
    handler = info.handler

    @functools.wraps(handler)
    async def checked(request: web.Request) -> web.StreamResponse:
        # Most requests have no query string: nothing to parse.
        unknown = sorted(set(request.query) - allowed) if request.query_string else ()
        if unknown:
            raise bad_request(
                "unknown query parameter: " + ", ".join(unknown)
                + (f" (this route takes {', '.join(sorted(allowed))})" if allowed else
                   " (this route takes none)"),
                [FieldError(name, "unknown query parameter") for name in unknown])
        return await handler(request)

    return checked

_JSON_TYPES = ("application/json", "application/merge-patch+json")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


async def read_json_object(request: web.Request, *, required: bool = True) -> dict[str, Any]:
    """The body as a JSON object ({} for an empty optional body)."""
    raw = await request.read()
    if not raw.strip():
        if required:
            raise bad_request("a JSON body is required", code="body_required")
        return {}
    if request.headers.get("Content-Type") and not (
            request.content_type in _JSON_TYPES or request.content_type.endswith("+json")):
        raise Problem(415, "unsupported_media_type",
                      "send the body as JSON (Content-Type: application/json)")
    try:
        data = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise bad_request("the body is not valid JSON", code="invalid_json") from None
    if not isinstance(data, dict):
        raise bad_request("the body must be a JSON object", code="invalid_json")
    return data


async def json_body(request: web.Request, model: type[M], *, required: bool = True) -> M:
    """Read and validate the body; 400 naming every invalid field (never echoing values)."""
    data = await read_json_object(request, required=required)
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise bad_request("the request body is invalid", field_errors(error)) from None


def query_params(request: web.Request, model: type[M]) -> M:
    """Validate the query string (repeated parameters: the last one counts)."""
    try:
        return model.model_validate(dict(request.query))
    except ValidationError as error:
        raise bad_request("the query string is invalid", field_errors(error)) from None


def json_response(model: BaseModel, *, status: int = 200,
                  headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, headers=headers, content_type="application/json",
                        text=model.model_dump_json(by_alias=True, exclude_none=True))


ROUTE_TABLES: web.AppKey[list[RouteTable]] = web.AppKey("exocorp.route_tables")
"""Every route table the app registered (the OpenAPI document is generated from them); here,
not in ``keys``, so that ``keys`` stays below everything in the gateway."""
