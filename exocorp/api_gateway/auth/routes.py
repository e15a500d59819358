"""Accounts and sessions: signup, login (password or recovery kit), logout, me."""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from exocorp.api_gateway.access import (
    clear_session_cookie,
    principal_of,
    require_user,
    set_session_cookie,
)
from exocorp.api_gateway.allowances import limit_usage
from exocorp.api_gateway.audited import audited
from exocorp.api_gateway.client_address import client_address, client_bucket
from exocorp.api_gateway.errors import (
    FieldError,
    bad_request,
    busy,
    conflict,
    forbidden,
    too_many_requests,
    unauthorized,
)
from exocorp.api_gateway.hash_gate import HashBusy
from exocorp.api_gateway.idempotency import complete_in
from exocorp.api_gateway.keys import (
    ACCESS_CACHE,
    CLOCK,
    DATABASE,
    HASH_GATE,
    HASHER,
    SETTINGS,
)
from exocorp.api_gateway.principal import Principal, PrincipalKind, Via
from exocorp.api_gateway.routing import Auth, RouteTable, json_body, json_response
from exocorp.api_gateway.schemas import (
    AuthResponse,
    LoginRequest,
    Membership,
    MeResponse,
    PasswordChangeRequest,
    SignupRequest,
)
from exocorp.api_gateway.views import account_view, invitation_view, timestamp, user_view
from exocorp.store import accounts, members, registry, sessions, throttle, tokens
from exocorp.store.errors import Conflict, InvalidCredentials
from exocorp.store.schema import ActorKind, User

routes = RouteTable("auth", "Sign up, log in and out, and who am I.")


def _roles(user: User) -> list[str]:
    return ["user", "platform_owner"] if user.platform_owner else ["user"]


async def _start_session(request: web.Request, user: User,
                         recovery_kit: str | None, status: int,
                         session: AsyncSession | None = None, *,
                         password_change_required: bool = False) -> web.Response:
    """Log ``user`` in; in ``session`` (the caller's transaction, which then also stores the
    answer under the request's Idempotency-Key) or a transaction of its own.
    ``password_change_required``: a recovery-kit login, whose session may only set a new
    password until it does."""
    app = request.app
    async with contextlib.AsyncExitStack() as stack:
        s: AsyncSession = session if session is not None else \
            await stack.enter_async_context(app[DATABASE].sessionmaker.begin())
        new = await sessions.create_session(
            s, user_id=user.id, policy=app[SETTINGS].session_policy, now=app[CLOCK](),
            user_agent=request.headers.get("User-Agent"), ip_address=client_address(request),
            password_change_required=password_change_required)
        body = AuthResponse(user=user_view(user), roles=_roles(user),
                            platform_owner=user.platform_owner, recovery_kit=recovery_kit,
                            session_expires_at=timestamp(new.session.absolute_expires_at),
                            password_change_required=password_change_required)
        response = json_response(body, status=status, headers={"Cache-Control": "no-store"})
        set_session_cookie(response, request, new.token.reveal())
        if session is not None:
            await complete_in(s, request, response)
    return response


def _from_agent(request: web.Request) -> bool:
    """An agent's token (valid or not) rides on the request: agents cannot sign up."""
    if principal_of(request).kind in (PrincipalKind.DRAFT_TOKEN, PrincipalKind.OPERATOR_CLIENT):
        return True
    token = request.headers.get("Authorization", "").partition(" ")[2].strip()
    return token.startswith((f"{tokens.DRAFT_TOKEN_PREFIX}_", f"{tokens.BEARER_TOKEN_PREFIX}_"))


@routes.post("/api/auth/signup", summary="Sign up", auth=Auth.PUBLIC, body=SignupRequest,
             response=AuthResponse, status=201, errors=(403, 409, 429, 503))
async def signup(request: web.Request) -> web.Response:
    """Create a user with a billing account holding the signup credit, log them in (session
    cookie) and return their recovery kit, once. 409 when the e-mail is registered (every attempt
    counts against the client's signup budget, so probing for addresses is throttled); 403
    ``agent_signup_refused`` when an agent's token comes with it; 403 ``signup_closed`` while
    the platform has no platform owner yet; 429 with Retry-After beyond
    ``--signup-max-per-client`` signups from one client address (an IPv6 client: its /64) per
    hour."""
    body = await json_body(request, SignupRequest)
    async with audited(request, "auth.signup") as note:
        note.details["email"] = body.email.strip().lower()
        if _from_agent(request):
            raise forbidden("agents cannot sign up: ask your human to open the handoff link "
                            "(see /skills/connect-agent.md)", code="agent_signup_refused")
        app = request.app
        settings = app[SETTINGS]
        async with app[DATABASE].sessionmaker.begin() as s:  # counted before any work
            wait = await throttle.take(s, f"signup:client:{client_bucket(request)}",
                                       limit=settings.signup_max_per_client,
                                       window=settings.signup_window, now=app[CLOCK]())
        if wait is not None:
            raise too_many_requests(f"too many signups from this address; try again in {wait} "
                                    "seconds", wait)
        if settings.signup_requires_owner:
            async with app[DATABASE].sessionmaker() as s:
                if not await accounts.platform_owner_exists(s):
                    raise forbidden("signup opens once the platform has a platform owner "
                                    "(`exocorp platform-owner`)", code="signup_closed")
        try:
            # User, account, credit, kit, session and the Idempotency-Key's answer: one
            # transaction.
            password_hash = await hash_password(request, body.password.get_secret_value())
            async with app[DATABASE].sessionmaker.begin() as s:
                new = await accounts.create_user(
                    s, email=body.email, password="", password_hash=password_hash,
                    signup_credit=app[SETTINGS].signup_credit, now=app[CLOCK]())
                note.actor = (ActorKind.USER, new.user.id)
                return await _start_session(request, new.user, new.recovery_kit.reveal(), 201,
                                            session=s)
        except Conflict:
            raise conflict("this e-mail address is already registered; log in instead",
                           code="email_taken") from None


async def hash_password(request: web.Request, password: str) -> str:
    """argon2id of ``password``, in a hash slot (503 ``busy`` when none is free) and outside any
    transaction."""
    app = request.app
    try:
        async with app[HASH_GATE].slot():
            return await asyncio.to_thread(app[HASHER].hash, password)
    except HashBusy:
        raise busy() from None


async def _check_password(request: web.Request, email: str, password: str) -> User:
    """The user if ``password`` is theirs. The hash runs outside any transaction (a SQLite
    transaction holds the write lock) and inside a hash slot (``HashBusy`` when none is free)."""
    app = request.app
    hasher = app[HASHER]
    async with app[DATABASE].sessionmaker.begin() as s:
        found = await accounts.find_user_by_email(s, email)
    async with app[HASH_GATE].slot():
        user = await accounts.check_password(found, password, hasher=hasher)
        rehashed = (await asyncio.to_thread(hasher.hash, password)
                    if hasher.needs_rehash(user.password_hash) else None)
    if rehashed is not None:
        async with app[DATABASE].sessionmaker.begin() as s:
            await accounts.store_password_hash(s, user.id, rehashed)
    return user


@routes.post("/api/auth/login", summary="Log in", auth=Auth.PUBLIC, body=LoginRequest,
             response=AuthResponse, errors=(401, 403, 429, 503))
async def login(request: web.Request) -> web.Response:
    """Log in with ``email`` and ``password``, or ``email`` and ``recoveryKit`` (the kit is then
    replaced: the answer carries the new one; every other session and agent token of the
    account ends; the new session has ``passwordChangeRequired`` and may only set a new
    password, read ``me`` and log out until it does). Sets the session cookie. Attempts are counted
    before the secret is checked, per e-mail address and per client address separately
    (successful ones are given back): beyond the limits, 429 with Retry-After. 503 ``busy``
    with Retry-After when the replica is already checking as many passwords as its memory
    allows."""
    body = await json_body(request, LoginRequest)
    app = request.app
    settings = app[SETTINGS]
    client_key = f"login:client:{client_bucket(request)}"
    account_key = f"login:account:{accounts.normalize_email(body.email)}"
    window = settings.login_failure_window
    async with app[DATABASE].sessionmaker.begin() as s:  # committed before any hashing
        wait = await throttle.take(s, client_key, limit=settings.login_max_failures_per_ip,
                                   window=window, now=app[CLOCK]())
        if wait is None:
            wait = await throttle.take(s, account_key, limit=settings.login_max_failures,
                                       window=window, now=app[CLOCK]())
    if wait is not None:
        raise too_many_requests(f"too many login attempts; try again in {wait} seconds", wait)
    async with audited(request, "auth.login") as note:
        note.details["email"] = body.email.strip().lower()
        note.details["method"] = "password" if body.password is not None else "recovery_kit"
        new_kit = None
        try:
            if body.password is not None:
                user = await _check_password(request, body.email,
                                             body.password.get_secret_value())
            else:
                assert body.recovery_kit is not None
                async with app[DATABASE].sessionmaker.begin() as s:
                    kit_login = await accounts.authenticate_recovery_kit(
                        s, email=body.email, kit=body.recovery_kit.get_secret_value(),
                        now=app[CLOCK]())
                    # A kit is used when the password is lost, perhaps stolen: whoever else
                    # holds a session or an agent token of this account loses it.
                    await accounts.sign_out_everywhere(s, kit_login.user.id, now=app[CLOCK]())
                app[ACCESS_CACHE].forget_user(kit_login.user.id)
                user, new_kit = kit_login.user, kit_login.recovery_kit.reveal()
        except HashBusy:
            async with app[DATABASE].sessionmaker.begin() as s:  # no guess was made
                await throttle.refund(s, client_key)
                await throttle.refund(s, account_key)
            raise busy() from None
        except InvalidCredentials:
            raise unauthorized("wrong e-mail address, password or recovery kit") from None
        async with app[DATABASE].sessionmaker.begin() as s:
            await throttle.clear(s, account_key)
            await throttle.refund(s, client_key)
        note.actor = (ActorKind.USER, user.id)
        return await _start_session(request, user, new_kit, 200,
                                    password_change_required=new_kit is not None)


@routes.post("/api/auth/logout", summary="Log out", auth=Auth.PUBLIC, status=204)
async def logout(request: web.Request) -> web.Response:
    """Revoke the current session on the server and clear the cookie. Idempotent: without a
    live session it just clears the cookie."""
    principal = principal_of(request)
    response = web.Response(status=204)
    clear_session_cookie(response, request)
    if principal.kind is not PrincipalKind.USER or principal.session_token_hash is None:
        return response
    token = (request.cookies.get(request.app[SETTINGS].cookie_name) if principal.via is Via.COOKIE
             else request.headers.get("Authorization", "").partition(" ")[2].strip())
    request.app[ACCESS_CACHE].forget_principal(principal.session_token_hash)
    async with audited(request, "auth.logout"), request.app[DATABASE].sessionmaker.begin() as s:
        await sessions.revoke_session(s, token or "", now=request.app[CLOCK]())
    return response


def _require_person(request: web.Request) -> Principal:
    """A person's session; an agent's token may not change its human's credentials (403)."""
    principal = require_user(request)
    if principal.kind is not PrincipalKind.USER:
        raise forbidden("only a person's own session may do this", code="human_session_required")
    return principal


@routes.post("/api/auth/password", summary="Change your password", auth=Auth.USER,
             body=PasswordChangeRequest, status=204, errors=(401, 403, 429, 503))
async def change_password(request: web.Request) -> web.Response:
    """Check ``currentPassword``, store ``newPassword``, and end every other session and every
    agent token of yours (the session making the change stays). 401 for a wrong current
    password, which counts against the login throttle of your address (429 beyond it). A
    session opened with the recovery kit (``passwordChangeRequired``) gives no
    ``currentPassword`` (400 for everyone else without it) and may do everything again once
    this succeeds."""
    principal = _require_person(request)
    assert principal.user_id is not None
    assert principal.email is not None
    body = await json_body(request, PasswordChangeRequest)
    if body.current_password is None and not principal.password_change_required:
        raise bad_request("give your current password", [
            FieldError("currentPassword", "required (only a session opened with the recovery "
                       "kit may leave it out)")])
    app = request.app
    settings = app[SETTINGS]
    account_key = f"login:account:{accounts.normalize_email(principal.email)}"
    async with app[DATABASE].sessionmaker.begin() as s:
        wait = await throttle.take(s, account_key, limit=settings.login_max_failures,
                                   window=settings.login_failure_window, now=app[CLOCK]())
    if wait is not None:
        raise too_many_requests(f"too many wrong passwords; try again in {wait} seconds", wait)
    async with audited(request, "auth.password.change") as note:
        note.details["method"] = "password" if body.current_password else "recovery_kit"
        try:
            if body.current_password is not None:
                await _check_password(request, principal.email,
                                      body.current_password.get_secret_value())
        except HashBusy:
            raise busy() from None
        except InvalidCredentials:
            raise unauthorized("the current password is wrong") from None
        password_hash = await hash_password(request, body.new_password.get_secret_value())
        async with app[DATABASE].sessionmaker.begin() as s:
            await accounts.store_password_hash(s, principal.user_id, password_hash)
            await accounts.sign_out_everywhere(s, principal.user_id,
                                               keep_session=principal.session_token_hash,
                                               now=app[CLOCK]())
            if principal.session_token_hash is not None:
                await sessions.clear_password_change(s, principal.session_token_hash)
            await throttle.clear(s, account_key)
        app[ACCESS_CACHE].forget_user(principal.user_id)
    return web.Response(status=204)


@routes.post("/api/auth/logout-everywhere", summary="Sign out everywhere", auth=Auth.USER,
             status=204, errors=(403,))
async def logout_everywhere(request: web.Request) -> web.Response:
    """End every session of yours, this one included, and revoke every agent you approved and
    its tokens; clears the cookie."""
    principal = _require_person(request)
    assert principal.user_id is not None
    async with audited(request, "auth.logout_everywhere"), \
            request.app[DATABASE].sessionmaker.begin() as s:
        await accounts.sign_out_everywhere(s, principal.user_id, now=request.app[CLOCK]())
    request.app[ACCESS_CACHE].forget_user(principal.user_id)
    response = web.Response(status=204)
    clear_session_cookie(response, request)
    return response


@routes.get("/api/auth/me", summary="Who am I", auth=Auth.USER, response=MeResponse)
async def me(request: web.Request) -> web.Response:
    """Identity, roles (``user``, ``platform_owner``), the exocorps the caller owns or is a member
    of, and the billing account."""
    principal = require_user(request)
    assert principal.user_id is not None
    async with request.app[DATABASE].sessionmaker.begin() as s:
        user = await accounts.get_user(s, principal.user_id)
        memberships = await registry.list_user_exocorps(s, user.id)
        invited = await members.invitations_for_email(s, user.email)
        inviters = {i.invited_by: (await accounts.get_user(s, i.invited_by)).email
                    for i, _record in invited}
        usage = await limit_usage(request.app, s, user.id)
        account = await account_view(s, user.id)
    roles = _roles(user)
    platform_owner = user.platform_owner
    if principal.kind is PrincipalKind.OPERATOR_CLIENT:  # an agent never holds the admin role
        roles, platform_owner = ["user"], False
    return json_response(MeResponse(
        user=user_view(user), roles=roles, platform_owner=platform_owner,
        authenticated_via="cookie" if principal.via is Via.COOKIE else "bearer",
        principal="operator_client" if principal.kind is PrincipalKind.OPERATOR_CLIENT
        else "user",
        memberships=[Membership(exocorp_id=m.exocorp.id, role=m.role.value)
                     for m in memberships],
        invitations=[invitation_view(i, record, inviters[i.invited_by])
                     for i, record in invited],
        account=account,
        limits=usage,
        password_change_required=principal.password_change_required))
