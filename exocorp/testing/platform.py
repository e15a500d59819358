"""The platform on a local control plane: CRDs installed, the operator as a real process.
Used by `exocorp dev` and by the integration and e2e tests."""

from __future__ import annotations

import os
import sys
import time
import urllib.request
from pathlib import Path

from exocorp.k8s import Kube
from exocorp.k8s import resources as r
from exocorp.k8s.peering import peering_crds, peering_object
from exocorp.model.crd import crd_documents
from exocorp.testing.controlplane import ControlPlaneError, free_port
from exocorp.testing.processes import ManagedProcess, spawn
from exocorp.testing.waiting import eventually

PLATFORM_NAMESPACE = "exocorp-system"
PEERING_NAME = "exocorp"
CLUSTER_PEERINGS = r.CLUSTER_PEERINGS


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


class ServiceProcess:
    """One of the platform's processes (`exocorp operator`, `exocorp gateway`) run as a child:
    started and waited for until healthy, SIGKILLed, restarted, stopped."""

    name = "service"
    health_path = "/healthz"

    def __init__(self, workdir: Path, port: int | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.env = env
        self.process: ManagedProcess | None = None
        self.starts = 0

    @property
    def log(self) -> Path:
        return self.workdir / "logs" / f"{self.name}.log"

    def argv(self) -> list[str]:
        raise NotImplementedError

    def start(self, timeout: float = 90.0) -> None:
        self.starts += 1
        env = {**os.environ, **self.env} if self.env else None
        self.process = spawn(self.name, self.argv(), self.log, env=env)
        deadline = time.monotonic() + timeout
        while not self._healthy():
            if not self.process.alive():
                raise ControlPlaneError(f"{self.name} exited; last lines of {self.log}:\n"
                                        f"{self.process.log_tail()}")
            if time.monotonic() > deadline:
                raise ControlPlaneError(f"{self.name} not healthy after {timeout:.0f}s:\n"
                                        f"{self.process.log_tail()}")
            time.sleep(0.2)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + self.health_path, timeout=1) as resp:  # noqa: S310
                return bool(resp.status == 200)
        except OSError:
            return False

    @property
    def metrics_port(self) -> int:
        """Where /metrics is served (the operator: its one port)."""
        return self.port

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as resp:
            text: str = resp.read().decode()
            return text

    def kill(self) -> None:
        """SIGKILL: no cleanup, as a crash or an out-of-memory kill would leave things."""
        if self.process is not None:
            self.process.kill()
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None


class OperatorProcess(ServiceProcess):
    """`exocorp operator` against ``kubeconfig``."""

    name = "operator"

    def __init__(self, kubeconfig: Path, workdir: Path, *, resync_seconds: float = 2.0,
                 extra_args: tuple[str, ...] = ()) -> None:
        super().__init__(workdir)
        self.kubeconfig = kubeconfig
        self.resync_seconds = resync_seconds
        self.extra_args = extra_args

    def argv(self) -> list[str]:
        return [sys.executable, "-m", "exocorp.cli", "operator",
                "--kubeconfig", str(self.kubeconfig), "--metrics-port", str(self.port),
                "--resync-seconds", str(self.resync_seconds), *self.extra_args]


class GatewayProcess(ServiceProcess):
    """`exocorp gateway` on loopback, ready when /readyz answers (cache synced, DB migrated)."""

    name = "gateway"
    health_path = "/readyz"

    def __init__(self, kubeconfig: Path, workdir: Path, database_url: str, *,
                 port: int | None = None, env: dict[str, str] | None = None,
                 extra_args: tuple[str, ...] = ()) -> None:
        super().__init__(workdir, port=port, env=env)
        self.kubeconfig = kubeconfig
        self.database_url = database_url
        self.extra_args = extra_args
        self._metrics_port = free_port()

    @property
    def metrics_port(self) -> int:
        """/metrics has a port of its own, apart from the public one."""
        return self._metrics_port

    def argv(self) -> list[str]:
        return [sys.executable, "-m", "exocorp.cli", "gateway",
                "--kubeconfig", str(self.kubeconfig), "--host", "127.0.0.1",
                "--port", str(self.port), "--metrics-port", str(self.metrics_port),
                "--database-url", self.database_url,
                "--no-cookie-secure", "--no-signup-requires-owner",
                "--signup-max-per-client=100000", "--public-base-url", self.url,
                *self.extra_args]
