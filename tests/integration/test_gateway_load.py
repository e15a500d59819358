"""Mixed concurrent load on the real gateway process (SQLite), the session's control plane and the
real operator: no 5xx, every accepted action applied exactly once and audited once, every refused
one audited as refused, and each exocorp's final state is its last accepted action's.

The reduced-scale twin of ``bench/load.py`` (same code: ``exocorp.testing.load``). Correctness
only: no wall-clock thresholds."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest

from exocorp.k8s import Kube
from exocorp.testing import load
from exocorp.testing.platform import GatewayProcess
from tests.plugins.cluster import ClusterInfo

pytestmark = pytest.mark.integration

OWNER_EMAIL = "load-owner@example.com"
OWNER_PASSWORD = "load owner password"


async def test_mixed_load_applies_each_accepted_action_exactly_once(
        cluster: ClusterInfo, platform: Kube, tmp_path: Path) -> None:
    password_file = tmp_path / "owner-password"
    password_file.write_text(OWNER_PASSWORD)
    gateway = GatewayProcess(
        cluster.kubeconfig, tmp_path, f"sqlite+aiosqlite:///{tmp_path}/gateway.db",
        env={"EXOCORP_PLATFORM_OWNER_EMAIL": OWNER_EMAIL,
             "EXOCORP_PLATFORM_OWNER_PASSWORD_FILE": str(password_file),
             # Credit for the whole run: a billing pause is audited and counted, but is not
             # what this test is about.
             "EXOCORP_SIGNUP_CREDIT": str(10**12)})
    await asyncio.to_thread(gateway.start)
    tag = load.new_tag("lt")
    try:
        async with aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=120),
                connector=aiohttp.TCPConnector(limit=0)) as http:
            fleet = await load.provision_fleet(platform, http, gateway.url, tag=tag, accounts=4,
                                               exocorps=10, within=300)
            names = [slug for account in fleet for slug in account.exocorps]
            before = await load.snapshot(platform, names)
            since = load.utcnow()
            config = load.LoadConfig(clients=20, seconds=10, action_share=0.3)
            samples, elapsed = await load.run_load(http, gateway.url, fleet, config, tag=tag)
            await load.settle(platform, names, within=300)
            after = await load.snapshot(platform, names)
            owner = await load.login_token(http, gateway.url, OWNER_EMAIL, OWNER_PASSWORD)
            events = await load.audit_events(http, gateway.url, owner, since=since)
        verdict = load.verify(samples, events, before, after, tag=tag)
        summary = load.summarise(samples, elapsed)
        assert verdict.problems == [], (verdict.problems[:20], verdict.checks, summary)
        # The run exercised what it claims to: actions accepted and refused, reads served.
        assert verdict.checks["accepted_actions"] > 0, summary
        assert verdict.checks["refused_actions"] > 0, summary
        assert summary["reads"]["count"] > summary["actions"]["count"], summary
        assert verdict.checks["audit_succeeded_events"] == verdict.checks["accepted_actions"]
        assert verdict.checks["exocorps_final_state_consistent"] == \
            verdict.checks["exocorps_acted_on"] > 0
    finally:
        await asyncio.to_thread(gateway.stop)
    assert "Traceback" not in gateway.log.read_text()
