"""A platform owner drives a real exocorp through every admin action over HTTP, against the real
operator and control plane, on both databases; sees its runtime (pods on nodes, events), the
fleet statistics and the cluster's capacity; and the audit trail lists exactly the actions taken,
refusals included, for the platform owner and for the exocorp's owner."""

from __future__ import annotations

import json
from typing import Any

import pytest

from exocorp.api_gateway.main import bootstrap_platform_owner
from exocorp.security import PasswordHasher
from exocorp.testing.waiting import eventually
from tests.plugins.gateway_cluster import (
    PASSWORD,
    Api,
    GatewayUnderTest,
    sample_draft,
    unique_slug,
)
from tests.plugins.platform import CANARY_SECRET

pytestmark = pytest.mark.integration
WITHIN = 180


async def platform_owner(gateway: GatewayUnderTest) -> Api:
    await bootstrap_platform_owner(gateway.database, "root@example.com", PASSWORD,
                                   hasher=PasswordHasher.for_tests())
    admin = gateway.client()
    await admin.ok("POST", "/api/auth/login",
                   json={"email": "root@example.com", "password": PASSWORD})
    return admin


class Admin:
    """The platform owner's view of one exocorp."""

    def __init__(self, api: Api, company: str) -> None:
        self.api = api
        self.company = company
        self.seen: list[str] = []

    async def act(self, expect: int, **body: Any) -> Any:
        status, answer = await self.api.call(
            "POST", f"/api/admin/companies/{self.company}/actions", json=body)
        self.seen.append(json.dumps(answer))
        assert status == expect, f"{body}: {status} {answer}"
        return answer

    async def details(self) -> Any:
        return await self.api.ok("GET", f"/api/admin/companies/{self.company}/details")

    async def wait(self, phase: str, *, settled: bool = True) -> Any:
        def reached(body: Any) -> bool:
            observed = (body.get("observedGeneration") or 0) >= (body.get("generation") or 0)
            return bool(body["phase"] == phase and observed
                        and (not settled or not body["rolloutInProgress"]))

        return await eventually(self.details, reached, within=WITHIN,
                                what=f"{self.company} {phase} (admin view)")


async def test_a_platform_owner_drives_an_exocorp_through_every_action(
        gateway: GatewayUnderTest) -> None:
    owner = gateway.client()
    signed = await owner.signup()
    slug = unique_slug("admin")
    await owner.ok("POST", "/api/registry/companies", 201,
                   json={"slug": slug, "displayName": "Admin Co",
                         "draft": sample_draft("1.0.0")})
    await owner.ok("POST", "/api/registry/provider-secrets", 201,
                   json={"provider": "anthropic", "name": "main", "value": CANARY_SECRET})
    admin = Admin(await platform_owner(gateway), slug)

    listed = await admin.api.ok("GET", "/api/admin/companies")
    mine = next(c for c in listed["companies"] if c["id"] == slug)
    assert (mine["owner"]["email"], mine["phase"], mine["registered"]) == (
        signed["user"]["email"], "Draft", True)
    assert "latestJob" not in mine

    assert (await admin.act(409, action="pause", reason="too early"))["code"] == "invalid_phase"
    accepted = await admin.act(202, action="provision", reason="first start")
    assert accepted["phase"] == "Provisioning"
    running = await admin.wait("Running")
    assert (running["version"], running["installedVersion"], running["channel"]) == (
        "1.0.0", "1.0.0", "stable")
    assert (running["latestJob"]["number"], running["latestJob"]["action"],
            running["latestJob"]["outcome"]) == (1, "provision", "Succeeded")
    assert running["lastReconcileSeconds"] >= 0

    # Its runtime, straight from the cluster: healthy components, pods on nodes, events.
    runtime = await eventually(
        lambda: admin.api.ok("GET", f"/api/admin/companies/{slug}/runtime"),
        lambda body: len(body["pods"]) == 4 and all(p["ready"] for p in body["pods"]),
        within=WITHIN, what=f"{slug} pods ready")
    assert {c["name"]: c["health"] for c in runtime["components"]} == {
        "portal": "healthy", "app": "healthy", "agents": "healthy"}
    assert runtime["namespace"] == f"exo-{slug}"
    assert all(p["node"] for p in runtime["pods"])
    assert runtime["events"], "no events about the exocorp or its namespace"
    assert runtime["problems"] == []

    stats = await admin.api.ok("GET", "/api/admin/runtime-stats")
    assert stats["byPhase"]["Running"] >= 1
    assert stats["podsReady"] >= 4
    assert stats["reconcile"]["samples"] >= 1

    placed = await admin.api.ok("GET", "/api/runtime/execution-providers/state")
    assert placed["scope"] == "fleet"
    assert placed["nodesReady"] >= 1
    assert any(slug in node["exocorps"] for node in placed["nodes"])
    assert placed["capacity"]["cpuRequestedMillicores"] > 0
    own = await owner.ok("GET", "/api/runtime/execution-providers/state")
    assert own["scope"] == "own"
    assert {e for node in own["nodes"] for e in node["exocorps"]} == {slug}

    assert (await admin.act(400, action="pause"))["code"] == "reason_required"
    paused = await admin.act(202, action="pause", reason="maintenance window")
    assert paused["phase"] == "Paused"
    await admin.wait("Paused")
    agents = await eventually(
        lambda: admin.api.ok("GET", f"/api/admin/companies/{slug}/runtime"),
        lambda body: {c["name"]: c["health"] for c in body["components"]}.get(
            "agents") == "stopped", within=WITHIN, what=f"{slug} agents stopped")
    assert {c["name"]: c["health"] for c in agents["components"]}["portal"] == "healthy"

    await admin.act(202, action="resume")
    await admin.wait("Running")

    await admin.act(202, action="update", version="1.1.0", reason="newer")
    updated = await admin.wait("Running")
    assert (updated["version"], updated["latestJob"]["action"]) == ("1.1.0", "update")

    await admin.act(202, action="rollback", revision=1, reason="back to the first job")
    rolled = await admin.wait("Running")
    assert (rolled["version"], rolled["latestJob"]["action"],
            rolled["lastAction"]["targetRevision"]) == (
        "1.0.0", "rollback", running["latestJob"]["name"])

    await admin.act(202, action="restart")
    restarted = await admin.wait("Running")
    assert restarted["latestJob"]["action"] == "restart"

    await admin.act(202, action="reprovision", reason="rebuild")
    rebuilt = await admin.wait("Running")
    assert rebuilt["latestJob"]["action"] == "reprovision"

    await admin.act(202, action="stop")
    stopped = await admin.wait("Stopped")
    assert {d["routing"] for d in stopped["domains"]} == {"detached"}

    assert (await admin.act(400, action="destroy", confirm="wrong"))["code"] == \
        "confirmation_mismatch"
    destroying = await admin.act(202, action="destroy", confirm=slug, reason="offboarding")
    assert destroying["phase"] == "Destroying"

    async def gone() -> int:
        return (await admin.api.call("GET", f"/api/admin/companies/{slug}/details"))[0]

    await eventually(gone, lambda status: status == 404, within=WITHIN, what=f"{slug} gone")

    # The audit trail: exactly the actions taken, in order, with their outcomes.
    trail = await admin.api.ok("GET", f"/api/admin/audit?company={slug}&order=asc")
    root_id = (await admin.api.ok("GET", "/api/auth/me"))["user"]["id"]
    expected = [
        ("company.create", "succeeded", signed["user"]["id"]),
        ("pause", "refused", root_id), ("provision", "succeeded", root_id),
        ("pause", "refused", root_id), ("pause", "succeeded", root_id),
        ("resume", "succeeded", root_id), ("update", "succeeded", root_id),
        ("rollback", "succeeded", root_id), ("restart", "succeeded", root_id),
        ("reprovision", "succeeded", root_id), ("stop", "succeeded", root_id),
        ("destroy", "refused", root_id), ("destroy", "succeeded", root_id)]
    assert [(e["action"], e["outcome"], e["actor"]["id"]) for e in trail["events"]] == expected
    by_action = {(e["action"], e["outcome"]): e for e in trail["events"]}
    assert by_action[("pause", "succeeded")]["reason"] == "maintenance window"
    assert by_action[("update", "succeeded")]["details"]["toVersion"] == "1.1.0"
    assert by_action[("rollback", "succeeded")]["details"]["targetRevision"] == \
        running["latestJob"]["name"]
    assert all(e["details"]["via"] == "admin" for e in trail["events"][1:])
    assert all(e["requestId"] for e in trail["events"])
    assert by_action[("destroy", "refused")]["error"].startswith("destroy is irreversible")
    # The owner reads the same story in the exocorp's own trail (it outlives the exocorp for
    # the platform owner; the owner's view needs the exocorp, so read it from the admin trail's
    # filter by actor instead).
    mine_only = await admin.api.ok("GET",
                                   f"/api/admin/audit?actor={signed['user']['id']}&order=asc")
    assert [e["action"] for e in mine_only["events"]] == [
        "auth.signup", "company.create", "provider_secret.save"]
    assert not any(CANARY_SECRET in text for text in admin.seen)
    assert CANARY_SECRET not in json.dumps(trail)


async def test_an_owner_reads_admin_actions_in_their_exocorps_trail(
        gateway: GatewayUnderTest) -> None:
    owner = gateway.client()
    await owner.signup()
    slug = unique_slug("trail")
    await owner.ok("POST", "/api/registry/companies", 201,
                   json={"slug": slug, "displayName": "Trail Co"})
    await owner.ok("POST", f"/api/registry/companies/{slug}/draft", 201,
                   json={"draft": sample_draft("1.0.0")})
    admin = Admin(await platform_owner(gateway), slug)
    await admin.act(409, action="stop", reason="nothing runs yet")
    status, refused = await owner.call("POST", f"/api/registry/companies/{slug}/provision")
    assert (status, refused["code"]) == (409, "provider_missing")
    trail = await owner.ok("GET", f"/api/registry/companies/{slug}/audit?order=asc")
    assert [(e["action"], e["outcome"], e["actor"].get("platformOwner", False))
            for e in trail["events"]] == [
        ("company.create", "succeeded", False), ("draft.save", "succeeded", False),
        ("stop", "refused", True), ("provision", "refused", False)]
    assert "name" not in trail["events"][2]["actor"]  # the platform owner's address stays hidden
    assert trail["events"][2]["reason"] == "nothing runs yet"
    assert trail["events"][3]["error"]
    await admin.act(202, action="destroy", confirm=slug)


async def test_the_operators_automatic_rollback_is_in_the_trail_as_a_system_action(
        gateway: GatewayUnderTest) -> None:
    owner = gateway.client()
    await owner.signup()
    slug = unique_slug("autorb")
    await owner.ok("POST", "/api/registry/companies", 201,
                   json={"slug": slug, "displayName": "Crashy Co",
                         "draft": sample_draft("1.0.0")})
    await owner.ok("POST", "/api/registry/provider-secrets", 201,
                   json={"provider": "anthropic", "name": "main", "value": CANARY_SECRET})
    admin = Admin(await platform_owner(gateway), slug)
    await admin.act(202, action="provision")
    await admin.wait("Running")
    # 1.2.0 (canary) crash-loops: the operator rolls back to 1.0.0 by itself.
    await admin.act(202, action="update", version="1.2.0", channel="canary", reason="try canary")

    async def trail() -> Any:
        return await admin.api.ok("GET", f"/api/admin/audit?company={slug}&order=asc")

    recorded = await eventually(
        trail, lambda body: any(e["actor"]["kind"] == "system" for e in body["events"]),
        within=WITHIN, what=f"{slug} automatic rollback recorded")
    assert [(e["action"], e["outcome"], e["actor"]["kind"]) for e in recorded["events"]] == [
        ("company.create", "succeeded", "user"), ("provision", "succeeded", "user"),
        ("update", "succeeded", "user"), ("rollback", "succeeded", "system")]
    automatic = recorded["events"][-1]
    assert automatic["actor"]["id"] == "system:exocorp-operator"
    assert automatic["details"]["automatic"] is True
    assert automatic["details"]["version"] == "1.0.0"
    assert "automatic rollback" in automatic["reason"]
    details = await admin.wait("Running")
    assert (details["version"], details["history"][1]["outcome"]) == ("1.0.0", "Failed")
    await admin.act(202, action="destroy", confirm=slug)
