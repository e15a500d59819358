"""The operator-client (agent) flow as unit tests drive it on the gateway's unit fixtures: ask
for access, a human approves, the agent redeems its bearer token. No tests here."""

from __future__ import annotations

from typing import Any

from exocorp.testing import samples
from tests.plugins.gateway import Gateway


def access_request(slug: str = "agent-co", **extra: Any) -> dict[str, Any]:
    """The body an agent posts to ask for access to a new company ``slug`` with a draft."""
    return {"agentName": "Claude Code", "company": {"slug": slug, "displayName": "Agent Co"},
            "draft": samples.draft("1.0.0"), **extra}


def bearer_header(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def ask_for_access(gateway: Gateway, **body: Any) -> dict[str, Any]:
    """An agent's request (fields of :func:`access_request`), answered 201 and never cached."""
    response = await gateway.new_client().post("/api/agents/drafts", json=access_request(**body))
    assert response.status == 201, await response.text()
    assert response.headers["Cache-Control"] == "no-store"
    created: dict[str, Any] = await response.json()
    return created


async def approve_handoff(client: Any, created: dict[str, Any], **body: Any) -> Any:
    """Approve as ``client`` with the code the agent was given (when it was given one)."""
    if "pairingCode" in created and "pairingCode" not in body:
        body["pairingCode"] = created["pairingCode"]
    return await client.post(f"/api/agents/handoffs/{created['handoffId']}/approve", json=body)


async def approved_agent_token(gateway: Gateway, slug: str, **grants: Any) -> str:
    """The bearer token of an agent that asked for ``slug``, approved by the gateway's own
    client with ``grants``, and redeemed."""
    created = await ask_for_access(gateway, slug=slug)
    approved = await approve_handoff(gateway.client, created, **grants)
    assert approved.status == 201, await approved.text()
    redeemed = await gateway.new_client().post("/api/agents/redeem",
                                               headers=bearer_header(created["draftToken"]))
    assert redeemed.status == 201
    token: str = (await redeemed.json())["token"]
    return token
