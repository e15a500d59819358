"""CPU the gateway spends on a cached read, in-process: the real app (SQLite, an in-memory API
server: the unit tests' fixtures) answers ``GET /api/registry/companies/{id}``,
``GET /api/registry/my-companies`` (``--fleet`` exocorps) and ``GET /healthz`` over a real
socket, one request at a time; the process's CPU time per request is reported, and the
difference to ``/healthz`` (same HTTP stack and client) is the gateway's own work for the read.
The ``app_layer_us`` figures time the app alone (routing, middleware chain, handler) on requests
built in memory: no socket, no client, no HTTP parsing, so they move only with the gateway's
own code, and much less with a busy machine than the figures over the socket.
``--profile`` prints the detail read's cProfile instead (top functions by cumulative time).

Run: uv run python bench/gateway_read_cpu.py [--requests 3000] [--fleet 50] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, make_mocked_request

sys.path.insert(0, str(Path(__file__).parent.parent))
sys.path.insert(0, str(Path(__file__).parent))

import in_process

from exocorp.testing import samples
from tests.plugins.gateway import FakeKube


async def _cpu_per_request(client: TestClient[Any, Any], path: str, n: int) -> float:
    for _ in range(min(n, 200)):  # warm: memoised answers, caches, code paths
        assert (await client.get(path)).status == 200
    start = time.process_time()
    for _ in range(n):
        response = await client.get(path)
        await response.read()
    return (time.process_time() - start) / n


async def _app_cpu_per_request(app: web.Application, path: str, headers: dict[str, str],
                               n: int) -> float:
    """The app's own CPU per request: the handler chain run on requests built beforehand (the
    server calls this same ``_handle`` for each request it has parsed)."""
    for _ in range(min(n, 200)):
        response = await app._handle(make_mocked_request("GET", path, headers=headers, app=app))
        assert response.status == 200, path
    built = [make_mocked_request("GET", path, headers=headers, app=app) for _ in range(n)]
    start = time.process_time()
    for request in built:
        await app._handle(request)
    return (time.process_time() - start) / n


async def run(requests: int, fleet: int, profile: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        client, database = await in_process.gateway(Path(tmp), FakeKube())
        try:
            response = await client.post("/api/auth/signup", json={
                "email": "bench@example.com", "password": "correct horse battery"})
            assert response.status == 201, await response.text()
            for i in range(fleet):
                response = await client.post("/api/registry/companies", json={
                    "slug": f"bench-{i:03d}", "displayName": f"Bench {i}",
                    "draft": samples.draft("1.0.0")})
                assert response.status == 201, await response.text()
            detail = "/api/registry/companies/bench-000"
            if profile:
                profiler = cProfile.Profile()
                profiler.enable()
                await _cpu_per_request(client, detail, requests)
                profiler.disable()
                pstats.Stats(profiler).sort_stats("cumulative").print_stats(45)
                return {}
            health = await _cpu_per_request(client, "/healthz", requests)
            one = await _cpu_per_request(client, detail, requests)
            mine = await _cpu_per_request(client, "/api/registry/my-companies", requests // 5)
            app = client.server.app
            assert app is not None
            cookie = client.session.cookie_jar.filter_cookies(client.make_url("/"))
            headers = {"Host": f"127.0.0.1:{client.port}",
                       "Cookie": "; ".join(f"{k}={m.value}" for k, m in cookie.items())}
            app_layer = {path: round(await _app_cpu_per_request(app, path, headers,
                                                                requests * 3) * 1e6, 1)
                         for path in ("/healthz", detail, "/api/registry/my-companies")}
        finally:
            await client.close()
            await database.dispose()
    return {
        "requests": requests, "fleet": fleet,
        "healthz_cpu_ms": round(health * 1e3, 3),
        "company_detail_cpu_ms": round(one * 1e3, 3),
        "company_detail_over_healthz_ms": round((one - health) * 1e3, 3),
        "my_companies_cpu_ms": round(mine * 1e3, 3),
        "my_companies_over_healthz_ms": round((mine - health) * 1e3, 3),
        "app_layer_us": app_layer,
        "command": f"uv run python bench/gateway_read_cpu.py --requests {requests} "
                   f"--fleet {fleet}",
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--fleet", type=int, default=50)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    result = asyncio.run(run(args.requests, args.fleet, args.profile))
    if result:
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
