"""Concurrent SQLite write transactions with and without the gate of
``exocorp.store.sqlite_writers`` (each appends one audit row and commits), on one migrated
file database: transactions a second, p50 and p99 latency, process CPU per transaction, at 1, 5
and 50 concurrent tasks. Both variants share the engine and its pool; only ``begin()`` differs.

Run: uv run python bench/sqlite_writers.py [--seconds 4]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from exocorp.stats import percentile
from exocorp.store import audit, make_sessionmaker, open_database, upgrade_to_head
from exocorp.store.schema import ActorKind, Outcome


async def _append(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions.begin() as s:
        await audit.record_audit_event(s, actor_kind=ActorKind.USER, actor_id="usr_bench",
                                       action="stop", outcome=Outcome.SUCCEEDED,
                                       exocorp_id="bench", details={"fromPhase": "Running"})


async def _load(sessions: async_sessionmaker[AsyncSession], tasks: int,
                seconds: float) -> dict[str, Any]:
    latencies: list[float] = []
    deadline = time.monotonic() + seconds

    async def worker() -> None:
        while time.monotonic() < deadline:
            t0 = time.perf_counter()
            await _append(sessions)
            latencies.append(time.perf_counter() - t0)

    start, cpu = time.monotonic(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(tasks)))
    elapsed, cpu = time.monotonic() - start, time.process_time() - cpu
    return {"tasks": tasks, "per_second": round(len(latencies) / elapsed),
            "p50_ms": round(percentile(latencies, 0.5) * 1e3, 2),
            "p99_ms": round(percentile(latencies, 0.99) * 1e3, 2),
            "cpu_ms_per_transaction": round(cpu * 1e3 / len(latencies), 3)}


async def run(seconds: float) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/bench.db"
        await upgrade_to_head(url)
        database = open_database(url)
        ungated = make_sessionmaker(database.engine)
        out = []
        try:
            for _ in range(50):
                await _append(database.sessionmaker)
            for tasks in (1, 5, 50):
                for name, sessions in (("ungated", ungated), ("gated", database.sessionmaker)):
                    result = {"variant": name, **await _load(sessions, tasks, seconds)}
                    print(json.dumps(result), file=sys.stderr)
                    out.append(result)
        finally:
            await database.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    args = parser.parse_args()
    print(json.dumps({"runs": asyncio.run(run(args.seconds)),
                      "command": f"uv run python bench/sqlite_writers.py --seconds {args.seconds}"},
                     indent=2))


if __name__ == "__main__":
    main()
