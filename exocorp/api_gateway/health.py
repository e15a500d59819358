"""Probes and the API's own description: /healthz, /readyz, /api/openapi.json, /api/docs. (/metrics
is served on its own port: ``metrics.metrics_app``.)"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from exocorp.api_gateway.keys import CACHE, DATABASE
from exocorp.api_gateway.openapi import app_docs_html, app_document_json
from exocorp.api_gateway.routing import Auth, RouteTable, json_response
from exocorp.api_gateway.schemas import HealthStatus

log = logging.getLogger(__name__)

routes = RouteTable("health", "Liveness, readiness and this API description.")

_DB_PING_TIMEOUT = 5.0


# The one answer of /healthz, rendered once: probes and load balancers call it all the time.
_ALIVE = HealthStatus(status="ok").model_dump_json(by_alias=True, exclude_none=True).encode()


@routes.get("/healthz", summary="Liveness", auth=Auth.PUBLIC, response=HealthStatus)
async def healthz(request: web.Request) -> web.Response:
    """200 while the process serves requests (no dependency is checked)."""
    return web.Response(body=_ALIVE, content_type="application/json", charset="utf-8")


@routes.get("/readyz", summary="Readiness", auth=Auth.PUBLIC, response=HealthStatus,
            errors=(503,))
async def readyz(request: web.Request) -> web.Response:
    """200 once the watch cache has listed every resource and the database answers; 503 with
    the failing checks otherwise."""
    checks = {"watchCache": "ok" if request.app[CACHE].ready else "syncing"}
    try:
        async with asyncio.timeout(_DB_PING_TIMEOUT):
            await request.app[DATABASE].ping()
        checks["database"] = "ok"
    except Exception as error:  # any failure means "not ready", and is worth a log line
        log.warning("readiness: database check failed: %r", error)
        checks["database"] = "unreachable"
    ok = all(value == "ok" for value in checks.values())
    return json_response(HealthStatus(status="ok" if ok else "unavailable", checks=checks),
                         status=200 if ok else 503)


@routes.get("/api/openapi.json", summary="OpenAPI document", auth=Auth.PUBLIC,
            content_type="application/json")
async def openapi_document(request: web.Request) -> web.Response:
    """This API as an OpenAPI 3.1 document, generated from the routes and their models."""
    return web.Response(text=app_document_json(request.app), content_type="application/json")


@routes.get("/api/docs", summary="API documentation", auth=Auth.PUBLIC,
            content_type="text/html")
async def api_docs(request: web.Request) -> web.Response:
    """A readable page of the OpenAPI document (self-contained HTML)."""
    return web.Response(text=app_docs_html(request.app), content_type="text/html",
                        headers={"Content-Security-Policy": "default-src 'none'; "
                                 "style-src 'unsafe-inline'"})
