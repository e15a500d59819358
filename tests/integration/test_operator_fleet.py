"""Fleet safety on a control plane of its own: one active operator among peers, the global
rollout throttle, clean shutdown on SIGTERM, and the metrics on-call engineers watch."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from exocorp.k8s import Kube
from exocorp.k8s import resources as r
from exocorp.testing.controlplane import ControlPlane
from exocorp.testing.platform import (
    CLUSTER_PEERINGS,
    PEERING_NAME,
    OperatorProcess,
)
from exocorp.testing.waiting import eventually
from tests.plugins.cluster import private_plane
from tests.plugins.platform import Driver, private_operator, published_platform

pytestmark = pytest.mark.integration
PEERED = ("--peering", PEERING_NAME)


@pytest.fixture(scope="module")
def fleet_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    with private_plane(tmp_path_factory, "fleet", nodes=2) as plane:
        yield plane


@pytest.fixture
async def fleet_kube(fleet_plane: ControlPlane) -> AsyncIterator[Kube]:
    async with published_platform(fleet_plane) as kube:
        yield kube


def _reconciles(op: OperatorProcess) -> float:
    for line in op.metrics().splitlines():
        if line.startswith('exocorp_operator_reconciles_total{result="success"}'):
            return float(line.split()[-1])
    return 0.0


async def test_only_the_highest_priority_peer_acts_and_a_standby_takes_over(
    fleet_plane: ControlPlane, fleet_kube: Kube, tmp_path: Path
) -> None:
    active = private_operator(fleet_plane, tmp_path, "a", *PEERED, "--priority", "10")
    standby = private_operator(fleet_plane, tmp_path, "b", *PEERED, "--priority", "5")
    active.start()
    standby.start()
    try:
        async def peers() -> dict[str, object]:
            obj = await fleet_kube.get(CLUSTER_PEERINGS, PEERING_NAME)
            return dict(obj.get("status") or {})

        listed = await eventually(peers, lambda status: len(status) == 2, within=60,
                                  what="both peers registered")
        assert sorted(int(p["priority"]) for p in listed.values()) == [5, 10]  # type: ignore[index]

        driver = await Driver.with_secret(fleet_kube, "peer")
        await driver.running("peer")
        assert _reconciles(active) > 0
        assert _reconciles(standby) == 0, "the standby acted while the active peer was alive"

        active.kill()  # its peering record expires after its lifetime; then the standby acts
        await driver.running("peer", within=180)
        assert _reconciles(standby) > 0
        assert "Resuming operations" in standby.log.read_text()
    finally:
        active.stop()
        standby.stop()


async def test_a_replica_that_loses_the_active_role_stops_reconciling(
    fleet_plane: ControlPlane, fleet_kube: Kube, tmp_path: Path
) -> None:
    """kopf pauses its watches when a higher-priority peer appears; the work queue, which
    re-queues every exocorp on its own, must stop too, or the old replica keeps acting."""
    old = private_operator(fleet_plane, tmp_path, "old", *PEERED, "--priority", "1")
    new = private_operator(fleet_plane, tmp_path, "new", *PEERED, "--priority", "2")
    old.start()
    try:
        driver = await Driver.with_secret(fleet_kube, "demote")
        name = await driver.running("dem", within=180)
        new.start()
        # The old replica's resync passes stop: its count stays put while the new one's grows.
        counts = await eventually(
            lambda: _settled_counts(old, new), lambda c: c[1] > 0 and c[0] == c[2],
            within=120, what="the old replica stopped reconciling")
        frozen = counts[0]
        await driver.act(name, "restart")
        restarted = await driver.settled(name, within=180)
        assert restarted.status.rollout is not None
        assert restarted.status.rollout.outcome.value == "Succeeded"
        assert _reconciles(old) == frozen, "the paused replica reconciled"
        assert "reconciling paused" in old.log.read_text()
    finally:
        new.stop()
        old.stop()


async def _settled_counts(old: OperatorProcess, new: OperatorProcess) -> tuple[float, float,
                                                                                 float]:
    """The old replica's count, the new one's, and the old one's again a few resyncs later."""
    before = _reconciles(old)
    await asyncio.sleep(3)  # three resync intervals of the old replica (1 s each)
    return before, _reconciles(new), _reconciles(old)


async def test_rollout_throttle_limits_concurrent_rollouts(
    fleet_plane: ControlPlane, fleet_kube: Kube, tmp_path: Path
) -> None:
    op = private_operator(fleet_plane, tmp_path, "t", "--max-concurrent-rollouts", "1")
    op.start()
    try:
        driver = await Driver.with_secret(fleet_kube, "throttle")
        names = [await driver.create("thr") for _ in range(3)]
        for name in names:
            await driver.wait(name, "Draft")
        # First rollouts disrupt nothing, so they do not wait for a slot: all three provision.
        for name in names:
            await driver.act(name, "provision")
        for name in names:
            exo = await driver.wait(name, "Running", within=180)
            assert not any("rollout slot" in c.message for c in exo.status.conditions)
        # A new release for all three: at most one rolls out at a time, the others queue.
        for name in names:
            await driver.act(name, "update", version="1.1.0")
        most = 0
        queued_seen = False

        async def sample() -> list[str]:
            """Each exocorp's phase and running release; tracks the most rollouts at once."""
            nonlocal most, queued_seen
            states = []
            progressing = 0
            for name in names:
                exo = await driver.get(name)
                release = exo.status.release.version if exo.status.release else ""
                states.append(f"{exo.status.phase.value if exo.status.phase else ''} {release}")
                if exo.status.rollout is not None and \
                        exo.status.rollout.outcome.value == "Progressing":
                    progressing += 1
                queued_seen |= any("rollout slot" in c.message for c in exo.status.conditions)
            most = max(most, progressing)
            return states

        await eventually(sample, lambda states: states == ["Running 1.1.0"] * 3, interval=0.05,
                         within=180, what="all three Running 1.1.0")
        assert most <= 1
        assert queued_seen
        assert "exocorp_operator_rollouts_queued" in op.metrics()
    finally:
        op.stop()


async def test_sigterm_shuts_the_operator_down_cleanly(
    fleet_plane: ControlPlane, fleet_kube: Kube, tmp_path: Path
) -> None:
    op = private_operator(fleet_plane, tmp_path, "s")
    op.start()
    assert op.process is not None
    pid = op.process.pid
    os.kill(pid, signal.SIGTERM)
    process = op.process

    async def stopped() -> bool:
        return not process.alive()

    await eventually(stopped, within=60, what="operator exit after SIGTERM")
    log = op.log.read_text()
    assert "Operator is stopping" in log
    # Our own code logged no error while stopping (kopf may log its cancelled watches).
    assert not [line for line in log.splitlines() if " ERROR " in line and " exocorp." in line]
    op.process = None


async def test_metrics_report_the_fleet(fleet_plane: ControlPlane, fleet_kube: Kube,
                                        tmp_path: Path) -> None:
    op = private_operator(fleet_plane, tmp_path, "m")
    op.start()
    try:
        driver = await Driver.with_secret(fleet_kube, "metrics")
        await driver.running("met")

        def gauge(text: str, sample: str) -> float:
            for line in text.splitlines():
                if line.startswith(sample + " "):
                    return float(line.split()[-1])
            raise AssertionError(f"{sample} missing")

        running = sum(1 for item in (await fleet_kube.list(r.EXOCORPS))["items"]
                      if item.get("status", {}).get("phase") == "Running")
        text = await eventually(lambda: _metrics(op), lambda t: gauge(
            t, 'exocorp_exocorps{phase="Running"}') == running, what="phase gauge")
        assert gauge(text, 'exocorp_operator_reconciles_total{result="success"}') > 0
        assert gauge(text, "exocorp_operator_reconcile_duration_seconds_count") > 0
        assert gauge(text, "exocorp_operator_last_watch_event_timestamp_seconds") > 0
    finally:
        op.stop()


async def _metrics(op: OperatorProcess) -> str:
    return op.metrics()
