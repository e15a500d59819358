"""Where a lifecycle action's time goes inside the gateway, in-process, with no cluster.

The real gateway app on a migrated SQLite file database and the unit tests' in-memory API server
(tests/plugins/gateway.py), one client: an owner with a credential and one provisioned exocorp
runs ``POST .../stop`` and ``POST .../provision`` in turn, each a real spec write. Reported per
action: wall milliseconds (p50 and mean); the process's CPU time (client, server and the SQLite
thread: the figure to compare on a busy machine); the part spent inside the in-memory API
server's PATCH (the rest is the gateway's own work plus the in-process HTTP client); the SQL the
gateway ran (statements, transactions begun, commits; SQLAlchemy event hooks; a
transaction's BEGIN goes out with its first statement, not counted as one) and the calls into
aiosqlite's worker thread (each a round trip between threads). The same with an
``Idempotency-Key`` on every action, and ``GET /healthz`` as the HTTP floor.

``--profile`` runs the keyed actions again under cProfile and prints the top functions.
``--others N`` gives the owner N more provisioned exocorps (in the API server and the watch
cache): what an action costs in a large account. ``--fleet N`` adds N provisioned exocorps of
other accounts, and ``--platform-cap`` sets a platform-wide CPU cap (so every action counts what
the whole fleet requests): what an action costs on a large platform. ``--postgresql`` runs the
gateway on a throwaway PostgreSQL 15 with its production durability settings instead of SQLite.

Run: uv run python bench/action_profile.py [--actions 400] [--others 499] [--profile]
         [--fleet 9500] [--platform-cap] [--postgresql]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import cProfile
import io
import json
import pstats
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiosqlite
from aiohttp.test_utils import TestClient
from sqlalchemy import event

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import in_process
from profile_packages import by_package

from exocorp.api_gateway.keys import CACHE, DATABASE
from exocorp.k8s import resources as r
from exocorp.store import limits
from exocorp.testing import samples
from exocorp.testing.postgres import DURABLE_POSTGRES, running_postgres
from tests.plugins.gateway import FakeKube


@dataclass
class SqlCounts:
    """SQL the gateway's engine ran (SQLAlchemy events on the sync engine)."""

    statements: int = 0
    begins: int = 0
    commits: int = 0
    rollbacks: int = 0
    kinds: Counter[str] = field(default_factory=Counter)

    def listen(self, engine: Any) -> None:
        def statement(_c: Any, _cur: Any, sql: str, *_rest: Any) -> None:
            self.statements += 1
            self.kinds[" ".join(sql.split()[:3])[:60]] += 1

        def begin(_c: Any) -> None:
            self.begins += 1

        def commit(_c: Any) -> None:
            self.commits += 1

        def rollback(_c: Any) -> None:
            self.rollbacks += 1

        event.listen(engine, "before_cursor_execute", statement)
        event.listen(engine, "begin", begin)
        event.listen(engine, "commit", commit)
        event.listen(engine, "rollback", rollback)

    def snapshot(self) -> tuple[int, int, int, int, int]:
        return self.statements, self.begins, self.commits, self.rollbacks, DRIVER_CALLS[0]


DRIVER_CALLS = [0]
"""Calls into aiosqlite's worker thread (each one a thread round trip for the event loop)."""
_execute = aiosqlite.Connection._execute


async def _counted_execute(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
    DRIVER_CALLS[0] += 1
    return await _execute(self, fn, *args, **kwargs)


aiosqlite.Connection._execute = _counted_execute  # type: ignore[method-assign]


class TimedKube(FakeKube):
    """The in-memory API server, with the time its PATCH takes summed (not the gateway's)."""

    patch_seconds = 0.0

    async def patch(self, *args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return await super().patch(*args, **kwargs)
        finally:
            self.patch_seconds += time.perf_counter() - t0


@dataclass(frozen=True)
class Fleet:
    """Who else is in the cache: ``others`` exocorps of the owner, ``strangers`` of other
    accounts (owners that do not exist: only the sums see them), and a platform CPU cap."""

    others: int = 0
    strangers: int = 0
    platform_cap: bool = False


async def setup(workdir: Path, fleet: Fleet, database_url: str | None = None,
                ) -> tuple[TestClient[Any, Any], TimedKube, SqlCounts, Any]:
    kube = TimedKube()
    client, database = await in_process.gateway(workdir, kube, database_url)
    response = await client.post("/api/auth/signup", json={
        "email": "ada@example.com", "password": "correct horse battery"})
    assert response.status == 201, await response.text()
    response = await client.post("/api/registry/companies", json={
        "slug": "acme", "displayName": "Acme", "draft": samples.draft("1.0.0")})
    assert response.status == 201, await response.text()
    response = await client.post("/api/registry/provider-secrets", json={
        "provider": "anthropic", "name": "main", "value": "sk-bench-0123456789"})
    assert response.status == 201, await response.text()
    response = await client.post("/api/registry/companies/acme/provision")
    assert response.status == 202, await response.text()
    acme = await kube.get(r.EXOCORPS, "acme")
    # The other exocorps, as the watch would bring them.
    for i in range(fleet.others + fleet.strangers):
        body = copy.deepcopy(acme)
        body["metadata"] = {"name": f"other-{i:05d}", "labels": acme["metadata"].get("labels")}
        if i >= fleet.others:
            body["spec"]["owner"] = f"stranger-{i % 500:03d}"
        body.pop("status", None)
        client.server.app[CACHE].observe_exocorp(await kube.create(r.EXOCORPS, body))
    if fleet.platform_cap:
        async with client.server.app[DATABASE].sessionmaker.begin() as s:
            await limits.set_limits(s, limits.PLATFORM_SCOPE,
                                    limits.Limits(max_cpu_millicores=10**12))
    counts = SqlCounts()
    counts.listen(database.engine.sync_engine)
    return client, kube, counts, database


async def actions(client: TestClient[Any, Any], n: int, *, keyed: bool,
                  start: str = "stop") -> list[float]:
    """``n`` actions, stop and provision in turn; their latencies in seconds."""
    latencies = []
    name = start
    for i in range(n):
        headers = {"Idempotency-Key": uuid.uuid4().hex} if keyed else {}
        t0 = time.perf_counter()
        response = await client.post(f"/api/registry/companies/acme/{name}",
                                     json={"reason": f"profile {i}"}, headers=headers)
        await response.read()
        latencies.append(time.perf_counter() - t0)
        assert response.status == 202, (name, response.status, await response.text())
        name = "provision" if name == "stop" else "stop"
    return latencies


async def floor(client: TestClient[Any, Any], n: int) -> list[float]:
    latencies = []
    for _ in range(n):
        t0 = time.perf_counter()
        response = await client.get("/healthz")
        await response.read()
        latencies.append(time.perf_counter() - t0)
    return latencies


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


async def scenario(client: TestClient[Any, Any], kube: TimedKube, counts: SqlCounts, n: int,
                   *, keyed: bool) -> dict[str, Any]:
    await actions(client, 20, keyed=keyed)  # warm up (an even count: the next one is a stop)
    before = counts.snapshot()
    counts.kinds.clear()
    kube.patch_seconds = 0.0
    cpu = time.process_time()
    latencies = await actions(client, n, keyed=keyed)
    cpu = time.process_time() - cpu
    statements, begins, commits, rollbacks, calls = (
        after - b for after, b in zip(counts.snapshot(), before, strict=True))
    mean = statistics.fmean(latencies)
    return {
        "actions": n, "idempotency_key": keyed,
        "p50_ms": _ms(statistics.median(latencies)), "mean_ms": _ms(mean),
        "api_server_patch_mean_ms": _ms(kube.patch_seconds / n),
        "rest_mean_ms": _ms(mean - kube.patch_seconds / n),
        "process_cpu_ms": _ms(cpu / n),
        "sql_per_action": {"statements": round(statements / n, 2),
                           "transactions": round(begins / n, 2),
                           "commits": round(commits / n, 2),
                           "rollbacks": round(rollbacks / n, 2),
                           "driver_thread_calls": round(calls / n, 2)},
        "statements_by_kind_per_action": {kind: round(c / n, 2)
                                          for kind, c in counts.kinds.most_common()},
    }


async def run(n: int, profile: bool, top: int, fleet: Fleet,
              database_url: str | None = None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        client, kube, counts, database = await setup(Path(tmp), fleet, database_url)
        try:
            await floor(client, 50)
            healthz = await floor(client, n)
            out: dict[str, Any] = {
                "account_exocorps": 1 + fleet.others,
                "platform_exocorps": 1 + fleet.others + fleet.strangers,
                "platform_cap": fleet.platform_cap,
                "healthz_p50_ms": _ms(statistics.median(healthz)),
                "plain": await scenario(client, kube, counts, n, keyed=False),
                "keyed": await scenario(client, kube, counts, n, keyed=True),
            }
            if profile:
                profiler = cProfile.Profile()
                profiler.enable()
                await actions(client, n, keyed=True)
                profiler.disable()
                text = io.StringIO()
                stats = pstats.Stats(profiler, stream=text)
                stats.sort_stats("cumulative").print_stats(top)
                stats.sort_stats("tottime").print_stats(top)
                print(text.getvalue(), file=sys.stderr)
                out["profile_ms_per_action_by_package"] = by_package(stats, n)
            return out
        finally:
            await client.close()
            await database.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--actions", type=int, default=400)
    parser.add_argument("--profile", action="store_true", help="cProfile the keyed actions")
    parser.add_argument("--top", type=int, default=40, help="functions shown by --profile")
    parser.add_argument("--others", type=int, default=0,
                        help="more provisioned exocorps of the same owner")
    parser.add_argument("--fleet", type=int, default=0,
                        help="provisioned exocorps of other accounts")
    parser.add_argument("--platform-cap", action="store_true",
                        help="a platform-wide CPU cap: every action sums the whole fleet")
    parser.add_argument("--postgresql", action="store_true",
                        help="a throwaway PostgreSQL 15 (durable settings) instead of SQLite")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        url = None
        if args.postgresql:
            url = stack.enter_context(running_postgres("exocorp_profile",
                                                       settings=DURABLE_POSTGRES)).url
        fleet = Fleet(args.others, args.fleet, args.platform_cap)
        result = asyncio.run(run(args.actions, args.profile, args.top, fleet, url))
    result["database"] = "postgresql" if args.postgresql else "sqlite"
    result["command"] = " ".join(["uv run python bench/action_profile.py", *sys.argv[1:]])
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
