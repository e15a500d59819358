"""The owner's manifest preview on the unit rig: the objects the operator would apply, from the
draft before provisioning and from the spec afterwards, owner only, never a credential value,
as JSON or as a YAML stream."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from exocorp import names
from exocorp.testing import samples
from tests.plugins.canary import CANARY_SECRET, needles
from tests.plugins.gateway import Gateway

pytestmark = pytest.mark.unit

ACME = "/api/registry/companies/acme"
MANIFEST = ACME + "/manifest"


async def _call(client: Any, method: str, path: str, expect: int, **kwargs: Any) -> Any:
    async with client.request(method, path, **kwargs) as response:
        body = await response.json() if response.content_type.endswith("json") else None
        assert response.status == expect, (method, path, response.status, body)
        return body


async def _owner_with_draft(gateway: Gateway) -> None:
    await gateway.signup("ada@example.com")
    await gateway.company("acme", draft=samples.draft("1.0.0"))
    await _call(gateway.client, "POST", "/api/registry/provider-secrets", 201, json={
        "provider": "anthropic", "name": "main", "value": CANARY_SECRET})


def _by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def _images(objects: list[dict[str, Any]]) -> dict[str, str]:
    return {name: d["spec"]["template"]["spec"]["containers"][0]["image"]
            for name, d in _by_kind(objects, "Deployment").items()}


async def test_the_owner_sees_the_draft_before_provisioning_and_the_spec_after(
        gateway: Gateway) -> None:
    await gateway.signup("ada@example.com")
    await gateway.company("acme")
    refused = await _call(gateway.client, "GET", MANIFEST, 409)
    assert refused["code"] == "draft_missing"
    await _call(gateway.client, "POST", "/api/registry/provider-secrets", 201, json={
        "provider": "anthropic", "name": "main", "value": CANARY_SECRET})
    await _call(gateway.client, "POST", ACME + "/draft", 201,
                json={"draft": samples.draft("1.0.0")})

    before = await _call(gateway.client, "GET", MANIFEST, 200)
    assert (before["source"], before["releaseVersion"]) == ("draft", "1.0.0")
    objects = before["objects"]
    assert [o["kind"] for o in objects[:4]] == [
        "Namespace", "ServiceAccount", "ResourceQuota", "LimitRange"]
    assert {o["kind"] for o in objects} >= {
        "NetworkPolicy", "Secret", "ConfigMap", "PersistentVolumeClaim", "Service",
        "Deployment", "Ingress"}
    assert objects[0]["metadata"]["name"] == names.runtime_namespace("acme")
    assert _images(objects) == {c: f"registry.exocorp.dev/{c}:1.0.0"
                                for c in ("portal", "app", "agents")}
    # The draft's sizes are the containers' (agents: medium), the gateway's domains the routes'.
    agents = _by_kind(objects, "Deployment")["agents"]["spec"]["template"]["spec"]
    assert agents["containers"][0]["resources"]["requests"]["cpu"] != \
        _by_kind(objects, "Deployment")["portal"]["spec"]["template"]["spec"][
            "containers"][0]["resources"]["requests"]["cpu"]
    hosts = {rule["host"] for rule in _by_kind(objects, "Ingress")["routes"]["spec"]["rules"]}
    assert hosts == {f"acme.{gateway.settings.portal_base_domain}",
                     f"acme.{gateway.settings.app_base_domain}"}
    assert any("operator's configuration" in note for note in before["notes"])

    await _call(gateway.client, "POST", ACME + "/provision", 202)
    after = await _call(gateway.client, "GET", MANIFEST, 200)
    assert (after["source"], after["releaseVersion"]) == ("spec", "1.0.0")
    assert _images(after["objects"]) == _images(objects)

    # A draft saved after the last action is what reprovision would apply: shown instead.
    gateway.clock.advance(minutes=1)
    await _call(gateway.client, "POST", ACME + "/draft", 200,
                json={"draft": samples.draft("1.1.0")})
    newer = await _call(gateway.client, "GET", MANIFEST, 200)
    assert (newer["source"], newer["releaseVersion"]) == ("draft", "1.1.0")
    assert set(_images(newer["objects"]).values()) == {
        f"registry.exocorp.dev/{c}:1.1.0" for c in ("portal", "app", "agents")}

    # Then stopped: the spec again, as the operator applies it (nothing running, no route).
    gateway.clock.advance(minutes=1)
    await _call(gateway.client, "POST", ACME + "/stop", 202)
    stopped = await _call(gateway.client, "GET", MANIFEST, 200)
    assert (stopped["source"], stopped["releaseVersion"]) == ("spec", "1.0.0")
    assert {name: d["spec"]["replicas"] for name, d in
            _by_kind(stopped["objects"], "Deployment").items()} == {
        "portal": 0, "app": 0, "agents": 0}
    assert _by_kind(stopped["objects"], "Ingress") == {}


async def test_only_the_owner_may_preview(gateway: Gateway) -> None:
    await _owner_with_draft(gateway)
    for email, role in (("mia@example.com", "member"), ("vic@example.com", "viewer")):
        await _call(gateway.client, "POST", ACME + "/invitations", 201,
                    json={"email": email, "role": role})
        client = gateway.new_client()
        await _call(client, "POST", "/api/auth/signup", 201,
                    json={"email": email, "password": "correct horse battery"})
        me = await _call(client, "GET", "/api/auth/me", 200)
        await _call(client, "POST",
                    f"/api/registry/invitations/{me['invitations'][0]['id']}/accept", 200)
        refused = await _call(client, "GET", MANIFEST, 403)
        assert refused["code"] == "owner_required"
    stranger = gateway.new_client()
    await _call(stranger, "POST", "/api/auth/signup", 201,
                json={"email": "sam@example.com", "password": "correct horse battery"})
    assert (await _call(stranger, "GET", MANIFEST, 404))["code"] == "not_found"
    assert (await _call(gateway.new_client(), "GET", MANIFEST, 401))["code"] == \
        "unauthenticated"


async def test_no_credential_value_appears_only_its_key_name(gateway: Gateway) -> None:
    await _owner_with_draft(gateway)
    answers = [await (await gateway.client.get(MANIFEST)).read(),
               await (await gateway.client.get(MANIFEST + "?format=yaml")).read()]
    await _call(gateway.client, "POST", ACME + "/provision", 202)
    answers.append(await (await gateway.client.get(MANIFEST)).read())
    for answer in answers:
        assert not any(needle in answer for needle in needles(CANARY_SECRET))
    secret = _by_kind(yaml.safe_load(answers[2])["objects"], "Secret")["provider-credentials"]
    assert secret["data"] == {"ANTHROPIC_API_KEY": "<redacted>"}
    for deployment in _by_kind(yaml.safe_load(answers[2])["objects"], "Deployment").values():
        template = deployment["spec"]["template"]["metadata"]
        assert template["annotations"][names.ANNOTATION_CREDENTIALS_HASH] == "<redacted>"


async def test_yaml_is_a_stream_of_the_same_objects(gateway: Gateway) -> None:
    await _owner_with_draft(gateway)
    as_json = (await _call(gateway.client, "GET", MANIFEST, 200))["objects"]
    for kwargs in ({"params": {"format": "yaml"}},
                   {"headers": {"Accept": "application/yaml"}}):
        async with gateway.client.get(MANIFEST, **kwargs) as response:
            assert (response.status, response.content_type) == (200, "application/yaml")
            assert list(yaml.safe_load_all(await response.text())) == as_json
    # An explicit format wins over Accept; an unknown one is refused.
    async with gateway.client.get(MANIFEST, params={"format": "json"},
                                  headers={"Accept": "application/yaml"}) as response:
        assert response.content_type == "application/json"
    refused = await _call(gateway.client, "GET", MANIFEST, 400, params={"format": "toml"})
    assert refused["errors"][0]["field"] == "format"


async def test_a_draft_that_cannot_be_provisioned_gets_the_planners_refusal(
        gateway: Gateway) -> None:
    await _owner_with_draft(gateway)
    await _call(gateway.client, "POST", ACME + "/draft", 200,
                json={"draft": samples.draft("9.9.9")})
    refused = await _call(gateway.client, "GET", MANIFEST, 409)
    provision = await _call(gateway.client, "POST", ACME + "/provision", 409)
    assert refused["code"] == provision["code"] == "release_not_found"
    assert refused["detail"] == provision["detail"]
