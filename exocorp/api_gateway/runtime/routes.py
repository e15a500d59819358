"""Where runtimes execute: the cluster's capacity and health, for every logged-in user.

Who sees what *(defined here; docs/admin.md, "Execution providers")*: capacity and health of the
cluster are shared infrastructure facts that every user's runtimes depend on, so every user
(and an agent acting for one) sees the nodes, their readiness, pressure, allocatable and
requested CPU and memory. Which exocorps run where is private: platform owners see every
exocorp placed on each node (``scope: fleet``); other users see only the exocorps they own or
are a member of (``scope: own``), and counts of pending pods and placed exocorps cover only
those. ``GET /api/runtime/billing/usage`` is the billing module's (``billing.routes``).
"""

from __future__ import annotations

from aiohttp import web

from exocorp.api_gateway.access import require_user, user_fleet
from exocorp.api_gateway.routing import Auth, RouteTable, json_response
from exocorp.api_gateway.runtime.cluster import (
    cluster_reader,
    execution_state,
    install_cluster_reader,
)
from exocorp.api_gateway.runtime.schemas import ExecutionProviderState

routes = RouteTable("runtime", "Where runtimes execute: capacity and health.")
routes.on_setup(install_cluster_reader)


@routes.get("/api/runtime/execution-providers/state", summary="Capacity and health",
            auth=Auth.USER, response=ExecutionProviderState)
async def execution_providers_state(request: web.Request) -> web.Response:
    """The cluster that runs exocorps: nodes (ready, schedulable, pressure conditions), CPU and
    memory allocatable versus requested (summed over the unfinished pods on each node, as the
    scheduler counts), pods, and the exocorps placed on each node. ``health`` is ``healthy``
    when every node is ready without pressure, ``degraded`` when some node is not, and
    ``unavailable`` with no ready node. Platform owners see every exocorp's placement
    (``scope: fleet``); other users only their own (``scope: own``). Nodes and pods are read
    from the API server, at most once every few seconds for all callers (``observedAt``)."""
    principal = require_user(request)
    snapshot = await cluster_reader(request.app).cluster()
    if principal.platform_owner:
        return json_response(execution_state(snapshot, lambda _: True, scope="fleet"))
    assert principal.user_id is not None
    own = {row.exocorp.id for row in await user_fleet(request, principal.user_id)}
    return json_response(execution_state(snapshot, own.__contains__, scope="own"))
