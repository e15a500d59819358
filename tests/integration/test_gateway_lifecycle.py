"""A new user's whole journey over HTTP, against the real operator and control plane, on both
databases: signup, login, create a company, save its draft, add a provider credential,
provision, see it Running (served from the watch cache), update, roll back, stop, destroy."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from exocorp.store.schema import AuditEvent
from exocorp.testing.waiting import eventually
from tests.plugins.gateway_cluster import (
    PASSWORD,
    GatewayUnderTest,
    sample_draft,
    unique_slug,
)
from tests.plugins.platform import CANARY_SECRET

pytestmark = pytest.mark.integration


async def test_a_new_user_runs_an_exocorp_from_signup_to_destroy(
        gateway: GatewayUnderTest) -> None:
    api = gateway.client()
    seen: list[str] = []  # every response body, to check that no secret value ever leaks

    async def ok(method: str, path: str, expect: int = 200, **kwargs: object) -> dict:
        status, body = await api.call(method, path, **kwargs)
        seen.append(json.dumps(body))
        assert status == expect, f"{method} {path}: {status} {body}"
        return body  # type: ignore[no-any-return]

    signed_up = await api.signup()
    email = signed_up["user"]["email"]
    assert signed_up["recoveryKit"].startswith("EXO-")
    await ok("POST", "/api/auth/logout", 204)
    assert (await api.call("GET", "/api/auth/me"))[0] == 401
    await ok("POST", "/api/auth/login", json={"email": email, "password": PASSWORD})
    me = await ok("GET", "/api/auth/me")
    assert (me["user"]["email"], me["platformOwner"]) == (email, False)

    slug = unique_slug("journey")
    created = await ok("POST", "/api/registry/companies", 201,
                       json={"slug": slug, "displayName": "Journey Inc"})
    assert created["phase"] == "Draft"
    assert {d["host"] for d in created["domains"]} == {
        f"{slug}.portal.exocorp.localhost", f"{slug}.app.exocorp.localhost"}
    await ok("POST", f"/api/registry/companies/{slug}/draft", 201,
             json={"draft": sample_draft("1.0.0")})
    secret = await ok("POST", "/api/registry/provider-secrets", 201,
                      json={"provider": "anthropic", "name": "main", "value": CANARY_SECRET})
    bindings = await ok("GET", f"/api/registry/companies/{slug}/bindings")
    anthropic = next(b for b in bindings["bindings"] if b["provider"] == "anthropic")
    assert (anthropic["status"], anthropic["secretId"]) == ("bound", secret["id"])

    accepted = await ok("POST", f"/api/registry/companies/{slug}/provision", 202)
    assert accepted["phase"] == "Provisioning"
    running = await api.wait_phase(slug, "Running")
    assert running["release"]["version"] == "1.0.0"
    assert {c["name"]: c["ready"] for c in running["components"]} == {
        "portal": 1, "app": 1, "agents": 2}
    fleet = await ok("GET", "/api/registry/my-companies")
    assert [(c["id"], c["phase"]) for c in fleet["companies"]] == [(slug, "Running")]
    summary = await ok("GET", "/api/dashboard/summary")
    assert (summary["total"], summary["byPhase"]["Running"]) == (1, 1)
    assert summary["providerCoverage"]["configured"] == summary["providerCoverage"]["required"]

    handshake = await ok("GET", f"/api/registry/companies/{slug}/update-handshake")
    assert (handshake["status"], handshake["availableVersion"]) == ("update_available", "1.1.0")
    await ok("POST", f"/api/registry/companies/{slug}/update", 202, json={"reason": "newer"})
    updated = await api.settled(slug)
    assert (updated["phase"], updated["release"]["version"]) == ("Running", "1.1.0")

    await ok("POST", f"/api/registry/companies/{slug}/rollback", 202,
             json={"reason": "back to 1.0.0"})
    rolled = await api.settled(slug)
    assert (rolled["phase"], rolled["release"]["version"]) == ("Running", "1.0.0")
    assert [(h["version"], h.get("action"), h["outcome"]) for h in rolled["history"][:3]] == [
        ("1.0.0", "rollback", "Succeeded"), ("1.1.0", "update", "Succeeded"),
        ("1.0.0", "provision", "Succeeded")]

    await ok("POST", f"/api/registry/companies/{slug}/stop", 202)
    stopped = await api.wait_phase(slug, "Stopped")
    assert {d["routing"] for d in stopped["domains"]} == {"detached"}

    status, refused = await api.call("DELETE", f"/api/registry/companies/{slug}",
                                     json={"confirm": "not-the-slug"})
    assert (status, refused["code"]) == (400, "confirmation_mismatch")
    assert (await api.company(slug))["phase"] == "Stopped"
    destroying = await ok("DELETE", f"/api/registry/companies/{slug}", 202,
                          json={"confirm": slug})
    assert destroying["phase"] == "Destroying"

    async def gone() -> int:
        return (await api.call("GET", f"/api/registry/companies/{slug}"))[0]

    await eventually(gone, lambda status: status == 404, within=120, what=f"{slug} gone")
    assert await gateway.exocorp(slug) is None
    assert (await ok("GET", "/api/registry/my-companies"))["companies"] == []
    # The slug stays reserved.
    status, taken = await api.call("POST", "/api/registry/companies",
                                   json={"slug": slug, "displayName": "Again"})
    assert (status, taken["code"]) == (409, "slug_taken")

    assert not any(CANARY_SECRET in body for body in seen)
    async with gateway.database.sessionmaker() as s:
        events = (await s.execute(select(AuditEvent).where(AuditEvent.exocorp_id == slug)
                                  .order_by(AuditEvent.id))).scalars().all()
    assert [(e.action, e.outcome.value) for e in events] == [
        ("company.create", "succeeded"), ("draft.save", "succeeded"),
        ("provision", "succeeded"), ("update", "succeeded"), ("rollback", "succeeded"),
        ("stop", "succeeded"), ("destroy", "refused"), ("destroy", "succeeded"),
        ("company.create", "refused")]
    assert all(e.actor_id == signed_up["user"]["id"] for e in events)
    assert all(CANARY_SECRET not in json.dumps(e.details or {}) for e in events)
