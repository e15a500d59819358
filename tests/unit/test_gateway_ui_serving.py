"""The dashboard as the gateway serves it, from a temporary stand-in build: index.html at ``/``
and at the dashboard's own paths (no-cache), hashed assets cached for a year, a 503 page saying
how to build when there is no build, the strict CSP and the other security headers, and the
API's cookie protections unchanged for the calls the page makes."""

from __future__ import annotations

from pathlib import Path

import pytest

from exocorp.api_gateway.middleware import DASHBOARD_CSP
from exocorp.api_gateway.ui_serving import IMMUTABLE
from tests.plugins.gateway import GatewayFactory

pytestmark = pytest.mark.unit

INDEX = ('<!doctype html><title>Exocorp</title>'
         '<script type="module" src="/assets/index-3f2a9c1b.js"></script>')
SCRIPT = "console.log('dashboard')"
SPA_PATHS = ("/", "/login", "/signup", "/account", "/account/agents", "/admin",
             "/admin/companies", "/admin/audit", "/company/acme", "/company/acme/draft",
             "/index.html")


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    root = tmp_path / "ui_dist"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text(INDEX)
    (root / "assets" / "index-3f2a9c1b.js").write_text(SCRIPT)
    (root / "favicon.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    (tmp_path / "secret.txt").write_text("not for the web")
    return root


async def test_index_and_spa_paths_answer_the_page_uncached(make_gateway: GatewayFactory,
                                                            dist: Path) -> None:
    gateway = await make_gateway(ui_dist_dir=dist)
    for path in SPA_PATHS:
        response = await gateway.client.get(path)
        assert response.status == 200, path
        assert await response.text() == INDEX
        assert response.headers["Content-Type"].startswith("text/html")
        assert response.headers["Cache-Control"] == "no-cache"
        assert response.headers["Content-Security-Policy"] == DASHBOARD_CSP
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "same-origin"
    assert DASHBOARD_CSP == ("default-src 'self'; script-src 'self'; style-src 'self'; "
                             "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; "
                             "base-uri 'none'; form-action 'self'")


async def test_hashed_assets_are_immutable_and_nothing_else_is_reachable(
        make_gateway: GatewayFactory, dist: Path) -> None:
    gateway = await make_gateway(ui_dist_dir=dist)
    response = await gateway.client.get("/assets/index-3f2a9c1b.js")
    assert (response.status, await response.text()) == (200, SCRIPT)
    assert response.headers["Cache-Control"] == IMMUTABLE
    assert "javascript" in response.headers["Content-Type"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    favicon = await gateway.client.get("/favicon.svg")
    assert (favicon.status, favicon.headers["Cache-Control"]) == (200, "no-cache")
    for path in ("/assets/missing-1234.js", "/assets/..%2Fsecret.txt", "/assets/../secret.txt",
                 "/secret.txt", "/..%2Fsecret.txt", "/assets/.hidden"):
        answer = await gateway.client.get(path)
        assert answer.status == 404, path
        assert "not for the web" not in await answer.text()
    # The API keeps its own answers: an unknown API path is JSON, not the page.
    unknown = await gateway.client.get("/api/registry/nothing-here")
    assert (unknown.status, unknown.content_type) == (404, "application/problem+json")
    assert (await gateway.client.get("/healthz")).status == 200


async def test_without_a_build_the_page_says_how_to_build_it(make_gateway: GatewayFactory,
                                                             tmp_path: Path) -> None:
    gateway = await make_gateway(ui_dist_dir=tmp_path / "never-built")
    for path in ("/", "/company/acme", "/admin"):
        response = await gateway.client.get(path)
        assert response.status == 503
        assert response.content_type == "text/html"
        assert "make ui" in await response.text()
        assert response.headers["Content-Security-Policy"] == DASHBOARD_CSP
    assert (await gateway.client.get("/assets/index-3f2a9c1b.js")).status == 404
    assert (await gateway.client.get("/healthz")).status == 200


async def test_pages_with_a_policy_of_their_own_keep_it(make_gateway: GatewayFactory,
                                                        dist: Path) -> None:
    gateway = await make_gateway(ui_dist_dir=dist)
    docs = await gateway.client.get("/api/docs")
    assert docs.headers["Content-Security-Policy"].startswith("default-src 'none'")
    api = await gateway.client.get("/api/auth/me")
    assert api.headers["X-Content-Type-Options"] == "nosniff"
    assert "Content-Security-Policy" not in api.headers


async def test_the_pages_api_calls_keep_the_cookie_and_origin_checks(
        make_gateway: GatewayFactory, dist: Path) -> None:
    gateway = await make_gateway(ui_dist_dir=dist)
    await gateway.signup("ada@example.com")  # the session cookie is in the client's jar
    body = {"slug": "acme", "displayName": "Acme"}
    foreign = await gateway.client.post("/api/registry/companies", json=body,
                                        headers={"Origin": "https://evil.example"})
    assert (foreign.status, (await foreign.json())["code"]) == (403, "cross_origin")
    cross_site = await gateway.client.post("/api/registry/companies", json=body,
                                           headers={"Sec-Fetch-Site": "cross-site"})
    assert cross_site.status == 403
    assert (await gateway.client.get("/api/registry/companies/acme")).status == 404
    page_origin = f"http://{gateway.client.host}:{gateway.client.port}"
    own = await gateway.client.post("/api/registry/companies", json=body,
                                    headers={"Origin": page_origin,
                                             "Sec-Fetch-Site": "same-origin"})
    assert own.status == 201
    cookie = gateway.client.session.cookie_jar.filter_cookies(gateway.client.make_url("/"))
    assert gateway.settings.cookie_name in cookie
