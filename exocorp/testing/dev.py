"""`exocorp dev`: the whole platform on this machine, in the foreground, until Ctrl-C.

Starts a local control plane, installs the CRDs, publishes a stable release, runs the operator
(and the gateway, with an embedded SQLite database and a platform owner), and stops exactly what
it started when interrupted."""

from __future__ import annotations

import asyncio
import secrets
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from exocorp.k8s import Kube
from exocorp.k8s import resources as r
from exocorp.testing import samples
from exocorp.testing.controlplane import ControlPlane
from exocorp.testing.platform import GatewayProcess, OperatorProcess, install_crds

SEEDED_RELEASE = "1.0.0"
OWNER_EMAIL = "admin@exocorp.localhost"


async def _seed(kubeconfig: Path) -> None:
    async with await Kube.connect(kubeconfig) as kube:
        await install_crds(kube)
        await kube.apply(r.RELEASES, samples.release(SEEDED_RELEASE))


class DevPlatform:
    def __init__(self, workdir: Path, *, nodes: int = 2, gateway_port: int = 0,
                 say: Callable[[str], None] | None = None) -> None:
        self.workdir = workdir
        self.say = say or (lambda line: print(line, file=sys.stderr, flush=True))
        self.plane = ControlPlane(workdir, nodes=nodes, progress=self.say)
        self.operator: OperatorProcess | None = None
        self.gateway: GatewayProcess | None = None
        self.gateway_port = gateway_port
        self.new_owner_password: str | None = None
        self.started_at = 0.0

    def start(self) -> None:
        self.started_at = time.monotonic()
        self.plane.start()
        self._step("installing CRDs and publishing release " + SEEDED_RELEASE)
        asyncio.run(_seed(self.plane.kubeconfig))
        self._step("starting the operator")
        self.operator = OperatorProcess(self.plane.kubeconfig, self.workdir)
        self.operator.start()
        self._step(f"operator healthy (metrics on :{self.operator.metrics_port}, log "
                   f"{self.operator.log})")
        self._step("starting the gateway (SQLite at " + str(self.workdir / "exocorp.db") + ")")
        password_file = self.workdir / "platform-owner.password"
        if not password_file.exists():
            password_file.write_text(secrets.token_urlsafe(18))
            password_file.chmod(0o600)
            self.new_owner_password = password_file.read_text()
        self.gateway = GatewayProcess(
            self.plane.kubeconfig, self.workdir,
            f"sqlite+aiosqlite:///{self.workdir / 'exocorp.db'}",
            env={"EXOCORP_PLATFORM_OWNER_EMAIL": OWNER_EMAIL,
                 "EXOCORP_PLATFORM_OWNER_PASSWORD_FILE": str(password_file)},
            port=self.gateway_port or None)
        self.gateway.start()
        self._step(f"gateway ready at {self.gateway.url} (log {self.gateway.log})")

    def _step(self, message: str) -> None:
        self.say(f"[dev {time.monotonic() - self.started_at:5.1f}s] {message}")

    def stop(self) -> None:
        if self.gateway is not None:
            self.gateway.stop()
            self.gateway = None
        if self.operator is not None:
            self.operator.stop()
            self.operator = None
        self.plane.stop()


def run(workdir: Path, *, nodes: int, port: int,
        kubectl_hint: Callable[[Path], str]) -> int:
    platform = DevPlatform(workdir, nodes=nodes, gateway_port=port)
    stopping = False

    def _terminate(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _terminate)
    # A shell starts background jobs with SIGINT ignored, and Python then leaves it ignored:
    # restore it, so Ctrl-C (or a SIGINT from a supervisor) always stops the platform.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        platform.start()
        assert platform.gateway is not None
        if platform.new_owner_password:
            owner = (f"  platform owner: {OWNER_EMAIL} / {platform.new_owner_password}\n"
                     "  (shown this once; it is also in "
                     f"{workdir / 'platform-owner.password'}, readable by you only)")
        else:
            owner = (f"  platform owner: {OWNER_EMAIL} (password in "
                     f"{workdir / 'platform-owner.password'})")
        print("\nExocorp dev platform is up.\n\n"
              f"API gateway: {platform.gateway.url}  (docs: {platform.gateway.url}/api/docs)\n"
              f"{owner}\n\nkubectl:\n"
              f"{kubectl_hint(platform.plane.kubeconfig)}\n  kubectl get exocorps,exocorpreleases\n"
              "\nPress Ctrl-C to stop everything.", flush=True)
        while not stopping:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        print("\nstopping everything this command started...", file=sys.stderr, flush=True)
        platform.stop()
    return 0
