"""A lifecycle action's only API-server call is its write: the exocorp, its revisions and the
owner's credentials come from the watch cache. A stale cache costs a fresh read, never a wrong
answer: a write conflict re-plans from the API server, and so does a refusal made from the
cache (a credential or object the cache has not seen yet). And a destroy whose write landed but
whose delete did not (the gateway died in between) is finished by the gateway's sweep."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from exocorp import names
from exocorp.api_gateway.operations import finish_unfinished_destroys
from exocorp.k8s import resources as r
from exocorp.lifecycle.perform import DELETE_GRACE
from exocorp.model import format_timestamp
from exocorp.store.schema import ExocorpRecord
from exocorp.testing import samples
from tests.plugins.gateway import Gateway
from tests.plugins.gateway_admin import set_status

pytestmark = pytest.mark.unit
SECRET_VALUE = "sk-ant-unit-0123456789abcdef"


async def _provisioning(gateway: Gateway) -> None:
    await gateway.signup("ada@example.com")
    await gateway.company("acme", draft=samples.draft("1.0.0"))
    response = await gateway.client.post("/api/registry/provider-secrets", json={
        "provider": "anthropic", "name": "main", "value": SECRET_VALUE})
    assert response.status == 201
    response = await gateway.client.post("/api/registry/companies/acme/provision")
    assert response.status == 202, await response.text()


def _exocorp_calls(gateway: Gateway) -> list[tuple[str, str, str]]:
    return [c for c in gateway.kube.calls
            if c[1] in (r.EXOCORPS.plural, r.CONTROLLERREVISIONS.plural, r.SECRETS.plural)]


async def test_an_action_reads_nothing_from_the_api_server_before_its_write(
        gateway: Gateway) -> None:
    await _provisioning(gateway)
    gateway.kube.calls.clear()
    response = await gateway.client.post("/api/registry/companies/acme/stop",
                                         json={"reason": "not now"})
    assert response.status == 202, await response.text()
    assert _exocorp_calls(gateway) == [("patch", "exocorps", "acme")]


async def test_a_stale_cached_object_is_caught_by_its_resource_version_and_replanned(
        gateway: Gateway) -> None:
    await _provisioning(gateway)
    # Someone else (the operator, kubectl) changed the object; the cache has not seen it yet.
    await gateway.kube.patch(r.EXOCORPS, "acme", {"metadata": {"labels": {"team": "blue"}}})
    gateway.kube.calls.clear()
    response = await gateway.client.post("/api/registry/companies/acme/stop",
                                         json={"reason": "not now"})
    assert response.status == 202, await response.text()
    assert _exocorp_calls(gateway)[0] == ("patch", "exocorps", "acme")  # refused: 409
    assert ("get", "exocorps", "acme") in _exocorp_calls(gateway)
    stored = gateway.kube.objects[(r.EXOCORPS.plural, "", "acme")]
    assert stored["spec"]["lastAction"]["action"] == "stop"
    assert stored["metadata"]["labels"]["team"] == "blue"  # the other change is kept


async def test_a_refusal_made_from_a_lagging_cache_is_checked_against_the_api_server(
        gateway: Gateway) -> None:
    await gateway.signup("ada@example.com")
    await gateway.company("acme", draft=samples.draft("1.0.0"))
    response = await gateway.client.post("/api/registry/provider-secrets", json={
        "provider": "anthropic", "name": "main", "value": SECRET_VALUE})
    assert response.status == 201
    # Another gateway replica stored the credential: this replica's cache has not seen it.
    for credential in list(gateway.cache.credentials.values()):
        gateway.cache.forget_credential(credential.id, "exocorp-system")
    response = await gateway.client.post("/api/registry/companies/acme/provision")
    assert response.status == 202, await response.text()
    stored = gateway.kube.objects[(r.EXOCORPS.plural, "", "acme")]
    assert [b["provider"] for b in stored["spec"]["providerBindings"]] == ["anthropic"]


async def test_a_refusal_the_api_server_confirms_is_given(gateway: Gateway) -> None:
    await gateway.signup("ada@example.com")
    await gateway.company("acme", draft=samples.draft("1.0.0"))
    gateway.kube.calls.clear()
    response = await gateway.client.post("/api/registry/companies/acme/provision")
    assert (response.status, (await response.json())["code"]) == (409, "provider_missing")
    assert not [c for c in _exocorp_calls(gateway) if c[0] == "patch"]
    stored = gateway.kube.objects[(r.EXOCORPS.plural, "", "acme")]
    assert names.ANNOTATION_REQUEST_KEYS not in (stored["metadata"].get("annotations") or {})


async def test_a_destroy_accepted_but_never_deleted_is_finished_by_the_sweep(
        gateway: Gateway) -> None:
    """The gateway writes the destroy into the spec, then deletes; it died in between and the
    caller never retried. The exocorp reads Destroying (not Starting, not Running) and the
    sweep makes the delete once the grace has passed, not before."""
    await _provisioning(gateway)
    accepted_at = gateway.clock()
    last = {"action": "destroy", "requestedBy": "user:1", "at": format_timestamp(accepted_at)}
    set_status(gateway, "acme", {}, lastAction=last)
    detail = await (await gateway.client.get("/api/registry/companies/acme")).json()
    assert detail["phase"] == "Destroying"

    assert await finish_unfinished_destroys(gateway.client.app) == []  # its delete may follow
    assert (r.EXOCORPS.plural, "", "acme") in gateway.kube.objects
    gateway.clock.advance(seconds=DELETE_GRACE.total_seconds())
    assert await finish_unfinished_destroys(gateway.client.app) == ["acme"]
    assert (r.EXOCORPS.plural, "", "acme") not in gateway.kube.objects
    async with gateway.database.sessionmaker() as s:
        record = (await s.execute(select(ExocorpRecord).where(
            ExocorpRecord.slug == "acme"))).scalar_one()
    assert record.destroyed_at is not None
    response = await gateway.client.get("/api/registry/companies/acme")
    assert response.status == 404
