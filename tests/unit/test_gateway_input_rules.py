"""Input rules of every route: free text a person types (names, reasons) refuses control and
format characters with a 400 naming the field; unknown query parameters are refused; destroy
takes its confirmation from the query string too. Bad input changes nothing."""

from __future__ import annotations

import pytest

from exocorp.testing import samples
from tests.plugins.gateway import Gateway

pytestmark = pytest.mark.unit

HIDDEN = ["\x00", "\x1b[31m", "line\nbreak", "\u202eevil", "zero\u200bwidth", "\ufeff"]


@pytest.mark.parametrize("text", HIDDEN)
async def test_names_and_reasons_refuse_control_and_format_characters(
        gateway: Gateway, text: str) -> None:
    await gateway.signup("ada@example.com")
    response = await gateway.client.post("/api/registry/companies",
                                         json={"slug": "acme", "displayName": f"Acme{text}"})
    assert response.status == 400
    body = await response.json()
    assert [e["field"] for e in body["errors"]] == ["displayName"]
    assert text not in await response.text()  # the value is never echoed
    assert (await gateway.client.get("/api/registry/companies/acme")).status == 404

    await gateway.company("acme", draft=samples.draft("1.0.0"))
    response = await gateway.client.post("/api/registry/companies/acme/stop",
                                         json={"reason": f"because{text}"})
    assert response.status == 400
    assert [e["field"] for e in (await response.json())["errors"]] == ["reason"]

    draft = samples.draft("1.0.0")
    draft["config"]["agents"][0]["role"] = f"Chief{text}"
    response = await gateway.client.post("/api/registry/companies/acme/draft",
                                         json={"draft": draft})
    assert response.status == 400
    assert [e["field"] for e in (await response.json())["errors"]] == [
        "draft.config.agents.0.role"]


async def test_ordinary_unicode_is_welcome(gateway: Gateway) -> None:
    await gateway.signup("ada@example.com")
    created = await gateway.company("acme", displayName="Ærø Café — 東京 🚀")
    assert created["displayName"] == "Ærø Café — 東京 🚀"


@pytest.mark.parametrize("path", ["/api/registry/my-companies?foo=bar",
                                  "/api/registry/companies/acme?verbose=1",
                                  "/api/admin/audit?bogus=1",
                                  "/api/registry/company-releases/current?chanel=beta",
                                  "/healthz?x=1"])
async def test_every_route_refuses_a_query_parameter_it_does_not_take(
        gateway: Gateway, path: str) -> None:
    await gateway.signup("ada@example.com")
    await gateway.company("acme")
    response = await gateway.client.get(path)
    assert response.status == 400
    body = await response.json()
    assert body["code"] == "invalid_request"
    name = path.split("?")[1].split("=")[0]
    assert [e["field"] for e in body["errors"]] == [name]


async def test_destroy_takes_its_confirmation_from_the_query_string_too(
        gateway: Gateway) -> None:
    await gateway.signup("ada@example.com")
    await gateway.company("acme")
    wrong = await gateway.client.delete("/api/registry/companies/acme?confirm=acm")
    assert (wrong.status, (await wrong.json())["code"]) == (400, "confirmation_mismatch")
    accepted = await gateway.client.delete(
        "/api/registry/companies/acme?confirm=acme&reason=done%20testing")
    assert accepted.status == 202, await accepted.text()
    assert (await accepted.json())["phase"] == "Destroying"
