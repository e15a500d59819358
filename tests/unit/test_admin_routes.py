"""The admin API on the gateway's unit fixtures: who may call it, the fleet list and details,
lifecycle actions with their rules (each audited, refusals included), runtime statistics, one
exocorp's runtime and the execution-provider state."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from exocorp import names
from exocorp.k8s import resources as r
from exocorp.store import drafts, tokens
from exocorp.store.schema import AuditEvent, User
from exocorp.testing import samples
from tests.plugins.gateway import Gateway
from tests.plugins.gateway_admin import (
    add_member,
    generation,
    mark_running,
    platform_owner,
    provisioned,
    running_status,
    set_status,
    user,
)

pytestmark = pytest.mark.unit

ADMIN_GETS = ("/api/admin/companies", "/api/admin/companies/acme/details",
              "/api/admin/companies/acme/runtime", "/api/admin/runtime-stats",
              "/api/admin/audit")


async def _events(gateway: Gateway, **where: Any) -> list[AuditEvent]:
    query = select(AuditEvent).order_by(AuditEvent.id)
    for column, value in where.items():
        query = query.where(getattr(AuditEvent, column) == value)
    async with gateway.database.sessionmaker() as s:
        return list((await s.execute(query)).scalars())


async def test_only_platform_owners_reach_the_admin_api(gateway: Gateway) -> None:
    await gateway.signup("owner@example.com")
    await gateway.company("acme")
    admin = await platform_owner(gateway)
    anonymous = gateway.new_client()
    for path in ADMIN_GETS:
        assert (await admin.get(path)).status == 200, path
        assert (await anonymous.get(path)).status == 401, path
        refused = await gateway.client.get(path)
        assert refused.status == 403, path
        assert (await refused.json())["code"] == "platform_owner_required"
    # An agent approved by a platform owner acts for them, but never with the admin role.
    async with gateway.database.sessionmaker.begin() as s:
        root = (await s.execute(select(User).where(User.platform_owner))).scalar_one()
        draft = await drafts.create_draft(s, config={})
        issued = await tokens.register_client(s, name="agent", draft_id=draft.id,
                                              now=gateway.clock())
        await tokens.approve_client(s, issued.client.id, user_id=root.id)
        bearer = await tokens.redeem_draft_token(s, issued.secret.reveal(), now=gateway.clock())
    headers = {"Authorization": f"Bearer {bearer.secret.reveal()}"}
    for path in ADMIN_GETS:
        assert (await anonymous.get(path, headers=headers)).status == 403, path
    action = await anonymous.post("/api/admin/companies/acme/actions", headers=headers,
                                  json={"action": "stop"})
    assert action.status == 403


async def test_the_fleet_list_shows_ownership_job_release_and_phase(gateway: Gateway) -> None:
    owner = await gateway.signup("owner@example.com")
    await gateway.company("acme", draft=samples.draft("1.0.0"))
    await gateway.company("beta")
    member, member_id = await user(gateway, "bob@example.com")
    await add_member(gateway, "acme", member_id)
    mark_running(gateway, "acme", provisioned(
        samples.draft("1.0.0")["config"],
        lastAction={"action": "provision", "requestedBy": "user:x", "at": "2030-01-01T12:00:30Z"}))
    # An Exocorp a cluster admin made with kubectl has no platform record.
    made = await gateway.kube.create(r.EXOCORPS, samples.exocorp("handmade", "acct-9"))
    gateway.cache.observe_exocorp(made)
    admin = await platform_owner(gateway)

    body = await (await admin.get("/api/admin/companies")).json()
    assert [c["id"] for c in body["companies"]] == ["acme", "beta", "handmade"]
    assert (body["total"], body["byPhase"]["Running"], body["byPhase"]["Draft"]) == (3, 1, 2)
    acme = body["companies"][0]
    assert acme["owner"] == {"id": owner["user"]["id"], "email": "owner@example.com"}
    assert [(m["email"], m["role"]) for m in acme["members"]] == [
        ("owner@example.com", "owner"), ("bob@example.com", "member")]
    assert (acme["phase"], acme["ready"], acme["channel"], acme["version"],
            acme["installedVersion"], acme["registered"]) == (
        "Running", True, "stable", "1.0.0", "1.0.0", True)
    assert (acme["latestJob"]["number"], acme["latestJob"]["action"],
            acme["latestJob"]["outcome"]) == (1, "provision", "Succeeded")
    assert acme["lastUpdate"] == "2030-01-01T12:01:00Z"  # the job ended after the action
    handmade = body["companies"][2]
    assert (handmade["registered"], handmade["owner"], handmade["members"]) == (
        False, {"id": "acct-9"}, [])

    running = await (await admin.get("/api/admin/companies?phase=Running")).json()
    assert [c["id"] for c in running["companies"]] == ["acme"]
    by_email = await (await admin.get("/api/admin/companies?owner=OWNER@example.com")).json()
    assert [c["id"] for c in by_email["companies"]] == ["acme", "beta"]
    by_id = await (await admin.get(f"/api/admin/companies?owner={owner['user']['id']}")).json()
    assert [c["id"] for c in by_id["companies"]] == ["acme", "beta"]
    nobody = await (await admin.get("/api/admin/companies?owner=nobody@example.com")).json()
    assert nobody["companies"] == []
    bad = await admin.get("/api/admin/companies?phase=Sleeping")
    assert bad.status == 400
    assert [e["field"] for e in (await bad.json())["errors"]] == ["phase"]
    assert (await admin.get("/api/admin/companies?colour=red")).status == 400
    assert member is not None


async def test_details_show_everything_about_one_exocorp(gateway: Gateway) -> None:
    await gateway.signup("owner@example.com")
    await gateway.company("acme", draft=samples.draft("1.0.0"))
    admin = await platform_owner(gateway)
    detail = await (await admin.get("/api/admin/companies/acme/details")).json()
    assert (detail["id"], detail["phase"], detail["runtimeNamespace"], detail["draft"]["version"],
            detail["registered"]) == ("acme", "Draft", "exo-acme", 1, True)
    assert [(e["action"], e["outcome"], e["actor"]["name"]) for e in detail["recentAudit"]] == [
        ("company.create", "succeeded", "owner@example.com")]
    for missing in ("no-such-co", "Bad_Id", "x" * 70):
        response = await admin.get(f"/api/admin/companies/{missing}/details")
        assert response.status == 404, missing
        assert (await admin.get(f"/api/admin/companies/{missing}/runtime")).status == 404


async def _act(client: Any, body: Any, company: str = "acme") -> tuple[int, Any]:
    response = await client.post(f"/api/admin/companies/{company}/actions", json=body)
    return response.status, await response.json()


async def test_admin_actions_follow_the_lifecycle_rules_and_are_audited(
        gateway: Gateway) -> None:
    await gateway.signup("owner@example.com")
    await gateway.company("acme", draft=samples.draft("1.0.0"))
    saved = await gateway.client.post("/api/registry/provider-secrets", json={
        "provider": "anthropic", "name": "main", "value": "sk-test-value"})
    assert saved.status == 201
    admin = await platform_owner(gateway)

    status, body = await _act(admin, {"action": "provision", "reason": "ops"})
    assert (status, body["phase"], body["company"]["phase"]) == (202, "Provisioning",
                                                                 "Provisioning")
    mark_running(gateway, "acme")
    assert (await _act(admin, {"action": "pause"}))[1]["code"] == "reason_required"
    assert (await _act(admin, {"action": "pause", "reason": "  "}))[0] == 400
    status, body = await _act(admin, {"action": "pause", "reason": "abuse report"})
    assert (status, body["phase"], body["company"]["pauseReason"]) == (
        202, "Paused", "abuse report")
    status, body = await _act(admin, {"action": "pause", "reason": "again"})
    assert (status, body["code"]) == (409, "invalid_phase")
    status, body = await _act(admin, {"action": "resume"})
    assert (status, body["phase"]) == (202, "Starting")
    mark_running(gateway, "acme")
    status, body = await _act(admin, {"action": "rollback", "revision": 7})
    assert (status, body["code"]) == (409, "revision_not_found")
    status, body = await _act(admin, {"action": "pause", "reason": "x", "version": "1.1.0"})
    assert (status, body["code"]) == (400, "invalid_request")
    status, body = await _act(admin, {"action": "explode"})
    assert (status, [e["field"] for e in body["errors"]]) == (400, ["action"])
    assert (await _act(admin, {"action": "stop", "force": True}))[0] == 400
    response = await admin.post("/api/admin/companies/acme/actions", data="{not json",
                                headers={"Content-Type": "application/json"})
    assert response.status == 400
    status, body = await _act(admin, {"action": "destroy", "confirm": "ACME"})
    assert (status, body["code"]) == (400, "confirmation_mismatch")
    status, body = await _act(admin, {"action": "stop"}, company="no-such-co")
    assert status == 404
    # A user who is not a platform owner is refused, and that is recorded too.
    status, body = await _act(gateway.client, {"action": "stop", "reason": "mine"})
    assert (status, body["code"]) == (403, "platform_owner_required")
    status, body = await _act(admin, {"action": "destroy", "confirm": "acme"})
    assert (status, body["phase"]) == (202, "Destroying")

    events = await _events(gateway)
    admin_events = [(e.action, e.outcome.value, e.reason, (e.details or {}).get("via"))
                    for e in events if e.exocorp_id in ("acme", "no-such-co")
                    and (e.details or {}).get("via") == "admin"]
    assert admin_events == [
        ("provision", "succeeded", "ops", "admin"),
        ("pause", "refused", None, "admin"),
        ("pause", "refused", "  ", "admin"),
        ("pause", "succeeded", "abuse report", "admin"),
        ("pause", "refused", "again", "admin"),
        ("resume", "succeeded", None, "admin"),
        ("rollback", "refused", None, "admin"),
        ("pause", "refused", "x", "admin"),
        ("stop", "refused", None, "admin"),
        ("destroy", "refused", None, "admin"),
        ("stop", "refused", None, "admin"),
        ("stop", "refused", None, "admin"),
        ("destroy", "succeeded", None, "admin"),
    ]
    # Requests that never named a valid action are in the platform trail only, not the
    # exocorp's (its owner reads that one).
    unnamed = [(e.exocorp_id, (e.details or {}).get("exocorpId")) for e in events
               if e.action == "admin.action"]
    assert unnamed == [(None, "acme"), (None, "acme")]
    assert "admin.action" not in {e.action for e in events if e.exocorp_id == "acme"}
    refused_by_user = [e for e in events if e.outcome.value == "refused"
                       and e.error == "this needs the platform-owner role"]
    assert [e.action for e in refused_by_user] == ["stop"]
    provision = next(e for e in events if e.action == "provision")
    assert provision.details is not None
    assert provision.details["fromPhase"] == "Draft"
    assert provision.request_id


async def test_runtime_stats_sum_the_fleet(gateway: Gateway) -> None:
    await gateway.signup("owner@example.com")
    for name in ("acme", "beta", "gamma"):
        await gateway.company(name)
    failed_job = {"name": "rev-2", "number": 2, "version": "1.2.0", "action": "update",
                  "outcome": "Failed", "createdAt": "2030-01-01T12:00:00Z"}
    ok_job = {"name": "rev-1", "number": 1, "version": "1.0.0", "action": "provision",
              "outcome": "Succeeded", "createdAt": "2030-01-01T11:00:00Z"}
    mark_running(gateway, "acme", provisioned(), restarts=3, reconcile=0.5)
    beta = running_status(generation(gateway, "beta"), reconcile=2.0,
                          history=[failed_job, ok_job])
    beta["failedRevisionsSinceSuccess"] = 1
    beta["lastReconcileTime"] = "2030-01-01T11:50:00Z"
    set_status(gateway, "beta", beta, **provisioned())
    admin = await platform_owner(gateway)
    stats = await (await admin.get("/api/admin/runtime-stats")).json()
    assert (stats["total"], stats["byPhase"]["Running"], stats["byPhase"]["Draft"]) == (3, 2, 1)
    assert (stats["podsReady"], stats["podsTotal"], stats["podsAvailable"]) == (6, 6, 6)
    assert (stats["restarts"], stats["failedRevisions"], stats["failingExocorps"]) == (3, 1, 1)
    assert stats["rolloutsInProgress"] == 0
    assert stats["reconcile"] == {
        "samples": 2, "meanSeconds": 1.25, "p50Seconds": 0.5, "p95Seconds": 2.0,
        "maxSeconds": 2.0, "slowest": "beta", "oldestReconcileAgeSeconds": 600.0}
    assert stats["observedAt"] == "2030-01-01T12:00:00Z"


async def test_runtime_of_one_exocorp_shows_components_pods_and_events(
        gateway: Gateway) -> None:
    await gateway.signup("owner@example.com")
    await gateway.company("acme")
    status = running_status(generation(gateway, "acme"), restarts=4)
    status["components"][1].update({"ready": 1, "available": 1})
    set_status(gateway, "acme", status, **provisioned())
    for name, component, waiting, restarts in (("portal-a", "portal", None, 0),
                                               ("agents-a", "agents", None, 0),
                                               ("agents-b", "agents", "CrashLoopBackOff", 4)):
        await gateway.kube.create(r.PODS, {
            "metadata": {"name": name, "labels": {names.LABEL_EXOCORP: "acme",
                                                  names.LABEL_COMPONENT: component}},
            "spec": {"nodeName": "node-1", "containers": [{"name": "main"}]},
            "status": {"phase": "Running", "containerStatuses": [
                {"name": "main", "restartCount": restarts,
                 "state": {"waiting": {"reason": waiting}} if waiting else {"running": {}}}]},
        }, "exo-acme")
    await gateway.kube.create(r.EVENTS, {
        "metadata": {"name": "ev1"}, "type": "Warning", "reason": "BackOff",
        "message": "Back-off restarting failed container",
        "involvedObject": {"kind": "Pod", "name": "agents-b"},
        "lastTimestamp": "2030-01-01T11:58:00Z", "count": 5}, "exo-acme")
    admin = await platform_owner(gateway)
    runtime = await (await admin.get("/api/admin/companies/acme/runtime")).json()
    assert (runtime["namespace"], runtime["phase"], runtime["restarts"]) == (
        "exo-acme", "Running", 4)
    assert {c["name"]: (c["health"], c["pods"]) for c in runtime["components"]} == {
        "portal": ("healthy", 1), "agents": ("degraded", 2)}
    assert [(p["name"], p.get("waitingReason", None))
            for p in runtime["pods"]] == [
        ("agents-a", None), ("agents-b", "CrashLoopBackOff"), ("portal-a", None)]
    assert [(e["reason"], e["object"], e["count"]) for e in runtime["events"]] == [
        ("BackOff", "Pod/agents-b", 5)]
    assert runtime["problems"] == []


async def test_execution_provider_state_scopes_placements_by_caller(gateway: Gateway) -> None:
    await gateway.signup("owner@example.com")
    await gateway.company("acme")
    other, _ = await user(gateway, "eve@example.com")
    await gateway.company("evil", client=other)
    await gateway.kube.create(r.NODES, {
        "metadata": {"name": "node-1"},
        "status": {"allocatable": {"cpu": "2", "memory": "4Gi", "pods": "110"},
                   "conditions": [{"type": "Ready", "status": "True"}]}})
    for exocorp in ("acme", "evil"):
        await gateway.kube.create(r.PODS, {
            "metadata": {"name": f"{exocorp}-portal",
                         "labels": {names.LABEL_EXOCORP: exocorp}},
            "spec": {"nodeName": "node-1", "containers": [
                {"name": "c", "resources": {"requests": {"cpu": "250m", "memory": "1Gi"}}}]},
            "status": {"phase": "Running"}}, f"exo-{exocorp}")
    admin = await platform_owner(gateway)
    fleet = await (await admin.get("/api/runtime/execution-providers/state")).json()
    assert (fleet["scope"], fleet["health"], fleet["nodesReady"], fleet["exocorpsPlaced"]) == (
        "fleet", "healthy", 1, 2)
    assert fleet["nodes"][0]["exocorps"] == ["acme", "evil"]
    assert (fleet["capacity"]["cpuAllocatableMillicores"],
            fleet["capacity"]["cpuRequestedMillicores"],
            fleet["capacity"]["memoryRequestedBytes"]) == (2000, 500, 2 * 2**30)
    own = await (await gateway.client.get("/api/runtime/execution-providers/state")).json()
    assert (own["scope"], own["exocorpsPlaced"], own["nodes"][0]["exocorps"]) == (
        "own", 1, ["acme"])
    assert own["capacity"] == fleet["capacity"]
    assert (await gateway.new_client().get(
        "/api/runtime/execution-providers/state")).status == 401
