"""The real control plane for integration and e2e tests: one per test session, started by the
harness (or reused from ``EXOCORP_TEST_KUBECONFIG``); tests isolate themselves by namespace.
A module that needs a plane of its own (a fault that would disturb the others, a fleet of nodes)
takes one from :func:`private_plane`."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from exocorp.k8s import Kube
from exocorp.k8s import resources as r
from exocorp.testing import binaries
from exocorp.testing.controlplane import ControlPlane


class ClusterInfo:
    """What a test needs to reach the control plane."""

    def __init__(self, kubeconfig: Path, plane: ControlPlane | None) -> None:
        self.kubeconfig = kubeconfig
        self.plane = plane

    @property
    def kubectl(self) -> Path:
        return binaries.ensure(build_missing=False).kubectl

    async def run_kubectl(self, *args: str) -> str:
        """Run kubectl as a user would; fails the test on a non-zero exit."""
        proc = await asyncio.create_subprocess_exec(
            str(self.kubectl), "--kubeconfig", str(self.kubeconfig), *args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
        assert proc.returncode == 0, f"kubectl {' '.join(args)}: {err.decode()}"
        return out.decode()


@contextlib.contextmanager
def private_plane(tmp_path_factory: pytest.TempPathFactory, name: str, *, nodes: int,
                  volumes: int = 16) -> Iterator[ControlPlane]:
    """A control plane of a test module's own, started quietly and stopped after."""
    plane = ControlPlane(tmp_path_factory.mktemp(name), nodes=nodes, volumes=volumes,
                         progress=lambda line: None)
    plane.start()
    try:
        yield plane
    finally:
        plane.stop()


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterInfo]:
    from tests.plugins.canary import scan_cluster  # (imports this module's neighbours)

    external = os.environ.get("EXOCORP_TEST_KUBECONFIG")
    if external:
        info = ClusterInfo(Path(external), None)
        yield info
        scan_cluster(info.kubectl, info.kubeconfig)
        return
    # Room for every exocorp the whole suite provisions (tests leave theirs running): 10 nodes
    # of 32 CPUs and 110 pods, and a claimable volume for each one.
    plane = ControlPlane(tmp_path_factory.mktemp("cluster"), nodes=10, volumes=400)
    plane.start()
    try:
        info = ClusterInfo(plane.kubeconfig, plane)
        yield info
        scan_cluster(info.kubectl, info.kubeconfig)  # the canary check, while it still runs
    finally:
        plane.stop()


@pytest.fixture(scope="session")
async def kube(cluster: ClusterInfo) -> AsyncIterator[Kube]:
    client = await Kube.connect(cluster.kubeconfig)
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def namespace(kube: Kube) -> AsyncIterator[str]:
    """A fresh namespace for one test, deleted afterwards."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    labels = {"exocorp.io/test": "1"}
    await kube.create(r.NAMESPACES, {"metadata": {"name": name, "labels": labels}})
    try:
        yield name
    finally:
        await kube.delete(r.NAMESPACES, name)
