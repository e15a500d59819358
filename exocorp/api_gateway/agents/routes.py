"""Operator clients: how a coding agent gets access (SPEC section 7), and the user's tokens.

The two-token flow *(endpoint shapes defined here; docs/agents.md)*:

1. ``POST /api/agents/drafts`` (anonymous): the agent proposes an exocorp (slug, display name,
   draft) and gets a short-lived **draft access token** scoped to that draft, and a handoff
   link ``<public base>/connect/<handoff id>`` for its human. No user is created: agents
   cannot sign up (``POST /api/auth/signup`` with an agent's token is 403 too).
2. The human opens the link (``GET /connect/{id}``: a page that lets them sign up or log in),
   sees what the agent asks (``GET /api/agents/handoffs/{id}``) and approves it
   (``POST /api/agents/handoffs/{id}/approve``: a human session, cookie plus the same-origin
   check). Approval creates the exocorp, owned by the human, with the agent's draft saved.
   Approval needs the **pairing code** the agent got with its draft token and shows its own
   human, so whoever else opens the link cannot take the agent; five wrong codes deny it.
   The human also sets the token's **scope** there: the exocorps it reaches (the one created
   now, others named, and any it creates later) and whether it may destroy them or write
   provider credentials (neither by default).
3. The agent redeems its draft token (``POST /api/agents/redeem``, the draft token as Bearer)
   for a **trusted-client bearer token** bound to that human: returned once, stored hashed,
   valid on the registry endpoints within its scope until it expires (30 days by default;
   the human renews it) or is revoked. Before approval: 409 ``not_approved``. Expired, spent
   or revoked tokens: 401.

Users list, renew and revoke their agents' tokens with ``GET /api/auth/tokens``,
``POST /api/auth/tokens/{id}/renew`` and ``DELETE /api/auth/tokens/{id}``. Approving,
denying and managing tokens need a human's session: an agent's bearer token gets 403 there (an
agent never grants, renews or revokes access).
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from importlib import resources
from typing import Final

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from exocorp.api_gateway.access import principal_of, require_user, user_fleet
from exocorp.api_gateway.agents import page as agents_page
from exocorp.api_gateway.agents.handoffs import HANDOFF_ID, Handoff, load_handoff, request_config
from exocorp.api_gateway.agents.schemas import (
    AgentCompany,
    AgentDraftCreated,
    AgentDraftRequest,
    AgentDraftStatus,
    ApproveRequest,
    HandoffApproved,
    HandoffView,
    RedeemResponse,
    TokenList,
    TokenScope,
    TokenView,
)
from exocorp.api_gateway.audited import AuditNote, audited
from exocorp.api_gateway.client_address import client_address
from exocorp.api_gateway.errors import (
    conflict,
    forbidden,
    not_found,
    too_many_requests,
    unauthorized,
)
from exocorp.api_gateway.keys import CACHE, CLOCK, DATABASE, SETTINGS
from exocorp.api_gateway.principal import Principal, PrincipalKind
from exocorp.api_gateway.registry.routes import create_exocorp
from exocorp.api_gateway.routing import Auth, RouteTable, json_body, json_response
from exocorp.api_gateway.schemas import CreateCompanyRequest
from exocorp.api_gateway.views import company_detail, timestamp
from exocorp.store import drafts, throttle, tokens
from exocorp.store.errors import Conflict, InvalidCredentials, NotFound
from exocorp.store.schema import ActorKind, ExocorpRecord, OperatorClient, OperatorToken, Role

routes = RouteTable("agents", "Operator clients: how a coding agent gets access, with a human's "
                              "approval (two-token flow), and the user's agent tokens.")

DRAFT_TOKEN_TTL: Final = tokens.DEFAULT_DRAFT_TOKEN_TTL
"""How long an agent's request (and its draft access token) waits for a human."""
DRAFTS_PER_ADDRESS: Final = 30
"""Agent requests one client address may make per hour before 429 (counted in the database)."""
_NO_STORE = {"Cache-Control": "no-store"}

def _public_base(request: web.Request) -> str:
    configured = request.app[SETTINGS].public_base_url.rstrip("/")
    return configured or f"{request.scheme}://{request.host}"


def handoff_url(request: web.Request, handoff_id: str) -> str:
    return f"{_public_base(request)}/connect/{handoff_id}"


def require_human(request: web.Request) -> Principal:
    """A person's session (cookie, or the session token as bearer); 403 for an agent's token."""
    principal = require_user(request)
    if principal.kind is not PrincipalKind.USER:
        raise forbidden("this needs a person's session: an agent cannot approve agents or "
                        "manage tokens; ask your human", code="human_session_required")
    return principal


def require_draft_token(request: web.Request) -> Principal:
    principal = principal_of(request)
    if principal.kind is PrincipalKind.DRAFT_TOKEN:
        return principal
    if principal.authenticated:
        raise forbidden("this takes the draft access token from POST /api/agents/drafts as "
                        "Authorization: Bearer", code="draft_token_required")
    raise unauthorized(principal.credential_error or
                       "send the draft access token as Authorization: Bearer <token>")


@contextlib.asynccontextmanager
async def _human_action(request: web.Request, action: str, target_key: str,
                        ) -> AsyncIterator[tuple[AuditNote, Principal, str]]:
    """Audit ``action`` on the path's ``{id}`` (noted as ``target_key``, on refusals too), which
    only a person may take: yields the audit note, the person and the id."""
    target = request.match_info["id"]
    async with audited(request, action) as note:
        note.details[target_key] = target
        yield note, require_human(request), target


# -- 1. the agent's request ----------------------------------------------------------------------


@routes.post("/api/agents/drafts", summary="Ask for access (an agent)", auth=Auth.PUBLIC,
             body=AgentDraftRequest, response=AgentDraftCreated, status=201, errors=(429,))
async def create_agent_draft(request: web.Request) -> web.Response:
    """An agent proposes an exocorp (``company``: slug and display name) with its ``draft``,
    and gets a draft access token (shown once; expires in an hour; scoped to this draft) and a
    ``handoffUrl`` for its human to open. Nothing else is created: no user (agents cannot sign
    up) and no exocorp until a human approves. 429 with Retry-After when one address asks too
    often."""
    body = await json_body(request, AgentDraftRequest)
    async with request.app[DATABASE].sessionmaker.begin() as s:
        wait = await throttle.take(s, f"agent-drafts:client:{client_address(request)}",
                                   limit=DRAFTS_PER_ADDRESS, window=timedelta(hours=1),
                                   now=request.app[CLOCK]())
    if wait is not None:
        raise too_many_requests(f"too many agent requests; try again in {wait} seconds", wait)
    async with audited(request, "agent.draft.create") as note:
        note.details.update({"agentName": body.agent_name, "slug": body.company.slug})
        app = request.app
        async with app[DATABASE].sessionmaker.begin() as s:
            draft = await drafts.create_draft(
                s, config=request_config(body.company, body.draft), now=app[CLOCK]())
            issued = await tokens.register_client(s, name=body.agent_name, draft_id=draft.id,
                                                  ttl=DRAFT_TOKEN_TTL, now=app[CLOCK]())
        note.actor = (ActorKind.OPERATOR_CLIENT, issued.client.id)
        assert issued.token.expires_at is not None
        created = AgentDraftCreated(
            draft_id=draft.id, handoff_id=issued.client.id,
            handoff_url=handoff_url(request, issued.client.id),
            draft_token=issued.secret.reveal(),
            pairing_code=issued.pairing_code.reveal() if issued.pairing_code else "",
            expires_at=timestamp(issued.token.expires_at) or "")
        return json_response(created, status=201, headers=_NO_STORE)


@routes.get("/api/agents/draft", summary="Where my request stands (an agent)",
            auth=Auth.DRAFT_TOKEN, response=AgentDraftStatus)
async def get_agent_draft(request: web.Request) -> web.Response:
    """The agent's own request, read with its draft access token: ``status`` (``pending``,
    ``approved``: redeem now, ``denied``), the proposed or created exocorp and the draft. Poll
    it (every few seconds at most) while your human approves. After redeeming, the draft token
    is spent (401): use your bearer token on the registry instead."""
    principal = require_draft_token(request)
    assert principal.client_id is not None
    async with request.app[DATABASE].sessionmaker.begin() as s:
        handoff = await load_handoff(s, principal.client_id)
    view = handoff.view(request.app[CLOCK](), None)
    return json_response(AgentDraftStatus(**dict(view),
                                          handoff_url=handoff_url(request, handoff.id)))


# -- 2. the human's approval ---------------------------------------------------------------------


@routes.get("/api/agents/handoffs/{id}", summary="What an agent asks for",
            auth=Auth.USER, response=HandoffView, errors=(404,),
            description="The agent's name, the exocorp it proposes (slug and display name), its "
                        "draft, and where the request stands. Needs a person's session (an "
                        "agent's bearer token: 403 ``human_session_required``). 404 for an "
                        "unknown link.")
async def get_handoff(request: web.Request) -> web.Response:
    principal = require_human(request)
    async with request.app[DATABASE].sessionmaker.begin() as s:
        handoff = await load_handoff(s, request.match_info["id"])
    return json_response(handoff.view(request.app[CLOCK](), principal.user_id))


def _refuse_unless_pending(handoff: Handoff, status: str, user_id: str) -> None:
    if status == "pending":
        return
    if status == "expired":
        raise conflict("this request expired before anyone approved it; ask the agent to "
                       "start again", code="handoff_expired")
    if status == "denied":
        raise conflict("this request was denied or revoked", code="handoff_denied")
    if handoff.client.approved_by != user_id:
        raise conflict("another account approved this agent already", code="handoff_taken")


@routes.post("/api/agents/handoffs/{id}/approve", summary="Approve an agent",
             auth=Auth.USER, body=ApproveRequest, response=HandoffApproved,
             status=201, other_successes=(200,), errors=(403, 404, 409),
             description="Approve the agent with the ``pairingCode`` it shows you (403 "
                         "``pairing_code_mismatch`` otherwise; the fifth wrong code denies the "
                         "request: 409 ``handoff_denied``). Its proposed exocorp is created, "
                         "owned by you, with the agent's draft saved (optionally under another "
                         "``slug`` or ``displayName``: 409 ``slug_taken`` when the slug is "
                         "reserved), and the agent may redeem its bearer token, which acts for "
                         "you on that exocorp, the ``companies`` you name (yours or ones you "
                         "are a member of: 404 otherwise) and those it creates, until it "
                         "expires or you revoke it. It may destroy them only with "
                         "``allowDestroy``, and write your provider credentials only with "
                         "``allowProviderSecrets``. Needs a person's session from this site (an "
                         "agent's bearer token: 403). Approving again: 200 with the same "
                         "exocorp. 409 when another account approved it, or it expired or was "
                         "denied.")
async def approve_handoff(request: web.Request) -> web.Response:
    app = request.app
    async with _human_action(request, "agent.approve", "clientId") as (note, principal, handoff_id):
        assert principal.user_id is not None
        async with app[DATABASE].sessionmaker.begin() as s:
            handoff = await load_handoff(s, handoff_id)
        body = await json_body(request, ApproveRequest)
        note.details["agentName"] = handoff.client.name
        status = handoff.status(app[CLOCK]())
        _refuse_unless_pending(handoff, status, principal.user_id)
        if status == "pending":
            await _check_pairing_code(request, handoff_id, body.pairing_code)
        if status != "pending" and handoff.record is not None:  # approved by this user before
            note.exocorp_id = handoff.record.id
            exocorp = app[CACHE].exocorp(handoff.record.id)
            if exocorp is None:
                raise not_found(f"exocorp {handoff.record.id!r} not found")
            return json_response(HandoffApproved(
                handoff_id=handoff_id, status=status,
                company=company_detail(handoff.record, Role.OWNER, exocorp)))
        proposed = handoff.company()
        wanted = AgentCompany(slug=body.slug or proposed.slug,
                              display_name=body.display_name or proposed.display_name)
        note.exocorp_id = wanted.slug
        reachable = {row.exocorp.id for row in await user_fleet(request, principal.user_id)
                     if row.exocorp.destroyed_at is None}
        for other in body.companies:
            if other not in reachable:
                raise not_found(f"exocorp {other!r} not found")
        scope = tokens.AgentScope(frozenset({wanted.slug, *body.companies}),
                                  may_destroy=body.allow_destroy,
                                  may_write_secrets=body.allow_provider_secrets)
        note.details["scope"] = _scope_view(scope).to_wire()
        record = await _create_for_agent(request, principal.user_id, handoff, wanted, scope)
        exocorp = app[CACHE].exocorp(record.id)
        assert exocorp is not None  # create_exocorp fed it to the cache
        return json_response(HandoffApproved(
            handoff_id=handoff_id, status="approved",
            company=company_detail(record, Role.OWNER, exocorp)), status=201,
            headers={"Location": f"/api/registry/companies/{record.id}"})


async def _check_pairing_code(request: web.Request, handoff_id: str, code: str) -> None:
    """403 unless ``code`` is the agent's; counted in a transaction of its own, so a refused
    approval still counts, and the last allowed wrong code denies the request."""
    app = request.app
    async with app[DATABASE].sessionmaker.begin() as s:
        left = await tokens.check_pairing_code(s, handoff_id, code, now=app[CLOCK]())
    if left is None:
        return
    if left == 0:
        raise conflict("too many wrong pairing codes: this request is denied; ask the agent to "
                       "start again", code="handoff_denied")
    raise forbidden(f"this is not the pairing code your agent shows; {left} more wrong "
                    f"code(s) deny the request", code="pairing_code_mismatch")


def _scope_view(scope: tokens.AgentScope) -> TokenScope:
    return TokenScope(companies=sorted(scope.exocorps), destroy=scope.may_destroy,
                      provider_secrets=scope.may_write_secrets)


async def _create_for_agent(request: web.Request, user_id: str, handoff: Handoff,
                            company: AgentCompany, scope: tokens.AgentScope) -> ExocorpRecord:
    """Create the exocorp and, in the same transaction, approve the client and make its draft
    the exocorp's draft (all or nothing)."""
    app = request.app
    draft = handoff.proposed_draft()

    async def attach(s: AsyncSession) -> None:
        try:
            await tokens.approve_client(s, handoff.id, user_id=user_id, now=app[CLOCK](),
                                        scope=scope)
        except Conflict:
            raise conflict("another account approved this agent meanwhile",
                           code="handoff_taken") from None
        saved = await drafts.get_draft(s, handoff.draft.id)
        if saved.exocorp_id is not None or saved.version != handoff.draft.version:
            raise conflict("the agent's request changed meanwhile; reload it",
                           code="handoff_changed")
        await drafts.save_draft(s, saved.id, config=draft.to_wire(),
                                expected_version=saved.version, now=app[CLOCK]())
        await drafts.bind_draft(s, saved.id, company.slug)

    async with audited(request, "company.create", exocorp_id=company.slug) as note:
        note.details.update({"via": "agent.approve", "clientId": handoff.id})
        return await create_exocorp(
            request, user_id,
            CreateCompanyRequest(slug=company.slug, display_name=company.display_name),
            attach=attach)


@routes.post("/api/agents/handoffs/{id}/deny", summary="Deny (or revoke) an agent",
             auth=Auth.USER, response=HandoffView, errors=(404, 409),
             description="Refuse a pending request (anyone holding the link, logged in), or "
                         "revoke an agent you approved: its draft and bearer tokens stop working "
                         "(401). The exocorp it was created with stays yours. Needs a person's "
                         "session (an agent's bearer token: 403).")
async def deny_handoff(request: web.Request) -> web.Response:
    app = request.app
    async with _human_action(request, "agent.deny", "clientId") as (note, principal, handoff_id):
        async with app[DATABASE].sessionmaker.begin() as s:
            handoff = await load_handoff(s, handoff_id)
            status = handoff.status(app[CLOCK]())
            if status in ("approved", "redeemed") and \
                    handoff.client.approved_by != principal.user_id:
                raise conflict("another account approved this agent; only they can revoke it",
                               code="handoff_taken")
            note.exocorp_id = handoff.record.id if handoff.record else None
            await tokens.revoke_client(s, handoff_id, now=app[CLOCK]())
            handoff = await load_handoff(s, handoff_id)
        return json_response(handoff.view(app[CLOCK](), principal.user_id))


# -- 3. the agent's bearer token -----------------------------------------------------------------


@routes.post("/api/agents/redeem", summary="Redeem the draft token (an agent)",
             auth=Auth.DRAFT_TOKEN, response=RedeemResponse, status=201, errors=(409,))
async def redeem(request: web.Request) -> web.Response:
    """Trade the approved draft access token (as ``Authorization: Bearer``), once, for a
    trusted-client bearer token bound to the human who approved you: shown only in this answer,
    stored hashed, valid on the registry endpoints within its ``scope`` until ``expiresAt``
    (your human may renew it) or until revoked. 409 ``not_approved`` while
    no human has approved you (the draft token stays usable: retry later); 401 for an expired,
    spent or revoked token."""
    app = request.app
    async with audited(request, "agent.redeem") as note:
        principal = require_draft_token(request)
        secret = request.headers.get("Authorization", "").partition(" ")[2].strip()
        try:
            async with app[DATABASE].sessionmaker.begin() as s:
                issued = await tokens.redeem_draft_token(
                    s, secret, bearer_ttl=app[SETTINGS].agent_token_ttl, now=app[CLOCK]())
                draft = await drafts.get_draft(s, principal.draft_id or "")
                scope = await tokens.client_scope(s, issued.client.id)
        except Conflict:
            raise conflict("no human has approved this agent yet; give them the handoff link "
                           "and retry in a while", code="not_approved") from None
        except (InvalidCredentials, NotFound):
            raise unauthorized("the draft access token is unknown, expired, spent or "
                               "revoked") from None
        note.exocorp_id = draft.exocorp_id
        note.details["tokenId"] = issued.token.id
        assert issued.token.user_id is not None
        return json_response(RedeemResponse(
            token=issued.secret.reveal(), token_id=issued.token.id, client_id=issued.client.id,
            user_id=issued.token.user_id, company_id=draft.exocorp_id,
            expires_at=timestamp(issued.token.expires_at) or "", scope=_scope_view(scope)),
            status=201, headers=_NO_STORE)


# -- the user's agent tokens ---------------------------------------------------------------------


def _token_view(token: OperatorToken, client: OperatorClient | None,
                now: datetime, scope: tokens.AgentScope) -> TokenView:
    status = ("revoked" if token.revoked_at is not None or (client and client.revoked_at)
              else "expired" if token.expires_at is not None and now >= token.expires_at
              else "active")
    return TokenView(id=token.id, client_id=token.client_id,
                     agent_name=client.name if client else "", status=status,
                     created_at=timestamp(token.created_at) or "",
                     last_used_at=timestamp(token.last_used_at),
                     expires_at=timestamp(token.expires_at),
                     revoked_at=timestamp(token.revoked_at or (
                         client.revoked_at if client else None)),
                     scope=_scope_view(scope))


@routes.get("/api/auth/tokens", summary="Your agents' tokens", auth=Auth.USER,
            response=TokenList,
            description="The bearer tokens of the agents you approved: agent name, status "
                        "(``active``, ``revoked``, ``expired``), created, last used, expiry, "
                        "and ``scope`` (the exocorps it reaches, whether it may destroy them "
                        "or write your provider credentials). Never the token itself. Needs a "
                        "person's session (an agent's bearer token: 403).")
async def list_tokens(request: web.Request) -> web.Response:
    principal = require_human(request)
    assert principal.user_id is not None
    now = request.app[CLOCK]()
    async with request.app[DATABASE].sessionmaker.begin() as s:
        owned = await tokens.list_user_tokens(s, principal.user_id)
        clients = await tokens.clients_by_id(s, {t.client_id for t in owned})
        scopes = {cid: await tokens.client_scope(s, cid) for cid in clients}
    return json_response(TokenList(tokens=[
        _token_view(t, clients.get(t.client_id), now,
                    scopes.get(t.client_id) or tokens.AgentScope(frozenset()))
        for t in owned]))


async def _own_token(s: AsyncSession, principal: Principal, token_id: str,
                     note: AuditNote) -> OperatorToken:
    """The caller's token named in the path, its client noted in the audit event; 404 for a
    token that is not theirs."""
    assert principal.user_id is not None
    token = await tokens.user_token(s, principal.user_id, token_id)
    if token is None:
        raise not_found(f"token {token_id!r} not found")
    note.details["clientId"] = token.client_id
    return token


@routes.delete("/api/auth/tokens/{id}", summary="Revoke an agent's token", auth=Auth.USER,
               status=204, errors=(404,),
               description="The agent's bearer token stops working at once (401). Idempotent. "
                           "404 for a token that is not yours. Needs a person's session (an "
                           "agent's bearer token: 403).")
async def revoke_token(request: web.Request) -> web.Response:
    app = request.app
    async with _human_action(request, "token.revoke", "tokenId") as (note, principal, token_id):
        async with app[DATABASE].sessionmaker.begin() as s:
            await _own_token(s, principal, token_id, note)
            await tokens.revoke_token(s, token_id, now=app[CLOCK]())
        return web.Response(status=204)


@routes.post("/api/auth/tokens/{id}/renew", summary="Renew an agent's token", auth=Auth.USER,
             response=TokenView, errors=(404, 409),
             description="The token (expired or not) works again for the configured lifetime "
                         "from now (30 days by default), with the same scope. 409 "
                         "``token_revoked`` for a revoked token. 404 for a token that is not "
                         "yours. Needs a person's session (an agent's bearer token: 403).")
async def renew_token(request: web.Request) -> web.Response:
    app = request.app
    async with _human_action(request, "token.renew", "tokenId") as (note, principal, token_id):
        now = app[CLOCK]()
        async with app[DATABASE].sessionmaker.begin() as s:
            await _own_token(s, principal, token_id, note)
            try:
                token = await tokens.renew_token(s, token_id, ttl=app[SETTINGS].agent_token_ttl,
                                                 now=now)
            except Conflict:
                raise conflict("this token was revoked; approve the agent again",
                               code="token_revoked") from None
            client = await tokens.get_client(s, token.client_id)
            view = _token_view(token, client, now, await tokens.client_scope(s, client.id))
        note.details["expiresAt"] = view.expires_at
        return json_response(view)


# -- documents for agents and the handoff page ---------------------------------------------------


def _skill(name: str) -> str:
    return (resources.files("exocorp.api_gateway") / "skills" / name).read_text("utf-8")


def markdown_response(text: str) -> web.Response:
    return web.Response(text=text, content_type="text/markdown", charset="utf-8",
                        headers={"Cache-Control": "public, max-age=300"})


@routes.get("/SKILL.md", summary="Public routing skill for agents", auth=Auth.PUBLIC,
            content_type="text/markdown")
async def skill(request: web.Request) -> web.Response:
    """What this platform is and how an agent gets access (Markdown, written for agents)."""
    return markdown_response(_skill("SKILL.md"))


@routes.get("/skills/connect-agent.md", summary="Post-signup guidance for agents",
            auth=Auth.PUBLIC, content_type="text/markdown")
async def connect_agent_skill(request: web.Request) -> web.Response:
    """The two-token flow step by step, and what to do with the bearer token afterwards."""
    return markdown_response(_skill("connect-agent.md"))


@routes.get("/connect/{id}", summary="Handoff page (for the human)", auth=Auth.PUBLIC,
            content_type="text/html", errors=(404,))
async def connect_page(request: web.Request) -> web.Response:
    """The page an agent's handoff link opens: sign up or log in, see what the agent asks, and
    approve or deny it. It calls the JSON API from this origin (no third-party script)."""
    handoff_id = request.match_info["id"]
    if not HANDOFF_ID.fullmatch(handoff_id):
        raise not_found("no such handoff link; ask the agent for a new one")
    nonce = secrets.token_urlsafe(16)
    page = agents_page.render(handoff_id, nonce,
                              request.app[SETTINGS].agent_token_ttl.days)
    return web.Response(text=page, content_type="text/html", headers={
        "Content-Security-Policy": f"default-src 'none'; script-src 'nonce-{nonce}'; "
                                   "style-src 'unsafe-inline'; connect-src 'self'; "
                                   "form-action 'none'; frame-ancestors 'none'; base-uri 'none'",
        "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})
