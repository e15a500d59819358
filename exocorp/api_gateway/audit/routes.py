"""The audit trail, read-only: the whole platform's for platform owners, one exocorp's for its
owner and members. There is no write, update or delete endpoint: events are appended by the
actions themselves (``audit.audited``), and the database refuses UPDATE and DELETE on them.
See docs/admin.md ("Audit trail")."""

from __future__ import annotations

from aiohttp import web

from exocorp.api_gateway.access import exocorp_access, require_platform_owner
from exocorp.api_gateway.audit.schemas import AuditPage, AuditQuery, CompanyAuditQuery
from exocorp.api_gateway.audit.trail import AuditFilter, audit_page
from exocorp.api_gateway.keys import DATABASE
from exocorp.api_gateway.routing import Auth, RouteTable, json_response, query_params
from exocorp.store import registry

routes = RouteTable("audit", "The append-only audit trail: who did what, when, with what outcome.")


_FILTERS = (
    "Filters (all optional, combined with AND): ``actor`` (user or operator-client id), "
    "``action`` (exact name), ``outcome`` (``succeeded``, ``refused``, ``failed``), ``since`` "
    "(inclusive) and ``until`` (exclusive) as RFC 3339 instants. Pages: ``limit`` (1-500, "
    "default 50), ``order`` (``desc`` newest first, the default, or ``asc``); pass "
    "``nextCursor`` back as ``cursor`` for the next page (keyset pagination: events appended "
    "meanwhile never shift or repeat entries).")


@routes.get("/api/admin/audit", summary="The platform's audit trail", auth=Auth.PLATFORM_OWNER,
            query=AuditQuery, response=AuditPage,
            description="Every recorded event: lifecycle actions (by owners, members, agents, "
                        "platform owners and the platform itself), creations, draft saves, "
                        "credential changes, logins, agent approvals and token revocations, "
                        "accepted or refused. Further filters: ``company`` (exocorp id), "
                        "``actorKind`` (``user``, ``operator_client``, ``system``, "
                        "``anonymous``). " + _FILTERS)
async def admin_audit(request: web.Request) -> web.Response:
    require_platform_owner(request)
    wanted = AuditFilter.of(query_params(request, AuditQuery))
    async with request.app[DATABASE].sessionmaker.begin() as s:
        return json_response(await audit_page(s, wanted))


@routes.get("/api/registry/companies/{id}/audit", summary="An exocorp's audit trail",
            auth=Auth.MEMBER, query=CompanyAuditQuery, response=AuditPage,
            description="What was done to this exocorp, by whom, with what outcome (refused "
                        "attempts included). Members see each other's e-mail addresses; a "
                        "platform owner's action shows as such. " + _FILTERS)
async def company_audit(request: web.Request) -> web.Response:
    access = await exocorp_access(request, request.match_info["id"])
    wanted = AuditFilter.of(query_params(request, CompanyAuditQuery),
                            exocorp_id=access.exocorp_id)
    async with request.app[DATABASE].sessionmaker.begin() as s:
        members = {m.user_id for m in await registry.list_members(s, access.exocorp_id)}
        return json_response(await audit_page(s, wanted, visible_users=members))
