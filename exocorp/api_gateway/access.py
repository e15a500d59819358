"""Authentication and authorization.

The auth middleware resolves one :class:`Principal` per request from the session cookie or an
``Authorization: Bearer`` header (a session token, or an operator client's token); handlers get
it with :func:`principal_of` and enforce roles with the ``require_*`` helpers:

- :func:`require_user`: a user (or an agent's bearer token acting for one); 401 otherwise.
- :func:`require_platform_owner`: the admin role; 403 for other users.
- :func:`exocorp_access`: an exocorp the caller owns or is a member of. A stranger's (or an
  unknown, or a destroyed) exocorp is 404, never 403, so ids do not leak; ``owner_only`` makes
  members get 403.

Members may read an exocorp, save its draft and run every lifecycle action except destroy, which
is the owner's alone *(defined here; see docs/api.md)*.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from aiohttp import web

from exocorp.api_gateway.errors import Problem, forbidden, not_found, unauthorized
from exocorp.api_gateway.keys import ACCESS_CACHE, CACHE, CLOCK, DATABASE, PRINCIPAL, SETTINGS
from exocorp.api_gateway.principal import ANONYMOUS, Principal, PrincipalKind, Via
from exocorp.model.spec import SLUG_PATTERN
from exocorp.security import hash_token
from exocorp.store import accounts, registry, sessions, tokens
from exocorp.store.errors import InvalidCredentials, NotFound
from exocorp.store.registry import MemberExocorp
from exocorp.store.schema import ExocorpRecord, Role, TokenKind
from exocorp.store.tokens import AgentScope

__all__ = [
    "ExocorpAccess",
    "clear_session_cookie",
    "exocorp_access",
    "owner_required",
    "principal_of",
    "refuse_until_password_changed",
    "require_agent_grant",
    "require_platform_owner",
    "require_user",
    "resolve_principal",
    "set_session_cookie",
    "user_fleet",
]

_SLUG = re.compile(SLUG_PATTERN)
_EXPIRED = "the session has expired or was revoked; log in again"
_BAD_TOKEN = "the bearer token is unknown, expired or revoked"  # noqa: S105


async def resolve_principal(request: web.Request, *, touch: bool = True) -> Principal:
    """Who the request's credentials name. Refused credentials give an anonymous principal whose
    ``credential_error`` becomes the 401 detail if the route needs a user. ``touch=False``
    checks a session without counting it as use (an open event stream is not activity: the
    session still ends when idle)."""
    settings = request.app[SETTINGS]
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, token = header.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return Principal(PrincipalKind.ANONYMOUS, Via.BEARER,
                             credential_error="use Authorization: Bearer <token>")
        if token.startswith(sessions.SESSION_TOKEN_PREFIX + "_"):
            return await _from_session(request, token, Via.BEARER, touch)
        return await _from_operator_token(request, token)
    cookie = request.cookies.get(settings.cookie_name)
    if cookie:
        return await _from_session(request, cookie, Via.COOKIE, touch)
    return ANONYMOUS


async def _from_session(request: web.Request, token: str, via: Via,
                        touch: bool = True) -> Principal:
    app = request.app
    token_hash = hash_token(token)
    cached = app[ACCESS_CACHE].principal(token_hash, via)
    if cached is not None:
        return cached
    try:
        async with app[DATABASE].sessionmaker.begin() as s:
            found = await sessions.lookup_session(s, token, policy=app[SETTINGS].session_policy,
                                                  now=app[CLOCK](), touch=touch)
    except InvalidCredentials:
        return Principal(PrincipalKind.ANONYMOUS, via, credential_error=_EXPIRED)
    user = found.user
    principal = Principal(PrincipalKind.USER, via, user_id=user.id, email=user.email,
                          platform_owner=user.platform_owner, session_token_hash=token_hash,
                          password_change_required=found.session.password_change_required)
    app[ACCESS_CACHE].remember_principal(
        token_hash, principal,
        not_after=min(found.session.idle_expires_at, found.session.absolute_expires_at))
    return principal


async def _from_operator_token(request: web.Request, token: str) -> Principal:
    """Agent tokens are looked up every time (not cached): revoking one takes effect at once,
    on every replica, and each use is recorded."""
    app = request.app
    try:
        async with app[DATABASE].sessionmaker.begin() as s:
            grant = await tokens.authenticate_token(s, token, now=app[CLOCK]())
            email, scope = None, None
            if grant.kind is TokenKind.CLIENT_BEARER and grant.user_id is not None:
                email = (await accounts.get_user(s, grant.user_id)).email
                scope = await tokens.client_scope(s, grant.client.id)
    except InvalidCredentials:
        return Principal(PrincipalKind.ANONYMOUS, Via.BEARER, credential_error=_BAD_TOKEN)
    if grant.kind is TokenKind.DRAFT_ACCESS:
        return Principal(PrincipalKind.DRAFT_TOKEN, Via.BEARER, client_id=grant.client.id,
                         draft_id=grant.draft_id)
    # An agent acts for the user who approved it, never with that user's platform-owner role.
    return Principal(PrincipalKind.OPERATOR_CLIENT, Via.BEARER, user_id=grant.user_id,
                     email=email, client_id=grant.client.id,
                     agent_scope=scope or AgentScope(frozenset()))


def principal_of(request: web.Request) -> Principal:
    """The caller (anonymous when the auth middleware did not run or found no credentials)."""
    principal = request.get(PRINCIPAL)
    return principal if principal is not None else ANONYMOUS


def require_user(request: web.Request) -> Principal:
    """The calling user; 401 without (valid) credentials, 403 for a draft access token."""
    principal = principal_of(request)
    if principal.acts_for_user:
        return principal
    if principal.kind is PrincipalKind.DRAFT_TOKEN:
        raise forbidden("a draft access token reaches only its own draft; redeem it for a "
                        "bearer token once a human has approved the agent",
                        code="draft_token_scope")
    raise unauthorized(principal.credential_error or
                       "log in first (session cookie, or Authorization: Bearer <token>)")


PASSWORD_CHANGE_ROUTES: Final = frozenset({
    ("GET", "/api/auth/me"), ("HEAD", "/api/auth/me"), ("POST", "/api/auth/password"),
    ("POST", "/api/auth/login"), ("POST", "/api/auth/logout"),
    ("POST", "/api/auth/logout-everywhere")})
"""What a session that must change its password may call under ``/api/``."""


def refuse_until_password_changed(request: web.Request, principal: Principal) -> None:
    """403 ``password_change_required`` for a recovery-kit session calling anything under
    ``/api/`` but :data:`PASSWORD_CHANGE_ROUTES`: whoever used the kit (perhaps a thief holding
    the old password too) reaches nothing of the account before choosing a new password.
    Pages of the dashboard load, so it can show the password form."""
    if not principal.password_change_required or not request.path.startswith("/api/"):
        return
    if (request.method, request.path) in PASSWORD_CHANGE_ROUTES:
        return
    raise forbidden("this session was opened with the recovery kit: set a new password first "
                    "(POST /api/auth/password; `exocorp password` on the command line)",
                    code="password_change_required")


def require_platform_owner(request: web.Request) -> Principal:
    principal = require_user(request)
    if not principal.platform_owner:
        raise forbidden("this needs the platform-owner role", code="platform_owner_required")
    return principal


_GRANTS = {"destroy": "destroy exocorps",
           "providerSecrets": "add, rotate or delete provider credentials"}


def require_agent_grant(principal: Principal, grant: str) -> None:
    """403 ``agent_scope`` for an agent's token its human did not grant ``grant``
    (``destroy`` or ``providerSecrets``) on the approval page; people pass."""
    scope = principal.agent_scope
    if principal.kind is not PrincipalKind.OPERATOR_CLIENT or scope is None:
        return
    if (scope.may_destroy if grant == "destroy" else scope.may_write_secrets):
        return
    raise forbidden(f"this agent's token may not {_GRANTS[grant]}: its human did not grant "
                    "it at approval; ask your human to do it", code="agent_scope")


def in_agent_scope(principal: Principal, exocorp_id: str) -> bool:
    """False for an agent's token that does not reach ``exocorp_id``."""
    scope = principal.agent_scope
    return scope is None or exocorp_id in scope.exocorps


@dataclass(frozen=True)
class ExocorpAccess:
    """An exocorp the caller may reach, and the caller's role in it."""

    principal: Principal
    record: ExocorpRecord
    role: Role

    @property
    def exocorp_id(self) -> str:
        return self.record.id


async def exocorp_access(request: web.Request, exocorp_id: str, *,
                         owner_only: bool = False, write: bool = False) -> ExocorpAccess:
    """The caller's access to ``exocorp_id``: 404 unless owner, member or viewer (or when it is
    unknown or destroyed), 403 for a member when ``owner_only``, 403 for a viewer when
    ``write`` (saving the draft, lifecycle actions)."""
    principal = require_user(request)
    if not _SLUG.fullmatch(exocorp_id) or len(exocorp_id) > 63:
        raise _missing(exocorp_id)
    assert principal.user_id is not None
    if not in_agent_scope(principal, exocorp_id):
        raise forbidden(f"this agent's token does not reach exocorp {exocorp_id!r}: its human "
                        "named other exocorps at approval", code="agent_scope")
    cache = request.app[ACCESS_CACHE]
    cached = cache.role(principal.user_id, exocorp_id)
    if cached is not None:
        record, role = cached
    else:
        async with request.app[DATABASE].sessionmaker.begin() as s:
            try:
                record = await registry.get_exocorp(s, exocorp_id)
            except NotFound:
                raise _missing(exocorp_id) from None
            found = await registry.get_role(s, exocorp_id=exocorp_id, user_id=principal.user_id)
        if found is None:
            raise _missing(exocorp_id)
        role = found
        cache.remember_role(principal.user_id, record, role)
    if record.destroyed_at is not None and request.app[CACHE].exocorp(exocorp_id) is None:
        raise _missing(exocorp_id)
    if owner_only and role is not Role.OWNER:
        raise owner_required(exocorp_id)
    if write and role is Role.VIEWER:
        raise forbidden(f"your role in {exocorp_id!r} is viewer (read only); ask its owner for "
                        "the member role", code="viewer_read_only")
    return ExocorpAccess(principal, record, role)


def _missing(exocorp_id: str) -> Problem:
    # Built only when raised: a Problem and its message cost more than the checks themselves.
    return not_found(f"exocorp {exocorp_id!r} not found")


def owner_required(exocorp_id: str) -> Problem:
    """The 403 a member gets for what only the owner may do (destroy)."""
    return forbidden(f"only the owner of {exocorp_id!r} may do this", code="owner_required")


async def user_fleet(request: web.Request, user_id: str) -> list[MemberExocorp]:
    """The exocorps ``user_id`` owns or is a member of (destroyed ones included), with roles."""
    database = request.app[DATABASE]

    async def load() -> list[MemberExocorp]:
        async with database.sessionmaker.begin() as s:
            return await registry.list_user_exocorps(s, user_id, include_destroyed=True)

    return await request.app[ACCESS_CACHE].fleet_once(user_id, load)


def set_session_cookie(response: web.StreamResponse, request: web.Request, token: str) -> None:
    settings = request.app[SETTINGS]
    response.set_cookie(settings.cookie_name, token, path="/", httponly=True, samesite="Lax",
                        secure=settings.cookie_secure,
                        max_age=int(settings.session_absolute_timeout.total_seconds()))


def clear_session_cookie(response: web.StreamResponse, request: web.Request) -> None:
    settings = request.app[SETTINGS]
    response.del_cookie(settings.cookie_name, path="/", secure=settings.cookie_secure,
                        httponly=True, samesite="Lax")
