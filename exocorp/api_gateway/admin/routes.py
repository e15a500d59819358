"""Platform-owner operations: the whole fleet, one exocorp in depth (its runtime too), lifecycle
actions on any exocorp, and fleet statistics. Every route needs the platform-owner role (other
users get 403, an agent's bearer token too: agents never hold the admin role).

Exocorps and their status come from the watch cache, owners and members from the platform
records; pods and events are read from the API server (see ``runtime.cluster`` for why and how
that stays cheap). Actions run exactly like the owners' (``operations.run_action``) and are
audited the same way, with ``details.via = "admin"``.
"""

from __future__ import annotations

import re
from datetime import datetime

from aiohttp import web
from pydantic import ValidationError

from exocorp.api_gateway.access import principal_of, require_platform_owner
from exocorp.api_gateway.admin.schemas import (
    AdminActionAccepted,
    AdminActionRequest,
    AdminCompanyDetail,
    AdminCompanyList,
    AdminCompanyQuery,
    AdminRuntime,
    LimitSetting,
    LimitsOverview,
    ReconcileLatency,
    RuntimeStats,
)
from exocorp.api_gateway.admin.views import access_of, admin_detail, admin_summary
from exocorp.api_gateway.allowances import fleet_usage
from exocorp.api_gateway.audit.trail import actor_names, event_views
from exocorp.api_gateway.audited import audited
from exocorp.api_gateway.availability import company_actions, with_actions
from exocorp.api_gateway.errors import Problem, bad_request, field_errors, not_found
from exocorp.api_gateway.keys import ACCESS_CACHE, CACHE, CLOCK, DATABASE, SETTINGS
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
from exocorp.api_gateway.runtime.cluster import (
    cluster_reader as _reader,
)
from exocorp.api_gateway.runtime.cluster import (
    component_health,
    install_cluster_reader,
)
from exocorp.api_gateway.schemas import DeletedEvent, UserView
from exocorp.api_gateway.streams import DetailEvents, serve_stream
from exocorp.api_gateway.views import user_view
from exocorp.model import (
    Action,
    ActionRequest,
    Exocorp,
    Phase,
    RevisionOutcome,
    format_timestamp,
    phase_of,
    rollout_in_progress,
)
from exocorp.model.base import parse_rfc3339_or_none
from exocorp.model.quantity import format_bytes, format_cpu
from exocorp.model.spec import SLUG_PATTERN
from exocorp.stats import percentile
from exocorp.store import accounts, audit, drafts, limits, registry
from exocorp.store.errors import NotFound
from exocorp.store.schema import ExocorpRecord

routes = RouteTable("admin", "Platform-owner operations: the whole fleet and its runtime.")
routes.on_setup(install_cluster_reader)

_COMPANY = "/api/admin/companies/{id}"
_ID = re.compile(SLUG_PATTERN)
_RECENT_AUDIT = 20


def _cached_exocorp(app: web.Application, exocorp_id: str) -> Exocorp:
    exocorp = app[CACHE].exocorp(exocorp_id) if _ID.fullmatch(exocorp_id) else None
    if exocorp is None or len(exocorp_id) > 63:
        raise not_found(f"exocorp {exocorp_id!r} not found")
    return exocorp


async def _record(request: web.Request, exocorp_id: str) -> ExocorpRecord | None:
    async with request.app[DATABASE].sessionmaker.begin() as s:
        try:
            return await registry.get_exocorp(s, exocorp_id)
        except NotFound:
            return None


# -- the fleet -----------------------------------------------------------------------------------


@routes.get("/api/admin/companies", summary="All exocorps", auth=Auth.PLATFORM_OWNER,
            query=AdminCompanyQuery, response=AdminCompanyList)
async def admin_companies(request: web.Request) -> web.Response:
    """Every exocorp on the platform (those created with kubectl too, ``registered: false``):
    owner and members with their e-mail addresses, phase, channel and version (desired and
    installed), the latest job (newest revision: number, version, action, requester, outcome),
    the last update and the last action. ``?phase=`` and ``?owner=`` (user id or e-mail)
    narrow the list; ``byPhase`` counts what is listed."""
    require_platform_owner(request)
    query = query_params(request, AdminCompanyQuery)
    app = request.app
    exocorps = sorted((entry.model for entry in app[CACHE].exocorps.values()),
                      key=lambda e: (e.metadata.creation_timestamp or "", e.metadata.name))
    async with app[DATABASE].sessionmaker.begin() as s:
        owner_id = query.owner
        if query.owner is not None and "@" in query.owner:
            user = await accounts.find_user_by_email(s, query.owner)
            owner_id = user.id if user is not None else ""
        records = {rec.id: rec for rec in await registry.list_exocorps(s, include_destroyed=True)}
        if owner_id is not None:
            exocorps = [e for e in exocorps if _owner(records.get(e.metadata.name), e) == owner_id]
        if query.phase is not None:
            exocorps = [e for e in exocorps if phase_of(e) is query.phase]
        access = await access_of(s, [(e.metadata.name, _owner(records.get(e.metadata.name), e))
                                     for e in exocorps])
    settings = app[SETTINGS]
    companies = [admin_summary(records.get(e.metadata.name), e, access.get(e.metadata.name),
                               settings) for e in exocorps]
    by_phase = {phase.value: 0 for phase in Phase}
    for company in companies:
        by_phase[company.phase.value] += 1
    return json_response(AdminCompanyList(companies=companies, total=len(companies),
                                          by_phase=by_phase))


def _owner(record: ExocorpRecord | None, exocorp: Exocorp) -> str:
    return record.owner_user_id if record is not None else exocorp.spec.owner


@routes.get(_COMPANY + "/details", summary="One exocorp, in depth", auth=Auth.PLATFORM_OWNER,
            response=AdminCompanyDetail, errors=(404,))
async def admin_company_details(request: web.Request) -> web.Response:
    """Everything the fleet list shows, plus conditions, components (readiness and restarts),
    the revision history ("jobs"), domains, the applied configuration and bindings, the saved
    draft's version, the operator's last reconcile pass, the latest audit events and
    ``actions``: for each lifecycle action whether it is allowed now, and if not the code and
    reason ``POST .../actions`` would refuse it with."""
    principal = require_platform_owner(request)
    body = await _details(request.app, principal, request.match_info["id"])
    return web.Response(body=body, content_type="application/json")


async def _details(app: web.Application, principal: Principal, exocorp_id: str) -> bytes:
    """The JSON of the details route (also each event of the admin stream)."""
    exocorp = _cached_exocorp(app, exocorp_id)
    async with app[DATABASE].sessionmaker.begin() as s:
        try:
            record: ExocorpRecord | None = await registry.get_exocorp(s, exocorp_id)
        except NotFound:
            record = None
        access = await access_of(s, [(exocorp_id, _owner(record, exocorp))])
        try:
            draft = await drafts.get_exocorp_draft(s, exocorp_id)
        except NotFound:
            draft = None
        page = await audit.query_audit_events(s, exocorp_id=exocorp_id, limit=_RECENT_AUDIT)
        events = event_views(page.items, await actor_names(s, page.items))
    detail = admin_detail(record, exocorp, access.get(exocorp_id), app[SETTINGS], draft=draft,
                          recent_audit=events)
    actions = await company_actions(app, exocorp, _owner(record, exocorp),
                                    actor=principal.actor)
    return with_actions(detail.model_dump_json(by_alias=True, exclude_none=True).encode(),
                        actions)


@routes.get(_COMPANY + "/events", summary="Live changes of any exocorp",
            auth=Auth.PLATFORM_OWNER, content_type="text/event-stream", errors=(404, 429),
            events=(("company", AdminCompanyDetail), ("deleted", DeletedEvent)))
async def admin_company_events(request: web.Request) -> web.StreamResponse:
    """The registry's event stream (``GET /api/registry/companies/{id}/events``) for platform
    owners, for any exocorp: ``event: company`` carries the JSON of ``.../details``
    (``AdminCompanyDetail``), first the current one and then one per change; ``event:
    deleted`` (``{"id"}``) when it is gone."""
    exocorp_id = request.match_info["id"]
    app = request.app

    async def body() -> bytes | None:
        if app[CACHE].exocorp(exocorp_id) is None:
            return None
        return await _details(app, principal_of(request), exocorp_id)

    events = DetailEvents(exocorp_id, body)

    async def authorise() -> None:
        require_platform_owner(request)
        if not events.started:
            _cached_exocorp(app, exocorp_id)

    return await serve_stream(request, key=exocorp_id, authorise=authorise, first=events.first,
                              render=events.render)


@routes.get(_COMPANY + "/runtime", summary="Runtime health of one exocorp",
            auth=Auth.PLATFORM_OWNER, response=AdminRuntime, errors=(404,))
async def admin_company_runtime(request: web.Request) -> web.Response:
    """Per-component health (``healthy``, ``progressing``, ``degraded``, ``down``,
    ``stopped``) with desired/ready/available replicas and restarts; the pods of its namespace
    (node, phase, readiness, restarts, why a container waits, e.g. ``CrashLoopBackOff``); and the
    latest Kubernetes events about the Exocorp and its namespace, newest first. Pods and events
    are read from the API server when asked (``observedAt``); what could not be read is listed
    in ``problems``."""
    require_platform_owner(request)
    exocorp_id = request.match_info["id"]
    exocorp = _cached_exocorp(request.app, exocorp_id)
    runtime = await _reader(request.app).exocorp_runtime(exocorp_id)
    rolling = rollout_in_progress(exocorp)
    components = [component_health(status, [p for p in runtime.pods
                                            if p.component == status.name], rolling_out=rolling)
                  for status in exocorp.status.components]
    ready = next((c.status == "True" for c in exocorp.status.conditions if c.type == "Ready"),
                 False)
    return json_response(AdminRuntime(
        exocorp_id=exocorp_id, namespace=runtime.namespace, phase=phase_of(exocorp),
        ready=ready, conditions=exocorp.status.conditions, components=components,
        pods=runtime.pods, restarts=sum(p.restarts for p in runtime.pods),
        events=runtime.events, observed_at=runtime.observed_at, problems=runtime.problems))


# -- actions -------------------------------------------------------------------------------------

_ACTIONS = frozenset(action.value for action in Action)


@routes.post(_COMPANY + "/actions", summary="Run a lifecycle action on any exocorp",
             auth=Auth.PLATFORM_OWNER, body=AdminActionRequest, response=AdminActionAccepted,
             status=202, errors=(402, 404, 409))
async def admin_company_action(request: web.Request) -> web.Response:
    """``{"action": ..., "reason": ..., "confirm": ..., "revision": ..., "version": ...,
    "channel": ...}``: provision, update, restart, stop, pause, resume, reprovision, rollback
    or destroy, with the rules of the owners' endpoints (SPEC section 3): pause needs a
    ``reason`` (400 ``reason_required``); destroy needs the slug typed back in ``confirm``
    (400 ``confirmation_mismatch``); rollback may name a ``revision`` (name or number; default
    the previous successful one); update may name a ``version``. A field another action takes
    is a 400. 409 when the phase does not allow the action, a revision is rolling out, or what
    the action needs is missing (draft, release, provider credential, the owner's billing).
    Recorded in the audit trail under the action's name with ``details.via = "admin"``,
    refused attempts included."""
    exocorp_id = request.match_info["id"]
    body_error: Problem | None = None
    try:
        data = await read_json_object(request)
    except Problem as error:
        data, body_error = {}, error
    named = data.get("action")
    valid = isinstance(named, str) and named in _ACTIONS
    label = named if isinstance(named, str) and valid else "admin.action"
    # A request that never named a valid action did nothing to the exocorp: it stays out of the
    # exocorp's (its owner's) trail, and the platform trail keeps the id in its details.
    async with audited(request, label, exocorp_id=exocorp_id if valid else None) as note:
        note.details["via"] = "admin"
        if not valid:
            note.details["exocorpId"] = exocorp_id
        principal = require_platform_owner(request)
        if body_error is not None:
            raise body_error
        try:
            body = AdminActionRequest.model_validate(data)
        except ValidationError as error:
            raise bad_request("the action request is invalid", field_errors(error)) from None
        note.reason = body.reason
        exocorp = _cached_exocorp(request.app, exocorp_id)
        record = await _record(request, exocorp_id)
        result = await run_action(
            request, principal, exocorp_id, _owner(record, exocorp),
            ActionRequest.model_validate(body.model_dump(exclude_none=True)))
        note.details.update(result.audit_details)
        async with request.app[DATABASE].sessionmaker.begin() as s:
            access = await access_of(s, [(exocorp_id, _owner(record, exocorp))])
        summary = admin_summary(record, result.exocorp, access.get(exocorp_id),
                                request.app[SETTINGS])
        if body.action is Action.DESTROY:
            summary = summary.model_copy(update={"phase": Phase.DESTROYING})
        note.answer = json_response(AdminActionAccepted(
            action=body.action.value, exocorp_id=exocorp_id, phase=summary.phase,
            details=dict(result.details), company=summary), status=202)
        return note.answer


# -- fleet statistics ----------------------------------------------------------------------------


@routes.get("/api/admin/runtime-stats", summary="Fleet runtime statistics",
            auth=Auth.PLATFORM_OWNER, response=RuntimeStats)
async def admin_runtime_stats(request: web.Request) -> web.Response:
    """Exocorps by phase; pods ready, desired and available and container restarts summed over
    every component; failed revisions (in the kept histories) and exocorps failing since their
    last success; rollouts in progress; and the operator's reconcile latency (each exocorp's
    ``status.lastReconcileSeconds``: mean, p50, p95, max, the slowest exocorp, and how long ago
    the least recently reconciled one was visited). All from the watch cache."""
    require_platform_owner(request)
    now = request.app[CLOCK]()
    exocorps = [entry.model for entry in request.app[CACHE].exocorps.values()]
    by_phase = {phase.value: 0 for phase in Phase}
    ready = desired = available = restarts = failed = failing = rolling = 0
    latencies: list[tuple[float, str]] = []
    oldest: datetime | None = None
    for exocorp in exocorps:
        status = exocorp.status
        by_phase[phase_of(exocorp).value] += 1
        for component in status.components:
            ready += component.ready
            desired += component.desired
            available += component.available
            restarts += component.restarts
        failed += sum(1 for h in status.history if h.outcome is RevisionOutcome.FAILED)
        failing += status.failed_revisions_since_success > 0
        rolling += rollout_in_progress(exocorp)
        if status.last_reconcile_seconds is not None:
            latencies.append((status.last_reconcile_seconds, exocorp.metadata.name))
        visited = parse_rfc3339_or_none(status.last_reconcile_time)
        if visited is not None and (oldest is None or visited < oldest):
            oldest = visited
    values = sorted(seconds for seconds, _ in latencies)
    latency = ReconcileLatency(samples=len(values))
    if values:
        latency = ReconcileLatency(
            samples=len(values), mean_seconds=round(sum(values) / len(values), 6),
            p50_seconds=percentile(values, 0.5), p95_seconds=percentile(values, 0.95),
            max_seconds=values[-1], slowest=max(latencies)[1],
            oldest_reconcile_age_seconds=round(max(0.0, (now - oldest).total_seconds()), 3)
            if oldest is not None else None)
    return json_response(RuntimeStats(
        total=len(exocorps), by_phase=by_phase, pods_ready=ready, pods_total=desired,
        pods_available=available, restarts=restarts, failed_revisions=failed,
        failing_exocorps=failing, rollouts_in_progress=rolling, reconcile=latency,
        observed_at=format_timestamp(now)))


@routes.get("/api/admin/limits", summary="Limits", auth=Auth.PLATFORM_OWNER,
            response=LimitsOverview)
async def get_limits(request: web.Request) -> web.Response:
    """The default per-account limits, the platform-wide caps, how many exocorps exist and the
    CPU, memory and storage the whole fleet requests now."""
    require_platform_owner(request)
    used = fleet_usage(request.app)
    async with request.app[DATABASE].sessionmaker.begin() as s:
        overview = LimitsOverview(
            default=LimitSetting.of(await limits.get_limits(s, limits.DEFAULT_SCOPE)),
            platform=LimitSetting.of(await limits.get_limits(s, limits.PLATFORM_SCOPE)),
            exocorps=await limits.count_exocorps(s), cpu=format_cpu(used.cpu_millicores),
            memory=format_bytes(used.memory_bytes), storage=format_bytes(used.storage_bytes))
    return json_response(overview)


@routes.put("/api/admin/limits/{scope}", summary="Set limits",
            auth=Auth.PLATFORM_OWNER, body=LimitSetting, response=LimitSetting, errors=(404,))
async def put_limit(request: web.Request) -> web.Response:
    """Set every limit of ``scope`` at once: ``default`` (every account without limits of its
    own), ``platform`` (all accounts together) or a user id (that account: its own limits then
    replace the default ones entirely). ``maxExocorps`` bounds how many exocorps exist;
    ``maxCpu``, ``maxMemory`` and ``maxStorage`` (Kubernetes quantities) bound what their
    runtimes request. An absent or null bound is unlimited. Nothing running is ever removed:
    a limit refuses creating, provisioning, resuming or growing beyond it."""
    scope = request.match_info["scope"]
    async with audited(request, "limits.set") as note:
        principal = require_platform_owner(request)
        body = await json_body(request, LimitSetting)
        note.details.update(scope=scope, **body.model_dump(by_alias=True, exclude_none=True))
        async with request.app[DATABASE].sessionmaker.begin() as s:
            if scope not in (limits.DEFAULT_SCOPE, limits.PLATFORM_SCOPE):
                try:
                    await accounts.get_user(s, scope)
                except NotFound:
                    raise not_found(f"no user {scope!r}: the scope is 'default', 'platform' "
                                    "or a user id") from None
            await limits.set_limits(s, scope, body.to_limits(), by=principal.user_id,
                                    now=request.app[CLOCK]())
        return json_response(body)


async def _set_disabled(request: web.Request, value: bool) -> web.Response:
    user_id = request.match_info["user_id"]
    async with audited(request, "user.disable" if value else "user.enable") as note:
        require_platform_owner(request)
        note.details["userId"] = user_id
        async with request.app[DATABASE].sessionmaker.begin() as s:
            try:
                user = await accounts.set_disabled(s, user_id, value)
            except NotFound:
                raise not_found(f"no user {user_id!r}") from None
            if value:
                await accounts.sign_out_everywhere(s, user_id, now=request.app[CLOCK]())
        request.app[ACCESS_CACHE].forget_user(user_id)
        return json_response(user_view(user))


@routes.post("/api/admin/users/{user_id}/disable", summary="Disable a user",
             auth=Auth.PLATFORM_OWNER, response=UserView, errors=(404,))
async def disable_user(request: web.Request) -> web.Response:
    """The user can no longer log in; every session of theirs and every agent token they
    approved stops at once (on this replica; elsewhere within ``--auth-cache-seconds``)."""
    return await _set_disabled(request, True)


@routes.post("/api/admin/users/{user_id}/enable", summary="Enable a user",
             auth=Auth.PLATFORM_OWNER, response=UserView, errors=(404,))
async def enable_user(request: web.Request) -> web.Response:
    """The user may log in again (revoked sessions and agent tokens stay revoked)."""
    return await _set_disabled(request, False)
