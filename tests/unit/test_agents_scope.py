"""Issue 13, items 4 and 9, as attacks on the gateway's unit fixtures:

- an approved agent's bearer token was its human's full power for ever: it listed and rotated
  the human's provider credentials and destroyed another exocorp. Now it reaches only the
  exocorps named at approval or created with it, destroys and writes provider credentials only
  when granted on the approval page, expires by default (renewable), and its scope shows in the
  approval page's data and the token list;
- whoever opened a handoff link first and approved it won the agent. Now approval needs the
  pairing code the agent shows its own human, and wrong codes are capped.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.plugins.gateway import Gateway
from tests.plugins.gateway_admin import user
from tests.plugins.gateway_agents import (
    approve_handoff,
    approved_agent_token,
    ask_for_access,
    bearer_header,
)

pytestmark = pytest.mark.unit


async def _credential(client: Any, name: str, value: str) -> Any:
    return await client.post("/api/registry/provider-secrets", json={
        "provider": "anthropic", "name": name, "value": value})


async def test_an_agent_reaches_only_what_its_human_granted(gateway: Gateway) -> None:
    await gateway.signup("ada@example.com")
    await gateway.company("payroll")
    assert (await _credential(gateway.client, "main", "sk-ant-human-1")).status == 201
    bearer = await approved_agent_token(gateway, "agent-co")
    agent = gateway.new_client()
    headers = bearer_header(bearer)

    # The human's provider credentials: listed (metadata only), never rotated or deleted.
    rotated = await _credential_as(agent, headers, "main", "sk-ant-attacker")
    assert (rotated.status, (await rotated.json())["code"]) == (403, "agent_scope")
    listed = await (await agent.get("/api/registry/provider-secrets", headers=headers)).json()
    secret_id = listed["secrets"][0]["id"]
    deleted = await agent.delete(f"/api/registry/provider-secrets/{secret_id}", headers=headers)
    assert (deleted.status, (await deleted.json())["code"]) == (403, "agent_scope")
    mine = await (await gateway.client.get("/api/registry/provider-secrets")).json()
    assert mine["secrets"][0].get("rotatedAt") is None

    # Another exocorp of the human's: out of reach, and not listed.
    for method, path, body in (
            ("GET", "/api/registry/companies/payroll", None),
            ("POST", "/api/registry/companies/payroll/stop", None),
            ("DELETE", "/api/registry/companies/payroll", {"confirm": "payroll"})):
        response = await agent.request(method, path, headers=headers, json=body)
        assert (response.status, (await response.json())["code"]) == (403, "agent_scope"), path
    fleet = await (await agent.get("/api/registry/my-companies", headers=headers)).json()
    assert [c["id"] for c in fleet["companies"]] == ["agent-co"]
    kept = await (await gateway.client.get("/api/registry/companies/payroll")).json()
    assert kept["phase"] == "Draft"

    # Its own exocorp: driven, but not destroyed without the grant.
    assert (await agent.get("/api/registry/companies/agent-co", headers=headers)).status == 200
    destroy = await agent.delete("/api/registry/companies/agent-co", headers=headers,
                                 json={"confirm": "agent-co"})
    assert (destroy.status, (await destroy.json())["code"]) == (403, "agent_scope")

    # An exocorp it creates with the token joins its scope.
    made = await agent.post("/api/registry/companies", headers=headers,
                            json={"slug": "agent-two", "displayName": "Agent Two"})
    assert made.status == 201
    assert (await agent.get("/api/registry/companies/agent-two", headers=headers)).status == 200

    # The human sees the scope, and an expiry, in the token list.
    tokens = (await (await gateway.client.get("/api/auth/tokens")).json())["tokens"]
    assert tokens[0]["scope"] == {"companies": ["agent-co", "agent-two"], "destroy": False,
                                  "providerSecrets": False}
    assert tokens[0]["expiresAt"] == "2030-01-31T12:00:00Z"


async def _credential_as(agent: Any, headers: dict[str, str], name: str, value: str) -> Any:
    return await agent.post("/api/registry/provider-secrets", headers=headers, json={
        "provider": "anthropic", "name": name, "value": value})


async def test_grants_on_the_approval_page_allow_destroy_and_credential_writes(
    gateway: Gateway,
) -> None:
    await gateway.signup("ada@example.com")
    await gateway.company("payroll")
    assert (await _credential(gateway.client, "main", "sk-ant-human-1")).status == 201
    bearer = await approved_agent_token(gateway, "agent-co", allowDestroy=True,
                                        allowProviderSecrets=True, companies=["payroll"])
    agent = gateway.new_client()
    headers = bearer_header(bearer)
    rotated = await _credential_as(agent, headers, "main", "sk-ant-human-2")
    assert rotated.status == 200
    tokens = (await (await gateway.client.get("/api/auth/tokens")).json())["tokens"]
    assert tokens[0]["scope"] == {"companies": ["agent-co", "payroll"], "destroy": True,
                                  "providerSecrets": True}
    destroy = await agent.delete("/api/registry/companies/payroll", headers=headers,
                                 json={"confirm": "payroll"})
    assert destroy.status == 202


async def test_approval_cannot_name_an_exocorp_the_human_cannot_reach(gateway: Gateway) -> None:
    eve, _ = await user(gateway, "eve@example.com")
    assert (await gateway.company("eves-co", client=eve))["id"] == "eves-co"
    await gateway.signup("ada@example.com")
    created = await ask_for_access(gateway, slug="agent-co")
    refused = await approve_handoff(gateway.client, created, companies=["eves-co"])
    assert refused.status == 404
    assert (await gateway.client.get("/api/registry/companies/agent-co")).status == 404


async def test_agent_tokens_expire_by_default_and_the_human_renews_them(gateway: Gateway) -> None:
    await gateway.signup("ada@example.com")
    bearer = await approved_agent_token(gateway, "agent-co")
    agent = gateway.new_client()
    token_id = (await (await gateway.client.get("/api/auth/tokens")).json())["tokens"][0]["id"]
    gateway.clock.advance(days=30)
    assert (await agent.get("/api/auth/me", headers=bearer_header(bearer))).status == 401
    login = await gateway.client.post("/api/auth/login", json={
        "email": "ada@example.com", "password": "correct horse battery"})
    assert login.status == 200
    listed = (await (await gateway.client.get("/api/auth/tokens")).json())["tokens"]
    assert listed[0]["status"] == "expired"
    # an agent cannot renew itself
    own = await agent.post(f"/api/auth/tokens/{token_id}/renew", headers=bearer_header(bearer))
    assert own.status == 401
    renewed = await gateway.client.post(f"/api/auth/tokens/{token_id}/renew")
    assert renewed.status == 200, await renewed.text()
    view = await renewed.json()
    assert (view["status"], view["expiresAt"]) == ("active", "2030-03-02T12:00:00Z")
    assert (await agent.get("/api/auth/me", headers=bearer_header(bearer))).status == 200
    assert (await gateway.client.delete(f"/api/auth/tokens/{token_id}")).status == 204
    again = await gateway.client.post(f"/api/auth/tokens/{token_id}/renew")
    assert (again.status, (await again.json())["code"]) == (409, "token_revoked")


# -- item 9: the pairing code --------------------------------------------------------------------


async def test_a_stranger_with_the_link_cannot_take_the_agent(gateway: Gateway) -> None:
    """Eve sees the link (a shared screen, a log) and approves first: without the code the agent
    showed Ada, her approval is refused and the agent still waits for Ada."""
    created = await ask_for_access(gateway)
    assert created["pairingCode"]
    eve, _ = await user(gateway, "eve@example.com")
    no_code = await eve.post(f"/api/agents/handoffs/{created['handoffId']}/approve", json={})
    assert no_code.status == 400
    wrong = await approve_handoff(eve, created, pairingCode="AAAA-AAAA")
    problem = await wrong.json()
    assert (wrong.status, problem["code"]) == (403, "pairing_code_mismatch")
    assert created["pairingCode"] not in await wrong.text()
    assert (await gateway.client.get("/api/registry/companies/agent-co")).status in (401, 404)
    await gateway.signup("ada@example.com")
    code = created["pairingCode"].lower().replace("-", " ")  # typed loosely from the terminal
    approved = await approve_handoff(gateway.client, created, pairingCode=code)
    assert approved.status == 201, await approved.text()


async def test_guessing_the_code_denies_the_request(gateway: Gateway) -> None:
    created = await ask_for_access(gateway)
    eve, _ = await user(gateway, "eve@example.com")
    codes = []
    for _ in range(5):
        response = await approve_handoff(eve, created, pairingCode="AAAA-AAAA")
        codes.append((response.status, (await response.json())["code"]))
    assert codes == [(403, "pairing_code_mismatch")] * 4 + [(409, "handoff_denied")]
    await gateway.signup("ada@example.com")
    late = await approve_handoff(gateway.client, created)
    assert (late.status, (await late.json())["code"]) == (409, "handoff_denied")
    redeem = await gateway.new_client().post("/api/agents/redeem",
                                             headers=bearer_header(created["draftToken"]))
    assert redeem.status == 401
