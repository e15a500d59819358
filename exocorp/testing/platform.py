"""The platform on a local control plane: CRDs installed, the operator as a real process.
Used by `exocorp dev` and by the integration and e2e tests."""

from __future__ import annotations

import sys
import time
import urllib.request
from pathlib import Path

from exocorp.k8s import Kube
from exocorp.k8s import resources as r
from exocorp.model.crd import crd_documents
from exocorp.operator.peering import peering_crds, peering_object
from exocorp.testing.controlplane import ControlPlaneError, free_port
from exocorp.testing.processes import ManagedProcess, spawn
from exocorp.testing.waiting import eventually

PLATFORM_NAMESPACE = "exocorp-system"
PEERING_NAME = "exocorp"
CLUSTER_PEERINGS = r.Resource("kopf.dev", "v1", "clusterkopfpeerings", "ClusterKopfPeering", False)


async def install_crds(kube: Kube) -> None:
    """Apply our CRDs and kopf's peering CRDs, wait until each is Established, and create the
    platform namespace."""
    crds = [*crd_documents(), *peering_crds()]
    for crd in crds:
        await kube.apply(r.CRDS, crd)

    async def all_established() -> bool:
        for crd in crds:
            obj = await kube.get(r.CRDS, crd["metadata"]["name"])
            conditions = obj.get("status", {}).get("conditions", [])
            if not any(c["type"] == "Established" and c["status"] == "True"
                       for c in conditions):
                return False
        return True

    await eventually(all_established, within=60, what="CRDs Established")
    if await kube.get_or_none(r.NAMESPACES, PLATFORM_NAMESPACE) is None:
        await kube.create(r.NAMESPACES, {"metadata": {"name": PLATFORM_NAMESPACE}})
    await kube.apply(CLUSTER_PEERINGS, peering_object(PEERING_NAME))


class OperatorProcess:
    """`exocorp operator` as a child process: start, SIGKILL, restart, stop."""

    def __init__(self, kubeconfig: Path, workdir: Path, *, resync_seconds: float = 2.0,
                 extra_args: tuple[str, ...] = ()) -> None:
        self.kubeconfig = kubeconfig
        self.workdir = workdir
        self.resync_seconds = resync_seconds
        self.extra_args = extra_args
        self.metrics_port = free_port()
        self.process: ManagedProcess | None = None
        self.starts = 0

    @property
    def log(self) -> Path:
        return self.workdir / "logs" / "operator.log"

    def start(self) -> None:
        self.starts += 1
        argv = [sys.executable, "-m", "exocorp.cli", "operator",
                "--kubeconfig", str(self.kubeconfig), "--metrics-port", str(self.metrics_port),
                "--resync-seconds", str(self.resync_seconds), *self.extra_args]
        self.process = spawn("operator", argv, self.log)
        deadline = time.monotonic() + 60
        while not self._healthy():
            if not self.process.alive():
                raise ControlPlaneError(f"operator exited; last lines of {self.log}:\n"
                                        f"{self.process.log_tail()}")
            if time.monotonic() > deadline:
                raise ControlPlaneError(f"operator not healthy after 60s:\n"
                                        f"{self.process.log_tail()}")
            time.sleep(0.2)

    def _healthy(self) -> bool:
        try:
            url = f"http://127.0.0.1:{self.metrics_port}/healthz"
            with urllib.request.urlopen(url, timeout=1) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as resp:
            text: str = resp.read().decode()
            return text

    def kill(self) -> None:
        """SIGKILL: no cleanup, as a crash or an OOM kill would leave things."""
        if self.process is not None:
            self.process.kill()
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None
