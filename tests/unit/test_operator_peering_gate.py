"""The peering gate: the work queue stops while kopf's peering has this replica paused."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from exocorp.operator.peering import paused_by_peers
from exocorp.operator.workqueue import WorkQueue

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def peer(priority: int, seen_ago: float = 1.0, lifetime: int = 60) -> dict[str, object]:
    return {"priority": priority, "lifetime": lifetime,
            "lastseen": (NOW - timedelta(seconds=seen_ago)).isoformat()}


@pytest.mark.parametrize(("others", "paused"), [
    ({}, False),
    ({"b": peer(5)}, False),                      # a lower priority: we act
    ({"b": peer(20)}, True),                      # a higher one: we wait
    ({"b": peer(10)}, True),                      # the same one: kopf pauses both
    ({"b": peer(20, seen_ago=61)}, False),        # dead (not seen within its lifetime)
    ({"b": {"priority": "x"}}, False),            # unreadable entries are ignored
])
def test_paused_by_peers_follows_kopfs_rule(others: dict[str, object], paused: bool) -> None:
    status = {"me": peer(10), **others}
    assert paused_by_peers(status, "me", 10, NOW) is paused


async def test_a_paused_queue_runs_nothing_until_resumed() -> None:
    done: list[str] = []

    async def handler(name: str) -> float | None:
        done.append(name)
        return None

    queue = WorkQueue(handler, workers=3)
    queue.start()
    try:
        queue.pause()
        for name in ("a", "b", "c"):
            queue.add(name)
        for _ in range(20):
            await asyncio.sleep(0)
        assert done == []
        queue.resume()
        for _ in range(50):
            if len(done) == 3:
                break
            await asyncio.sleep(0.01)
        assert sorted(done) == ["a", "b", "c"]
    finally:
        await queue.stop()
