"""Rollup views of the caller's fleet."""

from __future__ import annotations

from aiohttp import web

from exocorp.api_gateway.access import require_user, user_fleet
from exocorp.api_gateway.keys import CACHE, DATABASE
from exocorp.api_gateway.registry.routes import provider_needs
from exocorp.api_gateway.routing import Auth, RouteTable, json_response
from exocorp.api_gateway.schemas import (
    DashboardSummary,
    MissingProvider,
    ProviderCoverage,
)
from exocorp.api_gateway.views import account_view
from exocorp.model import Phase, phase_of
from exocorp.store import drafts

routes = RouteTable("dashboard", "Rollups of your fleet.")


@routes.get("/api/dashboard/summary", summary="Fleet overview", auth=Auth.USER,
            response=DashboardSummary)
async def dashboard_summary(request: web.Request) -> web.Response:
    """The caller's exocorps: total, counts by phase (every phase, zeros included),
    provider-credential coverage (required needs served / required needs, and which are missing)
    and the account balance."""
    principal = require_user(request)
    assert principal.user_id is not None
    cache = request.app[CACHE]
    releases = cache.release_specs()
    by_phase = {phase.value: 0 for phase in Phase}
    required = configured = 0
    missing: list[MissingProvider] = []
    async with request.app[DATABASE].sessionmaker.begin() as s:
        rows = [row for row in await user_fleet(request, principal.user_id)
                if row.exocorp.destroyed_at is None]
        balance = await account_view(s, principal.user_id)
        total = 0
        for row in rows:
            exocorp = cache.exocorp(row.exocorp.id)
            if exocorp is None:
                continue
            total += 1
            phase = phase_of(exocorp)
            by_phase[phase.value] += 1
            draft = (await drafts.exocorp_draft_config(s, row.exocorp.id)
                     if phase is Phase.DRAFT else None)
            available = cache.provider_secrets(row.exocorp.owner_user_id)
            _, _, needs, _ = provider_needs(exocorp, draft, releases, available)
            for need in needs:
                if not need.required:
                    continue
                required += 1
                if need.secret_name:
                    configured += 1
                else:
                    missing.append(MissingProvider(exocorp_id=row.exocorp.id,
                                                   provider=need.provider))
    own = sorted(cache.provider_secrets(principal.user_id))
    return json_response(DashboardSummary(
        total=total, by_phase=by_phase,
        provider_coverage=ProviderCoverage(configured=configured, required=required,
                                           missing=missing, providers_with_credentials=own),
        balance=balance))
