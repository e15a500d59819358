"""The operator-client flow on the gateway's unit fixtures: an agent asks, a human approves in
the browser, the agent redeems a bearer token bound to that human and uses it on the registry;
tokens expire, are spent, denied and revoked (401); redeeming early is 409; agents cannot sign
up; the human's token list and revocation; the Markdown for agents and the handoff page."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from sqlalchemy import func, select

from exocorp.api_gateway.agents import routes as routes_agents
from exocorp.api_gateway.app import route_tables
from exocorp.model import Draft
from exocorp.security import hash_token
from exocorp.store.schema import AuditEvent, OperatorToken, User
from exocorp.testing import samples
from tests.plugins.gateway import Gateway
from tests.plugins.gateway_admin import PASSWORD, user
from tests.plugins.gateway_agents import access_request, ask_for_access, bearer_header

pytestmark = pytest.mark.unit


async def test_an_agent_gets_access_through_a_humans_approval(gateway: Gateway) -> None:
    agent = gateway.new_client()
    created = await ask_for_access(gateway)
    token, handoff = created["draftToken"], created["handoffId"]
    assert token.startswith("exo_draft_")
    assert created["handoffUrl"] == f"{gateway.client.make_url('/')}connect/{handoff}".replace(
        "//connect", "/connect")
    assert (created["status"], created["expiresAt"]) == ("pending", "2030-01-01T13:00:00Z")
    async with gateway.database.sessionmaker() as s:
        assert await s.scalar(select(func.count()).select_from(User)) == 0  # nobody signed up
        stored = (await s.execute(select(OperatorToken))).scalar_one()
    assert stored.token_hash == hash_token(token)
    assert token not in stored.token_hash

    mine = await agent.get("/api/agents/draft", headers=bearer_header(token))
    view = await mine.json()
    assert (view["status"], view["agentName"], view["company"]["slug"], view["handoffUrl"]) == (
        "pending", "Claude Code", "agent-co", created["handoffUrl"])
    early = await agent.post("/api/agents/redeem", headers=bearer_header(token))
    assert (early.status, (await early.json())["code"]) == (409, "not_approved")
    # A draft token reaches only its own draft.
    scoped = await agent.get("/api/registry/my-companies", headers=bearer_header(token))
    assert scoped.status == 403

    human = await gateway.signup("ada@example.com")
    shown = await (await gateway.client.get(f"/api/agents/handoffs/{handoff}")).json()
    assert (shown["status"], shown["agentName"], shown["draft"]["version"]) == (
        "pending", "Claude Code", "1.0.0")
    code = {"pairingCode": created["pairingCode"]}
    approved = await gateway.client.post(f"/api/agents/handoffs/{handoff}/approve", json=code)
    assert approved.status == 201, await approved.text()
    company = (await approved.json())["company"]
    assert (company["id"], company["displayName"], company["owner"], company["phase"]) == (
        "agent-co", "Agent Co", human["user"]["id"], "Draft")
    again = await gateway.client.post(f"/api/agents/handoffs/{handoff}/approve", json=code)
    assert again.status == 200
    draft = await (await gateway.client.get("/api/registry/companies/agent-co/draft")).json()
    assert Draft.model_validate(draft["draft"]) == Draft.model_validate(samples.draft("1.0.0"))

    redeemed = await agent.post("/api/agents/redeem", headers=bearer_header(token))
    assert redeemed.status == 201, await redeemed.text()
    assert redeemed.headers["Cache-Control"] == "no-store"
    grant = await redeemed.json()
    bearer = grant["token"]
    assert bearer.startswith("exo_agent_")
    assert (grant["userId"], grant["companyId"], grant["tokenType"]) == (
        human["user"]["id"], "agent-co", "Bearer")
    assert grant["expiresAt"] == "2030-01-31T12:00:00Z"
    assert grant["scope"] == {"companies": ["agent-co"], "destroy": False,
                              "providerSecrets": False}
    # The draft token is spent; the bearer token acts for the human on the registry.
    assert (await agent.post("/api/agents/redeem", headers=bearer_header(token))).status == 401
    assert (await agent.get("/api/agents/draft", headers=bearer_header(token))).status == 401
    me = await (await agent.get("/api/auth/me", headers=bearer_header(bearer))).json()
    assert (me["user"]["id"], me["principal"], me["platformOwner"]) == (
        human["user"]["id"], "operator_client", False)
    fleet = await (await agent.get("/api/registry/my-companies",
                                   headers=bearer_header(bearer))).json()
    assert [c["id"] for c in fleet["companies"]] == ["agent-co"]
    stop = await agent.post("/api/registry/companies/agent-co/stop", headers=bearer_header(bearer))
    assert stop.status == 409  # reached the lifecycle: Draft cannot stop

    shown = await (await gateway.client.get(f"/api/agents/handoffs/{handoff}")).json()
    assert (shown["status"], shown["approvedByYou"], shown["companyId"]) == (
        "redeemed", True, "agent-co")
    listed = await (await gateway.client.get("/api/auth/tokens")).json()
    assert [(t["agentName"], t["status"], t["id"]) for t in listed["tokens"]] == [
        ("Claude Code", "active", grant["tokenId"])]
    assert bearer not in json.dumps(listed)
    assert (await gateway.client.delete(f"/api/auth/tokens/{grant['tokenId']}")).status == 204
    assert (await gateway.client.delete(f"/api/auth/tokens/{grant['tokenId']}")).status == 204
    assert (await agent.get("/api/auth/me", headers=bearer_header(bearer))).status == 401
    listed = await (await gateway.client.get("/api/auth/tokens")).json()
    assert [t["status"] for t in listed["tokens"]] == ["revoked"]

    async with gateway.database.sessionmaker() as s:
        events = (await s.execute(select(AuditEvent).where(
            AuditEvent.action.in_(["agent.draft.create", "agent.redeem", "agent.approve",
                                   "company.create", "token.revoke", "stop"]))
            .order_by(AuditEvent.id))).scalars().all()
    client_id = handoff
    assert [(e.action, e.outcome.value, e.actor_kind.value, e.actor_id) for e in events] == [
        ("agent.draft.create", "succeeded", "operator_client", client_id),
        ("agent.redeem", "refused", "operator_client", client_id),
        ("company.create", "succeeded", "user", human["user"]["id"]),
        ("agent.approve", "succeeded", "user", human["user"]["id"]),
        ("agent.approve", "succeeded", "user", human["user"]["id"]),
        ("agent.redeem", "succeeded", "operator_client", client_id),
        ("agent.redeem", "refused", "anonymous", None),
        ("stop", "refused", "operator_client", client_id),
        ("token.revoke", "succeeded", "user", human["user"]["id"]),
        ("token.revoke", "succeeded", "user", human["user"]["id"])]


async def test_tokens_expire_and_denied_agents_are_locked_out(gateway: Gateway) -> None:
    late = await ask_for_access(gateway, slug="late-co")
    gateway.clock.advance(hours=1)
    agent = gateway.new_client()
    assert (await agent.post("/api/agents/redeem",
                             headers=bearer_header(late["draftToken"]))).status == 401
    await gateway.signup("ada@example.com")
    shown = await (await gateway.client.get(f"/api/agents/handoffs/{late['handoffId']}")).json()
    assert shown["status"] == "expired"
    refused = await gateway.client.post(f"/api/agents/handoffs/{late['handoffId']}/approve",
                                        json={"pairingCode": late["pairingCode"]})
    assert (refused.status, (await refused.json())["code"]) == (409, "handoff_expired")
    assert (await gateway.client.get("/api/registry/companies/late-co")).status == 404

    denied = await ask_for_access(gateway, slug="denied-co")
    deny = await gateway.client.post(f"/api/agents/handoffs/{denied['handoffId']}/deny")
    assert (deny.status, (await deny.json())["status"]) == (200, "denied")
    assert (await agent.post("/api/agents/redeem",
                             headers=bearer_header(denied["draftToken"]))).status == 401
    again = await gateway.client.post(f"/api/agents/handoffs/{denied['handoffId']}/approve",
                                      json={"pairingCode": denied["pairingCode"]})
    assert (again.status, (await again.json())["code"]) == (409, "handoff_denied")


async def test_only_the_first_human_approves_and_only_humans_approve(gateway: Gateway) -> None:
    asked = await ask_for_access(gateway)
    handoff = asked["handoffId"]
    await gateway.signup("ada@example.com")
    eve, _ = await user(gateway, "eve@example.com")
    # A draft token, or another agent's bearer token, cannot approve agents.
    for headers in (bearer_header(asked["draftToken"]),):
        response = await gateway.new_client().post(f"/api/agents/handoffs/{handoff}/approve",
                                                   headers=headers)
        assert response.status == 403
    approved = await gateway.client.post(f"/api/agents/handoffs/{handoff}/approve",
                                         json={"slug": "renamed-co",
                                               "pairingCode": asked["pairingCode"]})
    assert approved.status == 201
    assert (await approved.json())["company"]["id"] == "renamed-co"
    taken = await eve.post(f"/api/agents/handoffs/{handoff}/approve",
                           json={"pairingCode": asked["pairingCode"]})
    assert (taken.status, (await taken.json())["code"]) == (409, "handoff_taken")
    assert (await eve.post(f"/api/agents/handoffs/{handoff}/deny")).status == 409
    redeemed = await (await gateway.new_client().post(
        "/api/agents/redeem", headers=bearer_header(asked["draftToken"]))).json()
    agent = gateway.new_client()
    for method, path in (("GET", f"/api/agents/handoffs/{handoff}"),
                         ("POST", f"/api/agents/handoffs/{handoff}/approve"),
                         ("POST", f"/api/agents/handoffs/{handoff}/deny"),
                         ("GET", "/api/auth/tokens"),
                         ("DELETE", f"/api/auth/tokens/{redeemed['tokenId']}")):
        response = await agent.request(method, path, headers=bearer_header(redeemed["token"]))
        assert response.status == 403, (method, path)
        assert (await response.json())["code"] == "human_session_required"
    # Eve cannot see or revoke Ada's agent's token.
    assert (await eve.delete(f"/api/auth/tokens/{redeemed['tokenId']}")).status == 404
    assert (await (await eve.get("/api/auth/tokens")).json())["tokens"] == []
    # The approver revokes the whole agent with deny.
    assert (await gateway.client.post(f"/api/agents/handoffs/{handoff}/deny")).status == 200
    assert (await agent.get("/api/auth/me", headers=bearer_header(redeemed["token"]))).status == 401


async def test_approval_with_a_taken_slug_is_409_and_changes_nothing(gateway: Gateway) -> None:
    await gateway.signup("ada@example.com")
    await gateway.company("agent-co")
    asked = await ask_for_access(gateway)
    refused = await gateway.client.post(f"/api/agents/handoffs/{asked['handoffId']}/approve",
                                        json={"pairingCode": asked["pairingCode"]})
    assert (refused.status, (await refused.json())["code"]) == (409, "slug_taken")
    shown = await (await gateway.client.get(
        f"/api/agents/handoffs/{asked['handoffId']}")).json()
    assert shown["status"] == "pending"
    ok = await gateway.client.post(f"/api/agents/handoffs/{asked['handoffId']}/approve",
                                   json={"slug": "agent-co-2", "displayName": "Second",
                                         "pairingCode": asked["pairingCode"]})
    assert ok.status == 201
    assert (await ok.json())["company"]["displayName"] == "Second"


async def test_agents_cannot_sign_up(gateway: Gateway) -> None:
    asked = await ask_for_access(gateway)
    client = gateway.new_client()
    signup = await client.post("/api/auth/signup", headers=bearer_header(asked["draftToken"]),
                               json={"email": "bot@example.com", "password": PASSWORD})
    assert (signup.status, (await signup.json())["code"]) == (403, "agent_signup_refused")
    dead = await client.post("/api/auth/signup",
                             headers=bearer_header("exo_agent_revoked-or-unknown"),
                             json={"email": "bot@example.com", "password": PASSWORD})
    assert dead.status == 403  # even an agent's dead token gives it away
    smuggled = await client.post("/api/agents/drafts", json=access_request(
        email="bot@example.com", password=PASSWORD))
    assert smuggled.status == 400
    assert {e["field"] for e in (await smuggled.json())["errors"]} == {"email", "password"}
    async with gateway.database.sessionmaker() as s:
        assert await s.scalar(select(func.count()).select_from(User)) == 0


@pytest.mark.parametrize(("body", "fields"), [
    ({}, {"agentName", "company"}),
    ({"agentName": "", "company": {"slug": "ok-co", "displayName": "x"}}, {"agentName"}),
    ({"agentName": "a\nb", "company": {"slug": "ok-co", "displayName": "x"}}, {"agentName"}),
    ({"agentName": "a", "company": {"slug": "Not A Slug", "displayName": "x"}},
     {"company.slug"}),
    ({"agentName": "a", "company": {"slug": "ok-co", "displayName": "x"},
      "draft": {"channel": "nightly"}}, {"draft.channel"}),
])
async def test_bad_agent_requests_are_400(gateway: Gateway, body: dict[str, Any],
                                          fields: set[str]) -> None:
    response = await gateway.client.post("/api/agents/drafts", json=body)
    assert response.status == 400
    assert {e["field"] for e in (await response.json())["errors"]} == fields


async def test_one_address_asking_too_often_gets_429(gateway: Gateway,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(routes_agents, "DRAFTS_PER_ADDRESS", 2)
    await ask_for_access(gateway, slug="one-co")
    await ask_for_access(gateway, slug="two-co")
    response = await gateway.client.post("/api/agents/drafts", json=access_request("three-co"))
    assert response.status == 429
    assert 0 < int(response.headers["Retry-After"]) <= 3600
    gateway.clock.advance(hours=1)
    again = await gateway.client.post("/api/agents/drafts", json=access_request("three-co"))
    assert again.status == 201


async def test_unknown_handoffs_are_404(gateway: Gateway) -> None:
    await gateway.signup("ada@example.com")
    for handoff in ("cli_" + "0" * 26, "nope", "cli_../../etc"):
        assert (await gateway.client.get(f"/api/agents/handoffs/{handoff}")).status == 404
        assert (await gateway.client.post(
            f"/api/agents/handoffs/{handoff}/approve")).status == 404
    assert (await gateway.client.delete("/api/auth/tokens/tok_nope")).status == 404
    assert (await gateway.client.get("/connect/nope")).status == 404


async def test_the_handoff_page_is_self_contained(gateway: Gateway) -> None:
    asked = await ask_for_access(gateway)
    response = await gateway.client.get(f"/connect/{asked['handoffId']}")
    assert (response.status, response.content_type) == (200, "text/html")
    page = await response.text()
    csp = response.headers["Content-Security-Policy"]
    nonce = re.search(r"'nonce-([^']+)'", csp)
    assert nonce is not None
    assert f'<script nonce="{nonce.group(1)}">' in page
    assert "default-src 'none'" in csp
    assert "connect-src 'self'" in csp
    assert f'const id = "{asked["handoffId"]}";' in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    for path in re.findall(r'"(/api/[^"]+)"', page):
        assert _routed(path.rstrip("/"), prefix=True), path
    other = await gateway.client.get(f"/connect/{asked['handoffId']}")
    assert other.headers["Content-Security-Policy"] != csp  # a fresh nonce each time


# -- the documents agents read -------------------------------------------------------------------

_PARAM = re.compile(r"\{[^}/]+\}|<[^>/]+>|:[A-Za-z]\w*")


def _routes() -> set[tuple[str, str]]:
    return {(info.method, info.path) for table in route_tables() for info in table.routes}


def _matches(template: str, path: str) -> bool:
    pattern = "^" + _PARAM.sub("[^/]+", re.escape(template).replace(r"\{", "{")
                               .replace(r"\}", "}")) + "$"
    return re.match(pattern, _PARAM.sub("x", path)) is not None


def _routed(path: str, method: str | None = None, *, prefix: bool = False) -> bool:
    for route_method, template in _routes():
        if method is not None and route_method != method:
            continue
        if _matches(template, path) or (prefix and _matches(template, path + "/x")):
            return True
    return False


@pytest.mark.parametrize("document", ["/SKILL.md", "/skills/connect-agent.md"])
async def test_agent_documents_are_markdown_and_name_only_real_endpoints(
        gateway: Gateway, document: str) -> None:
    response = await gateway.client.get(document)
    assert response.status == 200
    assert response.content_type == "text/markdown"
    text = await response.text()
    with_methods = re.findall(r"\b(GET|POST|PUT|PATCH|DELETE) (/[^\s`)|,]+)", text)
    assert len(with_methods) >= 5
    for method, path in with_methods:
        assert _routed(path, method), f"{method} {path} is not routed"
    bare = re.findall(r"`(/[^\s`]+)`", text)
    for path in bare:
        assert _routed(path), f"{path} is not routed"


async def test_the_example_request_in_the_guide_is_accepted(gateway: Gateway) -> None:
    guide = await (await gateway.client.get("/skills/connect-agent.md")).text()
    example = json.loads(re.findall(r"```json\n(.*?)```", guide, re.DOTALL)[0])
    response = await gateway.client.post("/api/agents/drafts", json=example)
    assert response.status == 201, await response.text()
    answer = await response.json()
    documented = json.loads(re.findall(r"```json\n(.*?)```", guide, re.DOTALL)[1])
    assert set(documented) == set(answer)
    redeemed = json.loads(re.findall(r"```json\n(.*?)```", guide, re.DOTALL)[2])
    from exocorp.api_gateway.agents.schemas import RedeemResponse
    assert set(redeemed) <= set(RedeemResponse.model_json_schema(by_alias=True)["properties"])
