"""`exocorp gateway` as the real process a deployment runs: it migrates an empty database,
creates the first platform owner from the environment (password from a file), becomes ready once
its watch cache has synced, serves, and exits cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

from exocorp.k8s import Kube
from exocorp.testing.controlplane import free_port
from exocorp.testing.waiting import eventually
from tests.plugins.cluster import ClusterInfo

pytestmark = pytest.mark.integration

OWNER_PASSWORD = "owner password from a file"


async def test_the_gateway_process_bootstraps_serves_and_stops_on_sigterm(
        cluster: ClusterInfo, platform: Kube, tmp_path: Path) -> None:
    password_file = tmp_path / "owner-password"
    password_file.write_text(OWNER_PASSWORD + "\n")
    port, metrics_port = free_port(), free_port()
    log = tmp_path / "gateway.log"
    env = {**os.environ, "EXOCORP_PLATFORM_OWNER_EMAIL": "root@example.com",
           "EXOCORP_PLATFORM_OWNER_PASSWORD_FILE": str(password_file),
           "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/gateway.db",
           "EXOCORP_COOKIE_SECURE": "false"}
    out = log.open("wb")
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "exocorp.cli", "gateway", "--kubeconfig",
            str(cluster.kubeconfig), "--port", str(port), "--metrics-port", str(metrics_port),
            "--access-log", env=env, stdout=out,
            stderr=asyncio.subprocess.STDOUT)
    finally:
        out.close()
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            async def ready() -> int:
                async with http.get(f"{base}/readyz") as response:
                    return response.status

            await eventually(ready, lambda status: status == 200, within=90,
                             what=f"gateway ready (log {log})")
            async with http.post(f"{base}/api/auth/login", json={
                    "email": "root@example.com", "password": OWNER_PASSWORD}) as response:
                assert response.status == 200, await response.text()
            async with http.get(f"{base}/api/auth/me") as response:
                me = await response.json()
            assert (me["platformOwner"], me["roles"]) == (True, ["user", "platform_owner"])
            async with http.get(f"{base}/api/registry/company-releases/current") as response:
                current = await response.json()
            assert (response.status, current["channel"]) == (200, "stable")
            async with http.get(f"{base}/metrics") as response:  # not on the public port
                assert response.status == 404
            async with http.get(f"http://127.0.0.1:{metrics_port}/metrics") as response:
                assert "exocorp_gateway_http_requests_total" in await response.text()
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), timeout=30) == 0
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
    text = log.read_text()
    assert "shutting down" in text
    assert "Traceback" not in text
    assert OWNER_PASSWORD not in text
    assert '"GET /api/auth/me HTTP/1.1" 200' in text  # --access-log: a line per request


async def test_a_missing_password_file_stops_the_gateway_with_a_clear_message(
        cluster: ClusterInfo, tmp_path: Path) -> None:
    env = {**os.environ, "EXOCORP_PLATFORM_OWNER_EMAIL": "root@example.com",
           "EXOCORP_PLATFORM_OWNER_PASSWORD_FILE": str(tmp_path / "absent"),
           "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/gateway.db"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "exocorp.cli", "gateway", "--kubeconfig", str(cluster.kubeconfig),
        "--port", str(free_port()), "--metrics-port", str(free_port()), env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 2
    assert "EXOCORP_PLATFORM_OWNER_PASSWORD_FILE" in err.decode()
    assert "Traceback" not in err.decode()
