"""The middleware chain: request ids, CSRF protection of cookie-authenticated writes, metrics by
route template, and probes that never need credentials."""

from __future__ import annotations

import os
import re

import pytest

from exocorp.api_gateway.middleware import new_request_id
from tests.plugins import gateway as support
from tests.plugins.gateway import Gateway

pytestmark = pytest.mark.unit

COMPANY = {"slug": "acme", "displayName": "Acme"}


async def test_a_sane_request_id_is_kept_and_a_bad_one_replaced(gateway: Gateway) -> None:
    response = await gateway.client.get("/healthz", headers={"X-Request-Id": "abc-123.x_y"})
    assert response.headers["X-Request-Id"] == "abc-123.x_y"
    response = await gateway.client.get("/healthz", headers={"X-Request-Id": "<script>" * 20})
    assert response.headers["X-Request-Id"] != "<script>" * 20
    assert len(response.headers["X-Request-Id"]) == 32


def test_new_request_ids_are_unique_and_well_formed() -> None:
    ids = [new_request_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[0-9a-f]{32}", request_id) for request_id in ids)
    prefix = ids[0][:16]
    assert all(request_id.startswith(prefix) for request_id in ids)  # one process, one prefix


def test_a_forked_process_makes_request_ids_of_its_own() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report one id and leave at once
        os.write(write, new_request_id().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.close(read)
    os.waitpid(pid, 0)
    assert re.fullmatch(r"[0-9a-f]{32}", child)
    assert child[:16] != new_request_id()[:16]


async def test_every_answer_carries_the_security_headers_and_a_request_id(
        gateway: Gateway) -> None:
    for path in ("/healthz", "/api/registry/companies/unknown-one", "/no/such/page"):
        response = await gateway.client.get(path)
        assert response.headers["X-Content-Type-Options"] == "nosniff", path
        assert response.headers["Referrer-Policy"] == "same-origin", path
        assert "Content-Security-Policy" not in response.headers, path
        assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-Id"]), path
    problem = await (await gateway.client.get("/no/such/page")).json()
    assert re.fullmatch(r"[0-9a-f]{32}", problem["requestId"])


async def _fleet(gateway: Gateway) -> list[str]:
    response = await gateway.client.get("/api/registry/my-companies")
    return [c["id"] for c in (await response.json())["companies"]]


@pytest.mark.parametrize("headers", [
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},
    {"Origin": "https://evil.example"},
    {"Origin": "null"},
    {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
])
async def test_cross_origin_cookie_writes_are_refused_and_change_nothing(
        gateway: Gateway, headers: dict[str, str]) -> None:
    await gateway.signup("ada@example.com")
    response = await gateway.client.post("/api/registry/companies", json=COMPANY,
                                         headers=headers)
    assert response.status == 403
    assert (await response.json())["code"] == "cross_origin"
    assert await _fleet(gateway) == []
    assert ("create", "exocorps", "acme") not in gateway.kube.calls


@pytest.mark.parametrize("headers", [
    {"Sec-Fetch-Site": "same-origin"},
    {"Sec-Fetch-Site": "none"},
    {},  # not a browser: no Origin, no Fetch Metadata
])
async def test_same_origin_and_non_browser_writes_pass(gateway: Gateway,
                                                       headers: dict[str, str]) -> None:
    await gateway.signup("ada@example.com")
    response = await gateway.client.post("/api/registry/companies", json=COMPANY,
                                         headers=headers)
    assert response.status == 201
    assert await _fleet(gateway) == ["acme"]


async def test_own_origin_passes(gateway: Gateway) -> None:
    await gateway.signup("ada@example.com")
    origin = str(gateway.client.make_url("/")).rstrip("/")
    response = await gateway.client.post("/api/registry/companies", json=COMPANY,
                                         headers={"Origin": origin})
    assert response.status == 201


async def test_public_base_url_is_a_trusted_origin(make_gateway: support.GatewayFactory) -> None:
    gateway = await make_gateway(public_base_url="https://exocorp.example.com")
    await gateway.signup("ada@example.com")
    response = await gateway.client.post(
        "/api/registry/companies", json=COMPANY,
        headers={"Origin": "https://exocorp.example.com", "Sec-Fetch-Site": "cross-site"})
    assert response.status == 201


async def test_bearer_requests_are_not_subject_to_the_origin_check(gateway: Gateway) -> None:
    await gateway.signup("ada@example.com")
    token = gateway.client.session.cookie_jar.filter_cookies(
        gateway.client.make_url("/"))[gateway.settings.cookie_name].value
    other = gateway.new_client()  # no cookie: only the bearer token
    response = await other.post("/api/registry/companies", json=COMPANY,
                                headers={"Authorization": f"Bearer {token}",
                                         "Sec-Fetch-Site": "cross-site"})
    assert response.status == 201


async def test_login_csrf_is_refused(gateway: Gateway) -> None:
    await gateway.signup("ada@example.com")
    response = await gateway.new_client().post(
        "/api/auth/login", json={"email": "ada@example.com", "password": "correct horse battery"},
        headers={"Sec-Fetch-Site": "cross-site"})
    assert response.status == 403


async def test_metrics_count_requests_by_route_template_never_raw_paths(
        gateway: Gateway) -> None:
    await gateway.signup("ada@example.com")
    await gateway.company("acme")
    for _ in range(3):
        await gateway.client.get("/api/registry/companies/acme")
    await gateway.client.get("/api/registry/companies/unknown-one")
    await gateway.client.get("/no/such/page")
    text = await gateway.scrape()
    assert ('exocorp_gateway_http_requests_total{method="GET",'
            'route="/api/registry/companies/{id}",status="200"} 3.0') in text
    assert ('exocorp_gateway_http_requests_total{method="GET",'
            'route="/api/registry/companies/{id}",status="404"} 1.0') in text
    assert 'route="unmatched",status="404"' in text
    assert "/api/registry/companies/acme" not in text
    assert "/no/such/page" not in text
    assert "exocorp_gateway_http_request_duration_seconds_bucket" in text
    assert "exocorp_gateway_watch_cache_last_event_timestamp_seconds" in text


async def test_probes_ignore_credentials(gateway: Gateway) -> None:
    for path in ("/healthz", "/readyz"):
        response = await gateway.client.get(path, headers={"Authorization": "Bearer nonsense"})
        assert response.status == 200, path


async def test_metrics_are_not_served_on_the_public_port(gateway: Gateway) -> None:
    # Issue 13, item 11: the chart's Ingress routes `/` of the public port to the gateway, so
    # /metrics there was readable from the internet (routes, statuses, build, process figures).
    response = await gateway.client.get("/metrics")
    assert response.status == 404
    assert "exocorp_gateway" not in await response.text()
    assert "exocorp_gateway_http_requests_total" in await gateway.scrape()


async def test_readiness_waits_for_the_watch_cache(gateway: Gateway) -> None:
    gateway.cache.exocorps.synced.clear()
    response = await gateway.client.get("/readyz")
    assert response.status == 503
    assert (await response.json())["checks"]["watchCache"] == "syncing"
    assert (await gateway.client.get("/healthz")).status == 200
    gateway.cache.exocorps.synced.set()
    assert (await gateway.client.get("/readyz")).status == 200
