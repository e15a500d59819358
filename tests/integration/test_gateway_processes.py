"""`exocorp gateway --processes 2` as a pod runs it, on the real control plane: both processes
serve the one public port, each its own /metrics port, only process 0 runs the background work
(it takes the metering lease), a killed process is started again while the other serves, and
SIGTERM to the supervisor drains both."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import sys
import uuid
from collections.abc import Iterable
from pathlib import Path

import aiohttp
import pytest

from exocorp.k8s import Kube
from exocorp.testing.controlplane import free_port
from exocorp.testing.waiting import eventually
from tests.plugins.cluster import ClusterInfo

pytestmark = pytest.mark.integration

OWNER_PASSWORD = "owner password from a file"


def free_ports_in_a_row(count: int) -> int:
    """The first of ``count`` consecutive free ports (the metrics ports of the processes)."""
    for _ in range(100):
        first = free_port()
        try:
            for port in range(first, first + count):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        return first
    raise RuntimeError(f"no {count} consecutive free ports")


def workers_of(supervisor: int) -> dict[int, int]:
    """{process index: pid} of the supervisor's gateway processes, from /proc."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            argv = (entry / "cmdline").read_bytes().decode().split("\0")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == supervisor and "--process-index" in argv:
            found[int(argv[argv.index("--process-index") + 1])] = int(entry.name)
    return found


def still_running(pids: Iterable[int]) -> list[int]:
    return [pid for pid in pids if Path(f"/proc/{pid}").exists()]


def sample(text: str, name: str) -> float | None:
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else None


async def test_two_processes_share_the_port_and_a_killed_one_comes_back(
        cluster: ClusterInfo, platform: Kube, tmp_path: Path) -> None:
    password_file = tmp_path / "owner-password"
    password_file.write_text(OWNER_PASSWORD + "\n")
    port, metrics_port = free_port(), free_ports_in_a_row(2)
    log = tmp_path / "gateway.log"
    env = {**os.environ, "EXOCORP_PLATFORM_OWNER_EMAIL": "root@example.com",
           "EXOCORP_PLATFORM_OWNER_PASSWORD_FILE": str(password_file),
           "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/gateway.db",
           "EXOCORP_COOKIE_SECURE": "false",
           # A lease of its own: another test's gateway may hold the shared one.
           "EXOCORP_METERING_LEASE_NAME": f"processes-{uuid.uuid4().hex[:8]}"}
    out = log.open("wb")
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "exocorp.cli", "gateway", "--kubeconfig",
            str(cluster.kubeconfig), "--port", str(port), "--metrics-port", str(metrics_port),
            "--processes", "2", env=env, stdout=out, stderr=asyncio.subprocess.STDOUT)
    finally:
        out.close()
    base = f"http://127.0.0.1:{port}"
    metrics_urls = [f"http://127.0.0.1:{metrics_port + i}/metrics" for i in range(2)]
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            async def status(url: str) -> int:
                async with http.get(url) as response:
                    return response.status

            async def scrape(index: int) -> str:
                async with http.get(metrics_urls[index]) as response:
                    return await response.text()

            await eventually(lambda: status(f"{base}/readyz"), lambda s: s == 200, within=90,
                             what=f"gateway ready (log {log})")
            first = await eventually(lambda: asyncio.to_thread(workers_of, proc.pid),
                                     lambda w: len(w) == 2, within=30, what="two processes")
            async with http.post(f"{base}/api/auth/login", json={
                    "email": "root@example.com", "password": OWNER_PASSWORD}) as response:
                assert response.status == 200, await response.text()
            async with http.get(f"{base}/api/auth/me") as response:
                assert (await response.json())["platformOwner"] is True

            # Every new connection goes to one of the processes: each has served some.
            async with aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(force_close=True)) as fresh:
                for _ in range(40):
                    async with fresh.get(f"{base}/healthz") as response:
                        assert response.status == 200
            for index in range(2):
                served = sample(await scrape(index), r'exocorp_gateway_http_requests_total\{'
                                'method="GET",route="/healthz",status="200"\\}')
                assert served, f"process {index} served no /healthz"

            # Process 0 alone runs the background work: it takes the metering lease.
            await eventually(lambda: scrape(0),
                             lambda t: sample(t, "exocorp_metering_leader") == 1.0,
                             within=60, what="process 0 holds the metering lease")
            assert sample(await scrape(1), "exocorp_metering_leader") == 0.0

            os.kill(first[1], signal.SIGKILL)  # as an out-of-memory kill would
            again = await eventually(
                lambda: asyncio.to_thread(workers_of, proc.pid),
                lambda w: len(w) == 2 and w[1] != first[1], within=60,
                what="process 1 started again")
            assert again[0] == first[0]
            assert "exocorp_gateway_http_requests_total" in await eventually(
                lambda: scrape(1), within=90, what="process 1's metrics again")
            # Its metrics come up before its cache has synced; it listens (and, stopped later,
            # says "shutting down") only once synced. A busy machine takes a while for that.
            await eventually(
                lambda: asyncio.to_thread(
                    lambda: log.read_text().count("gateway process 1 listening")),
                lambda seen: seen >= 2, within=90, what="process 1 listening again")
            async with http.get(f"{base}/api/auth/me") as response:
                assert response.status == 200  # the session lives in the database
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), timeout=60) == 0
        assert not await asyncio.to_thread(still_running, again.values())
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
    text = log.read_text()
    assert text.count("shutting down") == 2
    assert "gateway process 1 (pid" in text  # the supervisor said it restarted it
    assert "Traceback" not in text
    assert OWNER_PASSWORD not in text
    assert "GET /api/auth/me" not in text  # no access log unless --access-log
