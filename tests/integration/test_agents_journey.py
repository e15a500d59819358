"""A coding agent goes from nothing to a Running exocorp through the two-token flow, over HTTP,
against the real operator and control plane: it asks for access, its human signs up from the
handoff link and approves it (from the browser's origin; a cross-site approval is refused), the
agent redeems its bearer token and provisions with it; the audit trail tells who did what; the
human revokes the token and the agent is locked out.

Twice: with the gateway app in process on both databases (checking what is stored), and with
the real ``exocorp gateway`` process, driven only over HTTP as a deployment would be.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from exocorp.k8s import Kube
from exocorp.security import hash_token
from exocorp.store import billing, open_database, upgrade_to_head
from exocorp.store.schema import OperatorToken
from exocorp.testing.controlplane import free_port
from exocorp.testing.waiting import eventually
from tests.plugins import gateway_cluster as support
from tests.plugins.cluster import ClusterInfo
from tests.plugins.gateway_cluster import (
    PASSWORD,
    GatewayUnderTest,
    sample_draft,
    unique_slug,
)
from tests.plugins.platform import CANARY_SECRET

pytestmark = pytest.mark.integration
WITHIN = 180


class Client:
    """One party (agent or human) talking to the gateway; the human's browser keeps cookies."""

    def __init__(self, base: str, session: aiohttp.ClientSession,
                 headers: dict[str, str] | None = None) -> None:
        self.base = base
        self.session = session
        self.headers = headers or {}
        self.seen: list[str] = []

    async def call(self, method: str, path: str, *, headers: dict[str, str] | None = None,
                   **kwargs: Any) -> tuple[int, Any]:
        url = path if path.startswith("http") else self.base + path
        async with self.session.request(method, url, headers={**self.headers, **(headers or {})},
                                        **kwargs) as response:
            text = await response.text()
            self.seen.append(text)
            if "json" in response.headers.get("Content-Type", "") and text:
                return response.status, await response.json(content_type=None)
            return response.status, text

    async def ok(self, method: str, path: str, expect: int = 200, **kwargs: Any) -> Any:
        status, body = await self.call(method, path, **kwargs)
        assert status == expect, f"{method} {path}: {status} {body}"
        return body


async def journey(base: str) -> dict[str, Any]:
    """The whole flow against the gateway at ``base``; returns what the checks need."""
    async with aiohttp.ClientSession() as agent_session, aiohttp.ClientSession(
            cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser_session:
        agent = Client(base, agent_session)
        # A browser's same-origin fetches carry these; the CSRF check relies on them.
        browser = Client(base, browser_session, {"Origin": base, "Sec-Fetch-Site": "same-origin"})

        # The agent reads the skill and asks for access; nobody has an account yet.
        skill = await agent.ok("GET", "/SKILL.md")
        assert "POST /api/agents/drafts" in skill
        slug = unique_slug("agent")
        asked = await agent.ok("POST", "/api/agents/drafts", 201, json={
            "agentName": "Claude Code",
            "company": {"slug": slug, "displayName": "Agent Built Co"},
            "draft": sample_draft("1.0.0")})
        draft_token = {"Authorization": f"Bearer {asked['draftToken']}"}
        assert asked["handoffUrl"] == f"{base}/connect/{asked['handoffId']}"
        status, early = await agent.call("POST", "/api/agents/redeem", headers=draft_token)
        assert (status, early["code"]) == (409, "not_approved")
        status, refused = await agent.call("POST", "/api/auth/signup", headers=draft_token,
                                           json={"email": "agent@example.com",
                                                 "password": PASSWORD})
        assert (status, refused["code"]) == (403, "agent_signup_refused")

        # The human opens the link, signs up, stores a provider key and approves.
        page = await browser.ok("GET", asked["handoffUrl"])
        assert "Approve an agent" in page
        human = await browser.ok("POST", "/api/auth/signup", 201, json={
            "email": f"human-{slug}@example.com", "password": PASSWORD})
        shown = await browser.ok("GET", f"/api/agents/handoffs/{asked['handoffId']}")
        assert (shown["agentName"], shown["status"], shown["company"]["slug"]) == (
            "Claude Code", "pending", slug)
        await browser.ok("POST", "/api/registry/provider-secrets", 201, json={
            "provider": "anthropic", "name": "main", "value": CANARY_SECRET})
        status, forged = await browser.call(
            "POST", f"/api/agents/handoffs/{asked['handoffId']}/approve",
            headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"})
        assert (status, forged["code"]) == (403, "cross_origin")
        approved = await browser.ok("POST", f"/api/agents/handoffs/{asked['handoffId']}/approve",
                                    201, json={"pairingCode": asked["pairingCode"]})
        assert (approved["company"]["id"], approved["company"]["phase"]) == (slug, "Draft")

        # The agent sees the approval, redeems once, and works with its bearer token.
        mine = await agent.ok("GET", "/api/agents/draft", headers=draft_token)
        assert (mine["status"], mine["companyId"]) == ("approved", slug)
        grant = await agent.ok("POST", "/api/agents/redeem", 201, headers=draft_token)
        assert grant["companyId"] == slug
        assert (await agent.call("POST", "/api/agents/redeem", headers=draft_token))[0] == 401
        bearer = {"Authorization": f"Bearer {grant['token']}"}
        me = await agent.ok("GET", "/api/auth/me", headers=bearer)
        assert (me["user"]["id"], me["principal"], me["platformOwner"]) == (
            human["user"]["id"], "operator_client", False)
        bindings = await agent.ok("GET", f"/api/registry/companies/{slug}/bindings",
                                  headers=bearer)
        assert {b["provider"]: b["status"] for b in bindings["bindings"]}["anthropic"] == "bound"
        accepted = await agent.ok("POST", f"/api/registry/companies/{slug}/provision", 202,
                                  headers=bearer, json={"reason": "my human approved me"})
        assert accepted["phase"] == "Provisioning"

        async def company() -> Any:
            return await agent.ok("GET", f"/api/registry/companies/{slug}", headers=bearer)

        running = await eventually(
            company, lambda c: c["phase"] == "Running" and not c["rolloutInProgress"],
            within=WITHIN, what=f"{slug} Running (agent's view)")
        assert running["history"][0]["requestedBy"] == f"client:{asked['handoffId']}"

        # The human reads the story, then revokes the agent's token.
        trail = await browser.ok("GET", f"/api/registry/companies/{slug}/audit?order=asc")
        tokens = await browser.ok("GET", "/api/auth/tokens")
        assert [(t["agentName"], t["status"]) for t in tokens["tokens"]] == [
            ("Claude Code", "active")]
        await browser.ok("DELETE", f"/api/auth/tokens/{grant['tokenId']}", 204)
        status, _ = await agent.call("GET", f"/api/registry/companies/{slug}", headers=bearer)
        assert status == 401
        assert (await browser.ok("GET", f"/api/registry/companies/{slug}"))["phase"] == "Running"
        await browser.ok("DELETE", f"/api/registry/companies/{slug}", 202, json={"confirm": slug})
        return {"slug": slug, "human": human, "asked": asked, "grant": grant, "trail": trail,
                "seen": agent.seen + browser.seen}


def check_trail(result: dict[str, Any]) -> None:
    client_id = result["asked"]["handoffId"]
    human_id = result["human"]["user"]["id"]
    events = [(e["action"], e["outcome"], e["actor"]["kind"], e["actor"].get("id"))
              for e in result["trail"]["events"]]
    assert events == [
        ("company.create", "succeeded", "user", human_id),
        ("agent.approve", "succeeded", "user", human_id),
        ("agent.redeem", "succeeded", "operator_client", client_id),
        ("provision", "succeeded", "operator_client", client_id)]
    names = {e["actor"].get("name") for e in result["trail"]["events"]}
    assert names == {result["human"]["user"]["email"], "Claude Code"}
    assert result["trail"]["events"][-1]["reason"] == "my human approved me"
    assert not any(CANARY_SECRET in text for text in result["seen"])


async def test_an_agent_provisions_an_exocorp_after_its_human_approves(
        gateway: GatewayUnderTest) -> None:
    result = await journey(gateway.base)
    check_trail(result)
    # Only hashes are stored; the tokens were shown once.
    async with gateway.database.sessionmaker() as s:
        stored = (await s.execute(select(OperatorToken).order_by(
            OperatorToken.created_at))).scalars().all()
    secrets = {result["asked"]["draftToken"], result["grant"]["token"]}
    assert {t.token_hash for t in stored} == {hash_token(secret) for secret in secrets}
    assert not any(secret in t.token_hash for t in stored for secret in secrets)
    assert [t.kind.value for t in stored] == ["draft_access", "client_bearer"]
    assert stored[1].revoked_at is not None


@pytest.fixture
async def gateway_process(cluster: ClusterInfo, platform: Kube,
                          tmp_path: Path) -> AsyncIterator[str]:
    """``exocorp gateway`` as a deployment runs it (SQLite), on the test control plane."""
    port = free_port()
    log = tmp_path / "gateway.log"
    url = f"sqlite+aiosqlite:///{tmp_path}/gateway.db"
    # The platform's operators publish a price book before anyone provisions.
    await upgrade_to_head(url)
    database = open_database(url)
    async with database.sessionmaker.begin() as s:
        await billing.create_price_book(s, name="default", currency="USD", rates={"*": 1},
                                        is_default=True)
    await database.dispose()
    env = {**os.environ, "DATABASE_URL": url,
           "EXOCORP_COOKIE_SECURE": "false", "EXOCORP_NAMESPACE": support.PLATFORM_NAMESPACE,
           "EXOCORP_SIGNUP_CREDIT": "100000"}
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "exocorp.cli", "gateway", "--kubeconfig",
            str(cluster.kubeconfig), "--port", str(port), "--metrics-port", str(free_port()),
            # No platform owner in this journey: signup is opened explicitly (issue 13, item 1).
            "--no-signup-requires-owner",
            "--public-base-url", f"http://127.0.0.1:{port}", env=env, stdout=out,
            stderr=asyncio.subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            async def ready() -> int:
                async with http.get(f"{base}/readyz") as response:
                    return response.status

            await eventually(ready, lambda status: status == 200, within=90,
                             what=f"gateway ready (log {log})")
        yield base
    finally:
        if proc.returncode is None:
            proc.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), timeout=30)
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert "Traceback" not in log.read_text(), log.read_text()[-4000:]


async def test_the_same_journey_against_the_gateway_process(gateway_process: str) -> None:
    check_trail(await journey(gateway_process))
