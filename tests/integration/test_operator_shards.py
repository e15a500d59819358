"""Operator shards on a control plane of their own: each shard reconciles only the Exocorps
carrying its label (the default shard: those without), a shard's standby takes over its
exocorps when its active replica dies, and an exocorp moved between shards is taken over
cleanly by the new one and let go by the old."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from exocorp import names
from exocorp.k8s import Kube
from exocorp.k8s import resources as r
from exocorp.k8s.peering import peering_object
from exocorp.testing.controlplane import ControlPlane
from exocorp.testing.platform import CLUSTER_PEERINGS, OperatorProcess
from exocorp.testing.waiting import eventually
from tests.plugins.cluster import private_plane
from tests.plugins.platform import Driver, private_operator, published_platform

pytestmark = pytest.mark.integration
BLUE = "blue"


@pytest.fixture(scope="module")
def shard_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    with private_plane(tmp_path_factory, "shards", nodes=2) as plane:
        yield plane


@pytest.fixture
async def shard_kube(shard_plane: ControlPlane) -> AsyncIterator[Kube]:
    async with published_platform(shard_plane) as kube:
        await kube.apply(CLUSTER_PEERINGS, peering_object(f"exocorp-{BLUE}"))
        yield kube


def _exocorps_cached(op: OperatorProcess) -> int:
    """How many Exocorps the operator holds (its exocorp_exocorps gauge, summed)."""
    return int(sum(float(line.split()[-1]) for line in op.metrics().splitlines()
                   if line.startswith("exocorp_exocorps{")))


async def _create(driver: Driver, prefix: str, shard: str | None) -> str:
    name = await driver.create(prefix)
    if shard:
        await driver.kube.patch(r.EXOCORPS, name, {"metadata": {"labels": {
            names.LABEL_SHARD: shard}}})
    return name


async def _shard_labels(kube: Kube, name: str) -> set[str | None]:
    """The shard label of every runtime object (and pod) of exocorp ``name``."""
    ns = f"exo-{name}"
    found: set[str | None] = set()
    for resource in (r.DEPLOYMENTS, r.SERVICES, r.CONFIGMAPS, r.PODS):
        for item in (await kube.list(resource, ns))["items"]:
            labels = item["metadata"].get("labels") or {}
            if names.LABEL_EXOCORP in labels:
                found.add(labels.get(names.LABEL_SHARD))
    return found


async def test_two_shards_split_the_fleet_and_a_moved_exocorp_changes_hands(
    shard_plane: ControlPlane, shard_kube: Kube, tmp_path: Path
) -> None:
    default = private_operator(shard_plane, tmp_path, "default")
    blue = private_operator(shard_plane, tmp_path, "blue", "--shard", BLUE)
    default.start()
    blue.start()
    try:
        driver = await Driver.with_secret(shard_kube, "shards")
        plain = await _create(driver, "plain", None)
        tinted = await _create(driver, "tinted", BLUE)
        for name in (plain, tinted):
            await driver.wait(name, "Draft")
            await driver.act(name, "provision")
        for name in (plain, tinted):
            await driver.wait(name, "Running", within=180)
        assert await _shard_labels(shard_kube, plain) == {None}
        assert await _shard_labels(shard_kube, tinted) == {BLUE}
        assert (_exocorps_cached(default), _exocorps_cached(blue)) == (1, 1)

        # Neither touches the other's: with the default shard down, the blue shard carries
        # its own exocorp's restart to the end and leaves the default shard's unobserved.
        default.kill()
        await driver.act(plain, "restart")
        await driver.act(tinted, "restart")
        done = await driver.settled(tinted, within=180)
        assert done.status.rollout is not None
        assert done.status.rollout.outcome.value == "Succeeded"
        left = await driver.get(plain)
        assert (left.status.observed_generation or 0) < (left.metadata.generation or 0)
        default.start()
        await driver.settled(plain, within=180)

        # Move the blue shard's exocorp to the default shard: the default shard takes it (its
        # runtime objects lose the blue label), the blue shard lets it go.
        await shard_kube.patch(r.EXOCORPS, tinted, {"metadata": {"labels": {
            names.LABEL_SHARD: None}}})
        await eventually(lambda: _shard_labels(shard_kube, tinted), lambda s: s == {None},
                         within=180, what="the moved exocorp's objects relabelled")
        await eventually(lambda: _cached(default, blue), lambda c: c == (2, 0), within=60,
                         what="the blue shard let the moved exocorp go")
        await driver.act(tinted, "restart")
        moved = await driver.settled(tinted, within=180)
        assert moved.status.phase == "Running"
        assert moved.status.rollout is not None
        assert moved.status.rollout.outcome.value == "Succeeded"
        assert "Traceback" not in blue.log.read_text()
    finally:
        default.stop()
        blue.stop()


async def _cached(default: OperatorProcess, blue: OperatorProcess) -> tuple[int, int]:
    return _exocorps_cached(default), _exocorps_cached(blue)


async def test_killing_a_shards_active_replica_hands_its_exocorps_to_its_standby(
    shard_plane: ControlPlane, shard_kube: Kube, tmp_path: Path
) -> None:
    peering = ("--shard", BLUE, "--peering", f"exocorp-{BLUE}")
    active = private_operator(shard_plane, tmp_path, "blue-a", *peering, "--priority", "10")
    standby = private_operator(shard_plane, tmp_path, "blue-b", *peering, "--priority", "5")
    active.start()
    standby.start()
    try:
        driver = await Driver.with_secret(shard_kube, "failover")
        name = await _create(driver, "fo", BLUE)
        await driver.wait(name, "Draft", within=180)
        await driver.act(name, "provision")
        await driver.wait(name, "Running", within=180)
        active.kill()
        await driver.act(name, "restart")
        restarted = await driver.settled(name, within=240)
        assert restarted.status.rollout is not None
        assert restarted.status.rollout.outcome.value == "Succeeded"
        assert "Resuming operations" in standby.log.read_text()
    finally:
        active.stop()
        standby.stop()
