"""The platform on the test control plane: CRDs, sample releases, the operator process, and
helpers that drive exocorps through the lifecycle API as the gateway does."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from exocorp.k8s import Kube
from exocorp.k8s import resources as r
from exocorp.lifecycle import perform
from exocorp.model import ActionRequest, Exocorp
from exocorp.testing import samples
from exocorp.testing.controlplane import ControlPlane
from exocorp.testing.dev import DevPlatform
from exocorp.testing.platform import (
    PEERING_NAME,
    PLATFORM_NAMESPACE,
    OperatorProcess,
    install_crds,
)
from exocorp.testing.waiting import eventually
from tests.plugins.canary import CANARY_SECRET
from tests.plugins.cluster import ClusterInfo

RELEASES = (
    samples.release("1.0.0"),
    samples.release("1.1.0"),
    samples.release("1.2.0", ("canary",), behaviour="crashloop"),
    samples.release("0.9.0", ("beta",), behaviour="crashloop"),
)


@pytest.fixture(scope="session")
async def crds(kube: Kube) -> None:
    await install_crds(kube)


@pytest.fixture(scope="session")
def operator(cluster: ClusterInfo, crds: None,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    # Peering, as the chart runs it: a test that starts another operator with a higher
    # priority (the chart tests) pauses this one instead of racing it.
    proc = OperatorProcess(cluster.kubeconfig, tmp_path_factory.mktemp("operator"),
                           resync_seconds=1.0, extra_args=("--peering", PEERING_NAME,
                                                           "--secret-refresh-seconds", "3"))
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="session")
async def platform(kube: Kube, operator: OperatorProcess) -> Kube:
    """The cluster with releases published and the operator running."""
    for release in RELEASES:
        await kube.apply(r.RELEASES, release)
    return kube


@contextlib.asynccontextmanager
async def published_platform(plane: ControlPlane) -> AsyncIterator[Kube]:
    """A client of a module's own control plane (``private_plane``) with the CRDs installed and
    the sample releases published; closed afterwards."""
    kube = await Kube.connect(plane.kubeconfig)
    try:
        await install_crds(kube)
        for release in RELEASES:
            await kube.apply(r.RELEASES, release)
        yield kube
    finally:
        await kube.close()


def private_operator(plane: ControlPlane, tmp_path: Path, name: str,
                     *args: str) -> OperatorProcess:
    """An operator process (not started yet) on a module's own control plane, working in
    ``tmp_path / name``, with ``args`` on its command line."""
    return OperatorProcess(plane.kubeconfig, tmp_path / name, resync_seconds=1.0,
                           extra_args=args)


@contextlib.contextmanager
def quiet_dev_platform(tmp_path_factory: pytest.TempPathFactory,
                       name: str) -> Iterator[DevPlatform]:
    """``exocorp dev``'s whole platform (control plane, operator, gateway) in a fresh directory,
    started without its progress lines and stopped afterwards."""
    platform = DevPlatform(tmp_path_factory.mktemp(name), say=lambda line: None)
    platform.start()
    try:
        yield platform
    finally:
        platform.stop()


class Driver:
    """Creates and drives one account's exocorps the way the gateway does."""

    def __init__(self, kube: Kube, account: str) -> None:
        self.kube = kube
        self.account = account
        self.draft: dict[str, Any] = samples.draft("1.0.0")

    @classmethod
    async def with_secret(cls, kube: Kube, account: str) -> Driver:
        """A driver for ``account`` with its provider credential already bound."""
        driver = cls(kube, account)
        await driver.bind_secret()
        return driver

    async def bind_secret(self, provider: str = "anthropic", value: str = CANARY_SECRET) -> str:
        name = f"{self.account}-{provider}"
        await self.kube.apply(r.SECRETS, samples.provider_secret(
            name, PLATFORM_NAMESPACE, self.account, provider, value))
        return name

    async def create(self, prefix: str = "exo") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:6]}"
        await self.kube.create(r.EXOCORPS, samples.exocorp(name, self.account))
        return name

    async def running(self, prefix: str = "exo", *, within: float = 120) -> str:
        """A new exocorp, provisioned from its Draft and Running (each wait ``within``)."""
        name = await self.create(prefix)
        await self.wait(name, "Draft", within=within)
        await self.act(name, "provision")
        await self.wait(name, "Running", within=within)
        return name

    async def act(self, name: str, action: str, **fields: Any) -> perform.Performed:
        request = ActionRequest.model_validate({"action": action, **fields})
        return await perform.perform(self.kube, PLATFORM_NAMESPACE, name, request,
                                     perform.Caller(actor=f"user:{self.account}",
                                                    draft=self.draft))

    async def get(self, name: str) -> Exocorp:
        return Exocorp.model_validate(await self.kube.get(r.EXOCORPS, name))

    async def wait(self, name: str, phase: str, *, within: float = 120) -> Exocorp:
        async def probe() -> Exocorp:
            return await self.get(name)

        def reached(exo: Exocorp) -> bool:
            gen = exo.metadata.generation or 0
            return exo.status.phase == phase and (exo.status.observed_generation or 0) >= gen

        return await eventually(probe, reached, within=within, what=f"{name} {phase}")

    async def settled(self, name: str, *, within: float = 120) -> Exocorp:
        """Wait until the current rollout has an outcome."""
        async def probe() -> Exocorp:
            return await self.get(name)

        def done(exo: Exocorp) -> bool:
            gen = exo.metadata.generation or 0
            rollout = exo.status.rollout
            return (exo.status.observed_generation or 0) >= gen and rollout is not None \
                and rollout.outcome.value != "Progressing"

        return await eventually(probe, done, within=within, what=f"{name} rollout settled")


@pytest.fixture
async def driver(platform: Kube) -> Driver:
    return await Driver.with_secret(platform, f"acct{uuid.uuid4().hex[:6]}")
