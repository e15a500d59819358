"""Registry behaviour on the unit rig (an in-memory API server): reservations that roll back,
drafts with optimistic concurrency, lifecycle refusals, provider credentials that never show
their value."""

from __future__ import annotations

import base64
import logging

import pytest
from sqlalchemy import func, select

from exocorp import names, shards
from exocorp.k8s import ApiError
from exocorp.k8s import resources as r
from exocorp.store import billing
from exocorp.store.schema import AccountState, AuditEvent, ExocorpRecord, User
from exocorp.testing import samples
from tests.unit import test_gateway_support as support
from tests.unit.test_gateway_support import Gateway

pytestmark = pytest.mark.unit
gateway, make_gateway, _gateway_db_template = (support.gateway, support.make_gateway,
                                               support._gateway_db_template)

SECRET_VALUE = "sk-ant-unit-0123456789abcdef"


async def _records(gateway: Gateway) -> list[str]:
    async with gateway.database.sessionmaker() as s:
        return list((await s.execute(select(ExocorpRecord.slug))).scalars())


async def _ready_to_provision(gateway: Gateway, slug: str = "acme") -> None:
    await gateway.signup("ada@example.com")
    await gateway.company(slug, draft=samples.draft("1.0.0"))
    response = await gateway.client.post("/api/registry/provider-secrets", json={
        "provider": "anthropic", "name": "main", "value": SECRET_VALUE})
    assert response.status == 201


async def test_a_failed_object_creation_rolls_the_reservation_back(gateway: Gateway) -> None:
    await gateway.signup("ada@example.com")
    gateway.kube.fail_next["create"] = ApiError(503, "ServiceUnavailable", "try later")
    response = await gateway.client.post("/api/registry/companies",
                                         json={"slug": "acme", "displayName": "Acme"})
    assert response.status == 500
    assert await _records(gateway) == []
    assert (await gateway.client.get("/api/registry/companies/acme")).status == 404
    assert (await gateway.client.post("/api/registry/companies", json={
        "slug": "acme", "displayName": "Acme"})).status == 201
    assert await _records(gateway) == ["acme"]


async def test_an_existing_object_of_that_name_is_a_409_and_reserves_nothing(
        gateway: Gateway) -> None:
    await gateway.signup("ada@example.com")
    await gateway.kube.create(r.EXOCORPS, samples.exocorp("acme", "usr_x"))  # e.g. kubectl
    response = await gateway.client.post("/api/registry/companies",
                                         json={"slug": "acme", "displayName": "Acme"})
    assert response.status == 409
    body = await response.json()
    assert (body["code"], body["errors"][0]["field"]) == ("slug_taken", "slug")
    assert await _records(gateway) == []


@pytest.mark.parametrize(("slug", "status", "code"), [
    ("admin", 409, "slug_taken"),
    ("ab", 400, "invalid_request"),
    ("Acme", 400, "invalid_request"),
    ("acme-", 400, "invalid_request"),
    ("a" * 41, 400, "invalid_request"),
])
async def test_unusable_slugs_are_refused(gateway: Gateway, slug: str, status: int,
                                          code: str) -> None:
    await gateway.signup("ada@example.com")
    response = await gateway.client.post("/api/registry/companies",
                                         json={"slug": slug, "displayName": "X"})
    assert response.status == status
    assert (await response.json())["code"] == code
    assert await _records(gateway) == []
    assert not any(kind == "exocorps" for kind, _, _ in gateway.kube.objects)


async def test_the_second_company_with_a_slug_is_409(gateway: Gateway) -> None:
    await gateway.signup("ada@example.com")
    await gateway.company("acme")
    other = gateway.new_client()
    await other.post("/api/auth/signup", json={"email": "eve@example.com",
                                               "password": "correct horse battery"})
    response = await other.post("/api/registry/companies", json={"slug": "acme",
                                                                 "displayName": "Mine"})
    assert response.status == 409
    detail = await (await gateway.client.get("/api/registry/companies/acme")).json()
    assert detail["displayName"] == "Acme"


async def test_drafts_are_validated_and_versioned(gateway: Gateway) -> None:
    await gateway.signup("ada@example.com")
    await gateway.company("acme")
    bad = samples.draft("1.0.0")
    bad["config"]["teams"].append({"name": "ghosts", "agents": ["nobody"]})
    response = await gateway.client.post("/api/registry/companies/acme/draft",
                                         json={"draft": bad})
    assert response.status == 400
    assert [e["field"] for e in (await response.json())["errors"]] == ["draft.config"]
    assert (await gateway.client.get("/api/registry/companies/acme/draft")).status == 404

    first = await gateway.client.post("/api/registry/companies/acme/draft",
                                      json={"draft": samples.draft("1.0.0")})
    assert (first.status, (await first.json())["version"]) == (201, 1)
    second = await gateway.client.post("/api/registry/companies/acme/draft", json={
        "draft": samples.draft("1.1.0"), "baseVersion": 1})
    assert (second.status, (await second.json())["version"]) == (200, 2)
    stale = await gateway.client.post("/api/registry/companies/acme/draft", json={
        "draft": samples.draft(None), "baseVersion": 1})
    assert stale.status == 409
    assert ((await stale.json())["code"], (await stale.json())["currentVersion"]) == (
        "stale_version", 2)
    saved = await (await gateway.client.get("/api/registry/companies/acme/draft")).json()
    assert (saved["version"], saved["draft"]["version"]) == (2, "1.1.0")


async def test_provision_refusals_say_what_is_missing(gateway: Gateway) -> None:
    await gateway.signup("ada@example.com")
    await gateway.company("acme")
    response = await gateway.client.post("/api/registry/companies/acme/provision")
    assert (response.status, (await response.json())["code"]) == (409, "draft_missing")
    await gateway.client.post("/api/registry/companies/acme/draft",
                              json={"draft": samples.draft("1.0.0")})
    response = await gateway.client.post("/api/registry/companies/acme/provision")
    assert (response.status, (await response.json())["code"]) == (409, "provider_missing")
    await gateway.client.post("/api/registry/provider-secrets", json={
        "provider": "anthropic", "name": "main", "value": SECRET_VALUE})
    async with gateway.database.sessionmaker.begin() as s:
        user = (await s.execute(select(User))).scalar_one()
        account = await billing.get_account_for_user(s, user.id)
        await billing.set_account_state(s, account.id, AccountState.SUSPENDED)
    response = await gateway.client.post("/api/registry/companies/acme/provision")
    assert (response.status, (await response.json())["code"]) == (409, "billing_inactive")
    detail = await (await gateway.client.get("/api/registry/companies/acme")).json()
    assert detail["phase"] == "Draft"
    async with gateway.database.sessionmaker() as s:
        outcomes = (await s.execute(select(AuditEvent.outcome).where(
            AuditEvent.action == "provision"))).scalars().all()
    assert [o.value for o in outcomes] == ["refused"] * 3


async def test_pause_needs_a_reason_and_destroy_the_slug(gateway: Gateway) -> None:
    await _ready_to_provision(gateway)
    for body in (None, {}, {"reason": "   "}):
        response = await gateway.client.post("/api/registry/companies/acme/pause", json=body)
        assert response.status == 400, body
        assert (await response.json())["code"] == "reason_required"
    for body in (None, {}, {"confirm": "ACME"}, {"confirm": "other"}):
        response = await gateway.client.delete("/api/registry/companies/acme", json=body)
        assert response.status == 400, body
        assert (await response.json())["code"] == "confirmation_mismatch"
    stray = await gateway.client.post("/api/registry/companies/acme/stop",
                                      json={"version": "1.1.0"})
    assert stray.status == 400
    assert (await (await gateway.client.get("/api/registry/companies/acme")).json())[
        "phase"] == "Draft"


async def test_queries_are_validated(gateway: Gateway) -> None:
    await gateway.signup("ada@example.com")
    await gateway.company("acme")
    response = await gateway.client.get("/api/registry/companies/acme/update-handshake",
                                        params={"channel": "nightly"})
    assert (response.status, (await response.json())["errors"][0]["field"]) == (400, "channel")
    response = await gateway.client.get("/api/registry/company-releases/current",
                                        params={"channel": "beta"})
    assert (response.status, (await response.json())["code"]) == (404, "release_not_found")


# -- provider credentials ------------------------------------------------------------------------


async def test_credentials_show_metadata_only_and_rotate(
        gateway: Gateway, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    await gateway.signup("ada@example.com")
    created = await gateway.client.post("/api/registry/provider-secrets", json={
        "provider": "anthropic", "name": "main", "value": SECRET_VALUE})
    first = await created.json()
    assert created.status == 201
    assert set(first) == {"id", "provider", "name", "fingerprint", "createdAt", "boundExocorps",
                          "rotated"}
    stored = gateway.kube.objects[("secrets", "exocorp-system", first["id"])]
    assert base64.b64decode(stored["data"]["value"]).decode() == SECRET_VALUE
    rotated = await gateway.client.post("/api/registry/provider-secrets", json={
        "provider": "anthropic", "name": "main", "value": SECRET_VALUE + "-2"})
    second = await rotated.json()
    assert (rotated.status, second["rotated"], second["id"]) == (200, True, first["id"])
    assert second["fingerprint"] != first["fingerprint"]
    assert "rotatedAt" in second
    stored = gateway.kube.objects[("secrets", "exocorp-system", first["id"])]
    assert base64.b64decode(stored["data"]["value"]).decode() == SECRET_VALUE + "-2"
    listing = await (await gateway.client.get("/api/registry/provider-secrets")).text()
    mismatch = await gateway.client.post("/api/registry/provider-secrets", json={
        "provider": "openai", "name": "main", "value": "sk-other"})
    assert (mismatch.status, (await mismatch.json())["code"]) == (409, "provider_mismatch")
    everything = listing + repr(caplog.records) + " ".join(r.getMessage() for r in caplog.records)
    async with gateway.database.sessionmaker() as s:
        events = (await s.execute(select(AuditEvent))).scalars().all()
    everything += repr([(e.details, e.error, e.reason) for e in events])
    assert SECRET_VALUE not in everything
    assert base64.b64encode(SECRET_VALUE.encode()).decode() not in everything


async def test_deleting_a_credential(gateway: Gateway) -> None:
    await _ready_to_provision(gateway)
    secret_id = (await (await gateway.client.get("/api/registry/provider-secrets")).json())[
        "secrets"][0]["id"]
    stranger = gateway.new_client()
    await stranger.post("/api/auth/signup", json={"email": "eve@example.com",
                                                  "password": "correct horse battery"})
    assert (await stranger.delete(f"/api/registry/provider-secrets/{secret_id}")).status == 404
    assert (await gateway.client.post("/api/registry/companies/acme/provision")).status == 202
    listed = await (await gateway.client.get("/api/registry/provider-secrets")).json()
    assert listed["secrets"][0]["boundExocorps"] == ["acme"]
    in_use = await gateway.client.delete(f"/api/registry/provider-secrets/{secret_id}")
    assert in_use.status == 409
    body = await in_use.json()
    assert (body["code"], body["boundExocorps"]) == ("credential_in_use", ["acme"])
    assert ("secrets", "exocorp-system", secret_id) in gateway.kube.objects
    assert (await gateway.client.post("/api/registry/companies/acme/stop")).status == 202
    assert (await gateway.client.delete(
        f"/api/registry/provider-secrets/{secret_id}")).status == 204
    assert ("secrets", "exocorp-system", secret_id) not in gateway.kube.objects
    assert (await (await gateway.client.get("/api/registry/provider-secrets")).json()) == {
        "secrets": []}
    assert (await gateway.client.delete(
        f"/api/registry/provider-secrets/{secret_id}")).status == 404


async def test_bindings_follow_the_draft_and_the_account(gateway: Gateway) -> None:
    await gateway.signup("ada@example.com")
    await gateway.company("acme", draft=samples.draft("1.0.0"))
    bindings = await (await gateway.client.get("/api/registry/companies/acme/bindings")).json()
    assert [(b["provider"], b["required"], b["status"]) for b in bindings["bindings"]] == [
        ("anthropic", True, "missing"), ("openai", False, "missing")]
    summary = await (await gateway.client.get("/api/dashboard/summary")).json()
    assert summary["providerCoverage"]["configured"] == 0
    assert summary["providerCoverage"]["missing"] == [{"exocorpId": "acme",
                                                       "provider": "anthropic"}]
    await gateway.client.post("/api/registry/provider-secrets", json={
        "provider": "openai", "name": "oai", "value": "sk-o"})
    await gateway.client.post("/api/registry/provider-secrets", json={
        "provider": "anthropic", "name": "main", "value": SECRET_VALUE})
    bindings = await (await gateway.client.get("/api/registry/companies/acme/bindings")).json()
    assert [(b["provider"], b["status"], b["secretName"]) for b in bindings["bindings"]] == [
        ("anthropic", "bound", "main"), ("openai", "bound", "oai")]
    summary = await (await gateway.client.get("/api/dashboard/summary")).json()
    assert (summary["providerCoverage"]["configured"],
            summary["providerCoverage"]["required"]) == (1, 1)
    async with gateway.database.sessionmaker() as s:
        assert await s.scalar(select(func.count()).select_from(ExocorpRecord)) == 1


async def test_new_companies_are_spread_over_the_configured_operator_shards(
        make_gateway: support.GatewayFactory) -> None:
    gateway = await make_gateway(shards=("default", "blue"))
    await gateway.signup("ada@example.com")
    seen: dict[str, str | None] = {}
    for i in range(12):
        slug = f"shard-{i}"
        assert (await gateway.client.post("/api/registry/companies", json={
            "slug": slug, "displayName": "Sharded"})).status == 201
        labels = (await gateway.kube.get(r.EXOCORPS, slug))["metadata"].get("labels") or {}
        seen[slug] = labels.get(names.LABEL_SHARD)
    assert seen == {slug: shards.assign(slug, ("default", "blue")) for slug in seen}
    assert set(seen.values()) == {None, "blue"}  # both shards get some; default means no label
