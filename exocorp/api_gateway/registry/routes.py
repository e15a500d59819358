"""The registry: the caller's own exocorps (create, read, drafts, bindings, update handshake)
and the owner's lifecycle actions, each of which becomes a spec change (see ``operations``)."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

import yaml
from aiohttp import web
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from exocorp import names, shards
from exocorp.api_gateway.access import (
    ExocorpAccess,
    exocorp_access,
    in_agent_scope,
    owner_required,
    require_agent_grant,
    require_user,
    user_fleet,
)
from exocorp.api_gateway.audited import audited
from exocorp.api_gateway.availability import company_actions_json, with_actions
from exocorp.api_gateway.errors import (
    FieldError,
    Problem,
    bad_request,
    conflict,
    field_errors,
    not_found,
)
from exocorp.api_gateway.idempotency import claim_of, complete_in, crash_point
from exocorp.api_gateway.keys import ACCESS_CACHE, CACHE, CLOCK, DATABASE, KUBE, SETTINGS
from exocorp.api_gateway.operations import run_action
from exocorp.api_gateway.principal import Principal
from exocorp.api_gateway.routing import (
    Auth,
    RouteTable,
    json_body,
    json_response,
    query_params,
    read_json_object,
)
from exocorp.api_gateway.schemas import (
    ActionAccepted,
    ActionBody,
    BindingsResponse,
    BindingView,
    CompanyDetail,
    CompanyList,
    CompanySummary,
    CreateCompanyRequest,
    DeletedEvent,
    DestroyBody,
    DestroyQuery,
    DraftView,
    HandshakeQuery,
    ManifestQuery,
    ManifestView,
    MyCompaniesQuery,
    PauseBody,
    RollbackBody,
    SaveDraftRequest,
    UpdateBody,
)
from exocorp.api_gateway.streams import DetailEvents, Event, deleted, serve_stream
from exocorp.api_gateway.views import (
    company_detail,
    company_detail_json,
    company_summary_json,
    timestamp,
)
from exocorp.api_gateway.watch_cache import WatchCache
from exocorp.billing.enforcement import billing_state
from exocorp.k8s import ApiError, Obj
from exocorp.k8s import resources as r
from exocorp.lifecycle import (
    ProviderNeed,
    evaluate_handshake,
    perform,
    preview_manifest,
    resolve_bindings,
)
from exocorp.model import (
    Action,
    ActionRequest,
    DomainKind,
    Draft,
    Exocorp,
    ExocorpReleaseSpec,
    Phase,
    UpdateHandshake,
    canonical_domains,
    find_release,
    newest_release,
    phase_of,
)
from exocorp.runtime.settings import RuntimeSettings
from exocorp.store import drafts, limits, registry, tokens
from exocorp.store.errors import Conflict, NotFound
from exocorp.store.registry import MemberExocorp
from exocorp.store.schema import ExocorpRecord, Role

log = logging.getLogger(__name__)

routes = RouteTable("registry", "Your own exocorps: create, read, configure and drive them.")

RESERVED_SLUGS = frozenset({"admin", "api", "app", "apps", "auth", "docs", "exocorp", "exocorps",
                            "internal", "platform", "portal", "status", "system", "www"})
"""Slugs that would make confusing domains; refused with 409 *(defined here)*."""

_COMPANY = "/api/registry/companies/{id}"


def _cached(cache: WatchCache, record: ExocorpRecord) -> Exocorp:
    exocorp = cache.exocorp(record.id)
    if exocorp is None:
        raise not_found(f"exocorp {record.id!r} not found")
    return exocorp


# -- fleet and creation --------------------------------------------------------------------------


@routes.get("/api/registry/my-companies", summary="Your fleet", auth=Auth.USER,
            query=MyCompaniesQuery, response=CompanyList)
async def my_companies(request: web.Request) -> web.Response:
    """Every exocorp the caller owns or is a member of, with its current phase (from the watch
    cache: no API-server round trip), oldest first; ``total`` counts them. Destroyed ones
    disappear once their runtime is gone. ``?q=`` (in the slug or display name,
    case-insensitive) and ``?phase=`` narrow the list; ``?limit=`` pages it (pass
    ``nextCursor`` back as ``cursor``: exocorps created meanwhile never shift a page)."""
    principal = require_user(request)
    assert principal.user_id is not None
    query = query_params(request, MyCompaniesQuery)
    after = _fleet_position(query.cursor) if query.cursor is not None else None
    needle = query.q.casefold() if query.q is not None else None
    rows = await user_fleet(request, principal.user_id)
    cache = request.app[CACHE]
    matching = []
    for row in rows:
        entry = cache.exocorp_entry(row.exocorp.id)
        if entry is None or not in_agent_scope(principal, row.exocorp.id):
            continue
        if query.phase is not None and phase_of(entry.model) is not query.phase:
            continue
        if needle is not None and needle not in row.exocorp.slug.casefold() \
                and needle not in entry.model.spec.display_name.casefold():
            continue
        matching.append((row, entry))
    page = [(row, entry) for row, entry in matching
            if after is None or _position(row.exocorp) > after]
    more = query.limit is not None and len(page) > query.limit
    page = page[:query.limit] if query.limit is not None else page
    parts = [company_summary_json(row.exocorp, row.role, entry) for row, entry in page]
    tail = b',"nextCursor":' + json.dumps(_fleet_cursor(page[-1][0].exocorp)).encode() \
        if more else b""
    # CompanyList, assembled from renderings memoised per object version.
    return web.Response(body=b'{"companies":[' + b",".join(parts) + b'],"total":'
                        + str(len(matching)).encode() + tail + b"}",
                        content_type="application/json")


def _position(record: ExocorpRecord) -> tuple[str, str]:
    """Where an exocorp sits in the fleet's order (``list_user_exocorps``: creation, id)."""
    return record.created_at.isoformat(), record.id


def _fleet_cursor(record: ExocorpRecord) -> str:
    created, exocorp_id = _position(record)
    return base64.urlsafe_b64encode(f"{created}|{exocorp_id}".encode()).decode()


def _fleet_position(cursor: str) -> tuple[str, str]:
    try:
        created, _, exocorp_id = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        datetime.fromisoformat(created)
    except ValueError:
        created = exocorp_id = ""
    if not created or not exocorp_id:
        raise bad_request("the cursor is not one this API gave out",
                          [FieldError("cursor", "pass back a nextCursor unchanged")])
    return created, exocorp_id


def _exocorp_object(body: CreateCompanyRequest, owner: str, request_key: str | None,
                    now: datetime, shard_names: Sequence[str]) -> Obj:
    metadata: dict[str, Any] = {"name": body.slug, "labels": {names.LABEL_PART_OF: "exocorp"}}
    shard = shards.assign(body.slug, shard_names)
    if shard is not None:  # the operator shard that reconciles it (docs/scaling.md)
        metadata["labels"][names.LABEL_SHARD] = shard
    if request_key is not None:
        entry = {"key": request_key, "action": "company.create", "at": now.isoformat()}
        metadata["annotations"] = {
            names.ANNOTATION_REQUEST_KEYS: perform.request_keys_annotation({}, entry)}
    return {
        "apiVersion": names.API_VERSION,
        "kind": names.EXOCORP_KIND,
        "metadata": metadata,
        "spec": {"owner": owner, "displayName": body.display_name, "slug": body.slug},
    }


async def _made_by(request: web.Request, slug: str, owner_user_id: str,
                   request_key: str | None) -> Obj | None:
    """The Exocorp ``slug`` if this very request (its Idempotency-Key) created it for this
    owner: a retry of a create whose gateway died before answering."""
    if request_key is None:
        return None
    existing = await request.app[KUBE].get_or_none(r.EXOCORPS, slug)
    if existing is None or perform.applied_request(existing, request_key) is None \
            or (existing.get("spec") or {}).get("owner") != owner_user_id:
        return None
    return existing


@routes.post("/api/registry/companies", summary="Create an exocorp", auth=Auth.USER,
             body=CreateCompanyRequest, response=CompanyDetail, status=201, errors=(409,))
async def create_company(request: web.Request) -> web.Response:
    """A new exocorp in phase Draft, owned by the caller. Its slug is its id; the slug and its
    two canonical domains are reserved for good (409 ``slug_taken`` when already reserved). An
    optional ``draft`` is saved with it. If the Kubernetes object cannot be created, nothing is
    reserved."""
    principal = require_user(request)
    assert principal.user_id is not None
    async with audited(request, "company.create") as note:
        body = await json_body(request, CreateCompanyRequest)
        note.exocorp_id = body.slug
        record = await create_exocorp(request, principal.user_id, body,
                                      attach=_agent_grant(principal, body.slug))
        detail = company_detail(record, Role.OWNER, _cached(request.app[CACHE], record))
        note.details["portalDomain"] = record.portal_domain
        note.details["appDomain"] = record.app_domain
        return json_response(detail, status=201,
                             headers={"Location": f"/api/registry/companies/{body.slug}"})


def _agent_grant(principal: Principal, slug: str,
                 ) -> Callable[[AsyncSession], Awaitable[None]] | None:
    """An exocorp an agent creates with its token joins the token's scope."""
    if principal.agent_scope is None or principal.client_id is None:
        return None
    client_id = principal.client_id

    async def grant(s: AsyncSession) -> None:
        await tokens.grant_exocorp(s, client_id, slug)
    return grant


async def create_exocorp(request: web.Request, owner_user_id: str, body: CreateCompanyRequest,
                         *, attach: Callable[[AsyncSession], Awaitable[None]] | None = None,
                         ) -> ExocorpRecord:
    """Reserve the slug and domains and create the Exocorp object, all or nothing (409
    ``slug_taken``). ``attach(session)`` runs in the reservation's transaction (the agents API
    binds its draft there)."""
    app = request.app
    settings = app[SETTINGS]
    taken = [FieldError("slug", "already reserved")]
    if body.slug in RESERVED_SLUGS:
        raise conflict(f"slug {body.slug!r} is reserved by the platform; choose another",
                       code="slug_taken", errors=taken)
    try:
        domains = canonical_domains(body.slug, portal_base=settings.portal_base_domain,
                                    app_base=settings.app_base_domain)
    except ValueError as error:
        raise bad_request(str(error), [FieldError("slug", str(error))]) from None
    claim = claim_of(request)
    request_key = claim.digest if claim else None
    created: Obj | None = None
    adopted = False
    try:
        async with app[DATABASE].sessionmaker.begin() as s:
            await limits.check_new_exocorp(s, owner_user_id)
            record = await registry.create_exocorp(
                s, exocorp_id=body.slug, slug=body.slug, owner_user_id=owner_user_id,
                display_name=body.display_name, portal_domain=domains[DomainKind.PORTAL],
                app_domain=domains[DomainKind.APP], now=app[CLOCK]())
            if body.draft is not None:
                await drafts.create_draft(s, config=body.draft.to_wire(),
                                          exocorp_id=body.slug, now=app[CLOCK]())
            if attach is not None:
                await attach(s)
            # The reservation commits only if the object exists: a failure rolls it back.
            # With an Idempotency-Key the object carries its digest: the object is this
            # request's commit point.
            try:
                created = await app[KUBE].create(r.EXOCORPS, _exocorp_object(
                    body, owner_user_id, request_key, app[CLOCK](), app[SETTINGS].shards))
            except ApiError as error:
                if not error.conflict:
                    raise
                # Made by this very request before its gateway died (the row never
                # committed): adopt it instead of refusing the retry.
                created = await _made_by(request, body.slug, owner_user_id, request_key)
                adopted = created is not None
                if created is None:
                    raise conflict(f"slug {body.slug!r} is already taken", code="slug_taken",
                                   errors=taken) from None
            crash_point(request)
    except Conflict as error:
        # The row exists. If this request made it (its gateway died after the commit, before
        # answering), this is a retry: answer the original result.
        existing = await _made_by(request, body.slug, owner_user_id, request_key)
        if existing is None:
            if isinstance(error, limits.LimitExceeded):
                raise conflict(str(error), code="limit_exceeded") from None
            raise conflict(str(error), code="slug_taken", errors=taken) from None
        async with app[DATABASE].sessionmaker.begin() as s:
            record = await registry.get_exocorp(s, body.slug)
        created = existing
    except BaseException:
        if created is not None and not adopted:  # the commit failed after the object was made
            await _delete_quietly(app[KUBE], body.slug)
        raise
    app[CACHE].observe_exocorp(created)
    app[ACCESS_CACHE].forget_exocorp(body.slug)
    return record


async def _delete_quietly(kube: Any, name: str) -> None:
    try:
        await kube.delete(r.EXOCORPS, name)
    except Exception:
        log.exception("could not delete Exocorp %s after its reservation failed", name)


@routes.get(_COMPANY, summary="One exocorp", auth=Auth.MEMBER, response=CompanyDetail)
async def get_company(request: web.Request) -> web.Response:
    """Detail and current status of one exocorp: phase, conditions, components, domains, revision
    history (the "jobs"), configuration and bindings. Served from the watch cache."""
    access = await exocorp_access(request, request.match_info["id"])
    body = await company_detail_body(request.app, access)
    if body is None:
        raise not_found(f"exocorp {access.exocorp_id!r} not found")
    return web.Response(body=body, content_type="application/json")


async def company_detail_body(app: web.Application, access: ExocorpAccess) -> bytes | None:
    """The JSON of ``GET /api/registry/companies/{id}`` (also each event of its stream), or None
    when the exocorp is not (or no longer) in the watch cache."""
    entry = app[CACHE].exocorp_entry(access.exocorp_id)
    if entry is None:
        return None
    forbidden = {}
    try:  # the 403s destroy gets before it is planned, in the order _act checks them
        if access.role is not Role.OWNER:
            raise owner_required(access.exocorp_id)
        require_agent_grant(access.principal, "destroy")
    except Problem as refusal:
        forbidden[Action.DESTROY] = refusal
    actions = await company_actions_json(app, entry, access.record.owner_user_id,
                                         actor=access.principal.actor, forbidden=forbidden)
    return with_actions(company_detail_json(access.record, access.role, entry), actions)


# -- live streams --------------------------------------------------------------------------------

_STREAM_ERRORS = (429,)


@routes.get(_COMPANY + "/events", summary="Live changes of one exocorp", auth=Auth.MEMBER,
            content_type="text/event-stream", errors=_STREAM_ERRORS,
            events=(("company", CompanyDetail), ("deleted", DeletedEvent)))
async def company_events(request: web.Request) -> web.StreamResponse:
    """Server-sent events (``text/event-stream``), fed by the watch cache: ``retry: 2000``,
    then an ``event: company`` whose ``data`` is the JSON of ``GET /api/registry/companies/{id}``
    (``CompanyDetail``, with ``actions``), then another each time the exocorp changes, and
    ``event: deleted`` (``{"id"}``) when it is gone, which ends the stream. A ``: keepalive``
    comment comes every 15 s without changes. Authorised like the GET (404 for a stranger); a
    logout or lost membership ends the stream. 429 ``too_many_streams`` beyond the open streams
    allowed per session. On reconnect (EventSource does it by itself) the first event is the
    current state, so nothing is missed across a gateway restart."""
    exocorp_id = request.match_info["id"]
    app = request.app
    access: list[ExocorpAccess] = []

    async def authorise() -> None:
        granted = await exocorp_access(request, exocorp_id)
        if app[CACHE].exocorp_entry(exocorp_id) is None and not access:
            raise not_found(f"exocorp {exocorp_id!r} not found")
        access[:] = [granted]

    def farewell() -> list[Event]:
        return [deleted(exocorp_id)] if app[CACHE].exocorp_entry(exocorp_id) is None else []

    events = DetailEvents(exocorp_id, lambda: company_detail_body(app, access[0]))
    return await serve_stream(request, key=exocorp_id, authorise=authorise, first=events.first,
                              render=events.render, farewell=farewell)


@routes.get("/api/registry/my-companies/events", summary="Live changes of your fleet",
            auth=Auth.USER, content_type="text/event-stream", errors=_STREAM_ERRORS,
            events=(("company", CompanySummary), ("deleted", DeletedEvent)))
async def my_companies_events(request: web.Request) -> web.StreamResponse:
    """Server-sent events for every exocorp the caller owns or is a member of: ``retry: 2000``,
    then ``event: company`` with one ``my-companies`` item (``CompanySummary``) each time one of
    them is created or changes, ``event: deleted`` (``{"id"}``) when one is gone; ``: keepalive``
    every 15 s. Open the stream first, then list ``GET /api/registry/my-companies``, so no change
    falls between the two. 429 ``too_many_streams`` beyond the open streams allowed per
    session."""
    app = request.app
    cache = app[CACHE]
    fleet: dict[str, MemberExocorp] = {}
    sent: dict[str, bytes] = {}

    async def authorise() -> None:
        principal = require_user(request)
        assert principal.user_id is not None
        rows = await user_fleet(request, principal.user_id)
        fleet.clear()
        fleet.update((row.exocorp.id, row) for row in rows
                     if in_agent_scope(principal, row.exocorp.id))

    async def render(key: str) -> tuple[list[Event], bool]:
        row = fleet.get(key)
        if row is None:
            return [], False  # not the caller's (a new one of theirs is in the refreshed fleet)
        entry = cache.exocorp_entry(key)
        if entry is None:
            if sent.pop(key, None) is None:
                return [], False
            return [deleted(key)], False
        body = company_summary_json(row.exocorp, row.role, entry)
        if sent.get(key) == body:
            return [], False
        sent[key] = body
        return [("company", body)], False

    async def first() -> list[Event]:
        for row in fleet.values():  # what the caller has now: changes are told against it
            entry = cache.exocorp_entry(row.exocorp.id)
            if entry is not None:
                sent[row.exocorp.id] = company_summary_json(row.exocorp, row.role, entry)
        return []

    return await serve_stream(request, key=None, authorise=authorise, first=first,
                              render=render)


# -- drafts --------------------------------------------------------------------------------------


def _draft_view(exocorp_id: str, row: Any) -> DraftView:
    return DraftView(exocorp_id=exocorp_id, version=row.version,
                     updated_at=timestamp(row.updated_at) or "",
                     draft=Draft.model_validate(row.config))


@routes.get(_COMPANY + "/draft", summary="Read the draft", auth=Auth.MEMBER, response=DraftView)
async def get_draft(request: web.Request) -> web.Response:
    """The saved draft and its version (404 ``draft_missing`` before the first save)."""
    access = await exocorp_access(request, request.match_info["id"])
    async with request.app[DATABASE].sessionmaker.begin() as s:
        try:
            row = await drafts.get_exocorp_draft(s, access.exocorp_id)
        except NotFound:
            raise Problem(404, "draft_missing",
                          f"exocorp {access.exocorp_id!r} has no draft yet; save one") from None
        return json_response(_draft_view(access.exocorp_id, row))


@routes.post(_COMPANY + "/draft", summary="Save the draft", auth=Auth.MEMBER,
             body=SaveDraftRequest, response=DraftView, errors=(409,))
async def save_draft(request: web.Request) -> web.Response:
    """Validate and save the draft (what provision and reprovision apply). With ``baseVersion``
    the save is refused with 409 ``stale_version`` (carrying ``currentVersion``) if someone saved
    since. 201 for the first save, 200 afterwards."""
    exocorp_id = request.match_info["id"]
    app = request.app
    async with audited(request, "draft.save", exocorp_id=exocorp_id) as note:
        access = await exocorp_access(request, exocorp_id, write=True)
        body = await json_body(request, SaveDraftRequest)
        config = body.draft.to_wire()
        async with app[DATABASE].sessionmaker.begin() as s:
            try:
                current = await drafts.get_exocorp_draft(s, access.exocorp_id)
            except NotFound:
                current = None
            if current is None:
                if body.base_version is not None:
                    raise conflict("no draft is saved yet; save without baseVersion",
                                   code="stale_version", extra={"currentVersion": 0})
                row = await drafts.create_draft(s, config=config, exocorp_id=access.exocorp_id,
                                                now=app[CLOCK]())
                status = 201
            else:
                row = await drafts.save_draft(
                    s, current.id, config=config,
                    expected_version=body.base_version or current.version, now=app[CLOCK]())
                status = 200
            view = _draft_view(access.exocorp_id, row)
            response = await complete_in(s, request, json_response(view, status=status))
        note.details["version"] = view.version
        return response


# -- manifest preview ----------------------------------------------------------------------------

_YAML_TYPES = frozenset({"application/yaml", "application/x-yaml", "text/yaml"})


def _wants_yaml(request: web.Request, query: ManifestQuery) -> bool:
    if query.format is not None:
        return query.format == "yaml"
    accepted = (part.split(";")[0].strip().lower()
                for part in request.headers.get("Accept", "").split(","))
    return any(media in _YAML_TYPES for media in accepted)


@routes.get(_COMPANY + "/manifest", summary="Preview the Kubernetes objects", auth=Auth.OWNER,
            query=ManifestQuery, response=ManifestView, errors=(409,),
            other_content_types=("application/yaml",))
async def get_manifest(request: web.Request) -> web.Response:
    """The Kubernetes objects the operator applies for the exocorp, rendered by the operator's
    own builders: from the saved draft before the first provision (and when the draft was
    saved after the last lifecycle action: what reprovision would apply), else from the
    applied spec. Credential values never appear: the credential Secret shows its key names
    with ``<redacted>`` values. ``?format=yaml`` (or ``Accept: application/yaml``) answers a
    multi-document YAML stream of the objects. 409 as provision gives it: no draft
    (``draft_missing``), an invalid draft (``draft_invalid``), a release not published
    (``release_not_found``, ``release_withdrawn``). Owner only."""
    access = await exocorp_access(request, request.match_info["id"], owner_only=True)
    query = query_params(request, ManifestQuery)
    app = request.app
    cache = app[CACHE]
    exocorp = _cached(cache, access.record)
    async with app[DATABASE].sessionmaker.begin() as s:
        try:
            row = await drafts.get_exocorp_draft(s, access.exocorp_id)
        except NotFound:
            row = None
    settings = app[SETTINGS]
    preview = preview_manifest(
        exocorp, draft=row.config if row else None, draft_saved_at=row.updated_at if row else None,
        releases=cache.release_specs(),
        provider_secrets=cache.provider_secrets(access.record.owner_user_id),
        settings=RuntimeSettings(portal_base_domain=settings.portal_base_domain,
                                 app_base_domain=settings.app_base_domain))
    if _wants_yaml(request, query):
        return web.Response(text=yaml.safe_dump_all(preview.objects, sort_keys=False),
                            content_type="application/yaml", charset="utf-8")
    return json_response(ManifestView(
        exocorp_id=access.exocorp_id, source=preview.source,
        release_version=preview.release_version, objects=preview.objects, notes=preview.notes))


# -- lifecycle actions ---------------------------------------------------------------------------

_FIELD_CODES = {(Action.PAUSE, "reason"): "reason_required",
                (Action.DESTROY, "confirm"): "confirmation_mismatch"}


async def _action_body(request: web.Request, action: Action, model: type[BaseModel]) -> BaseModel:
    data = await read_json_object(request, required=False)
    if action is Action.DESTROY:
        given = query_params(request, DestroyQuery).model_dump(by_alias=True, exclude_none=True)
        data = {**given, **data}
    try:
        return model.model_validate(data)
    except ValidationError as error:
        errors = field_errors(error)
        code = next((_FIELD_CODES[(action, e.field)] for e in errors
                     if (action, e.field) in _FIELD_CODES), "invalid_request")
        raise bad_request(f"the {action.value} request is invalid", errors, code=code) from None


async def _act(request: web.Request, action: Action, model: type[BaseModel]) -> web.Response:
    exocorp_id = request.match_info["id"]
    async with audited(request, action.value, exocorp_id=exocorp_id) as note:
        access = await exocorp_access(request, exocorp_id, write=True,
                                      owner_only=action is Action.DESTROY)
        if action is Action.DESTROY:
            require_agent_grant(access.principal, "destroy")
        body = await _action_body(request, action, model)
        fields = body.model_dump(exclude_none=True)
        note.reason = fields.get("reason")
        result = await run_action(request, access.principal, exocorp_id,
                                  access.record.owner_user_id,
                                  ActionRequest.model_validate({"action": action, **fields}))
        note.details.update(result.audit_details)
        detail = company_detail(access.record, access.role, result.exocorp)
        if action is Action.DESTROY:
            detail = detail.model_copy(update={"phase": Phase.DESTROYING})
        note.answer = json_response(ActionAccepted(
            action=action.value, exocorp_id=exocorp_id, phase=detail.phase,
            details=dict(result.details), company=detail), status=202)
        return note.answer


_ACTIONS: Sequence[tuple[Action, type[BaseModel], str, str]] = (
    (Action.PROVISION, ActionBody, "Provision (or start) the runtime",
     "From Draft: the first revision, from the saved draft. From Stopped: start again on the "
     "current revision. 409 when already provisioning or running, without a valid draft, when "
     "the release cannot be found, a required provider has no credential, or the owner's "
     "billing account is inactive or has no price book; 409 ``limit_exceeded`` beyond the "
     "account's or the platform's CPU, memory or storage limit; 402 ``insufficient_credit`` "
     "when the credit does not cover ``--min-credit-hours`` of everything the account would "
     "run."),
    (Action.UPDATE, UpdateBody, "Apply a release update",
     "A new revision: the last successful configuration on a newer release (``version`` names "
     "one; default the newest on the channel). 409 unless the update handshake answers "
     "``update_available``, or while a revision is in progress; 409 ``limit_exceeded`` and 402 "
     "``insufficient_credit`` when the new release asks for more than the account may take."),
    (Action.RESTART, ActionBody, "Restart from the last successful revision",
     "Re-apply the last successful revision and restart every pod. 409 without a successful "
     "revision or while one is in progress."),
    (Action.STOP, ActionBody, "Halt the runtime",
     "Every workload to zero and routes detached; data kept. Cancels a rollout in progress. "
     "409 when already stopped or still a draft."),
    (Action.PAUSE, PauseBody, "Pause the agents",
     "Agent workloads to zero; the portal stays reachable. ``reason`` is required (400 "
     "``reason_required`` without). 409 unless Running."),
    (Action.RESUME, ActionBody, "Resume a paused exocorp",
     "Back to Running. 409 unless Paused, or when the owner's billing account is inactive; "
     "409 ``limit_exceeded`` and 402 ``insufficient_credit`` as for provision."),
    (Action.REPROVISION, ActionBody, "Rebuild from the saved draft",
     "A full rebuild from the current saved draft as a new revision. 409 while a revision is in "
     "progress or without a valid draft."),
    (Action.ROLLBACK, RollbackBody, "Roll back to an earlier successful revision",
     "A new revision copying a named earlier successful revision (``revision``: name or number; "
     "default the previous successful one). 409 when the target is absent or did not succeed, "
     "or while a revision is in progress."),
)


def _register_action(action: Action, model: type[BaseModel], summary: str,
                     description: str) -> None:
    async def handler(request: web.Request) -> web.Response:
        return await _act(request, action, model)

    handler.__name__ = f"{action.value}_company"
    routes.post(f"{_COMPANY}/{action.value}", summary=summary, description=description,
                auth=Auth.MEMBER, body=model, body_required=model is PauseBody,
                response=ActionAccepted, status=202, errors=(402, 409))(handler)


for _action, _model, _summary, _description in _ACTIONS:
    _register_action(_action, _model, _summary, _description)


@routes.delete(_COMPANY, summary="Destroy an exocorp", auth=Auth.OWNER, body=DestroyBody,
               body_required=False, query=DestroyQuery, response=ActionAccepted, status=202,
               errors=(409,))
async def destroy_company(request: web.Request) -> web.Response:
    """Delete the runtime, its data and its domains: irreversible. The body must confirm the slug
    (``{"confirm": "<slug>"}``; 400 ``confirmation_mismatch`` otherwise), or, for clients that
    cannot send a body with DELETE, the query string (``?confirm=<slug>``). Owner only. The
    exocorp shows phase Destroying until the operator has removed everything; its slug and
    domains stay reserved."""
    return await _act(request, Action.DESTROY, DestroyBody)


# -- bindings and update handshake ---------------------------------------------------------------


def _draft_release(draft: Draft, releases: Sequence[ExocorpReleaseSpec],
                   ) -> tuple[ExocorpReleaseSpec | None, str | None]:
    if draft.version is not None:
        found = find_release(releases, draft.version)
        return (found, None) if found is not None else (
            None, f"release {draft.version} is not published")
    newest = newest_release(releases, draft.channel)
    return (newest, None) if newest is not None else (
        None, f"no release is published on {draft.channel.value}")


def provider_needs(exocorp: Exocorp, draft_wire: dict[str, Any] | None,
                   releases: Sequence[ExocorpReleaseSpec], available: dict[str, list[str]],
                   ) -> tuple[str, str | None, list[ProviderNeed], list[str]]:
    """(source, release version, needs, problems) of an exocorp: from the saved draft when
    there is one (what the next provision applies), else from the applied spec."""
    problems: list[str] = []
    if draft_wire is not None:
        try:
            draft = Draft.model_validate(draft_wire)
        except ValidationError:
            return "draft", None, [], ["the saved draft is invalid; save it again"]
        release, problem = _draft_release(draft, releases)
        if release is not None:
            return "draft", release.version, resolve_bindings(
                release, draft.config, draft.provider_bindings, available), problems
        problems.append(problem or "")
    spec = exocorp.spec
    if spec.release is not None and spec.config is not None:
        found = find_release(releases, spec.release.version)
        if found is not None:
            return "spec", found.version, resolve_bindings(
                found, spec.config, spec.provider_bindings, available), problems
        problems.append(f"release {spec.release.version} is no longer published")
    return ("draft" if draft_wire is not None else "spec"), None, [], problems


@routes.get(_COMPANY + "/bindings", summary="Provider credential bindings", auth=Auth.MEMBER,
            response=BindingsResponse)
async def get_bindings(request: web.Request) -> web.Response:
    """For each provider the exocorp's release and draft need: required or optional, the
    credential serving it (or none), ``bound`` or ``missing``. An account credential for a
    provider binds automatically unless the draft names another."""
    access = await exocorp_access(request, request.match_info["id"])
    cache = request.app[CACHE]
    exocorp = _cached(cache, access.record)
    async with request.app[DATABASE].sessionmaker.begin() as s:
        draft = await drafts.exocorp_draft_config(s, access.exocorp_id)
    owner = access.record.owner_user_id
    source, version, needs, problems = provider_needs(
        exocorp, draft, cache.release_specs(), cache.provider_secrets(owner))
    namespace = request.app[SETTINGS].platform_namespace
    views = []
    for need in needs:
        credential = cache.credential(need.secret_name, namespace) if need.secret_name else None
        views.append(BindingView(
            provider=need.provider, required=need.required,
            status="bound" if need.secret_name else "missing" if need.required else "unbound",
            secret_id=need.secret_name,
            secret_name=credential.name if credential else None,
            fingerprint=credential.fingerprint if credential else None, chosen=need.chosen))
    return json_response(BindingsResponse(
        exocorp_id=access.exocorp_id, source=source, release_version=version, bindings=views,
        applied=exocorp.spec.provider_bindings, problems=problems))


@routes.get(_COMPANY + "/update-handshake", summary="Is an update available?", auth=Auth.MEMBER,
            query=HandshakeQuery, response=UpdateHandshake)
async def update_handshake(request: web.Request) -> web.Response:
    """``up_to_date``, ``update_available``, ``install_required`` (nothing installed, or the
    installed release was withdrawn) or ``blocked`` (with every reason: version constraint,
    missing provider, in progress, billing inactive). ``?channel=`` and ``?version=`` ask about
    another channel or a specific release."""
    access = await exocorp_access(request, request.match_info["id"])
    query = query_params(request, HandshakeQuery)
    cache = request.app[CACHE]
    exocorp = _cached(cache, access.record)
    async with request.app[DATABASE].sessionmaker.begin() as s:
        standing = await billing_state(s, access.record.owner_user_id)
    answer = evaluate_handshake(
        exocorp, cache.release_specs(),
        provider_secrets=cache.provider_secrets(access.record.owner_user_id),
        billing=standing, channel=query.channel, version=query.version)
    return json_response(answer)
