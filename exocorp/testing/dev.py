"""`exocorp dev`: the whole platform on this machine, in the foreground, until Ctrl-C.

Starts a local control plane, installs the CRDs, publishes releases on every channel, runs the
operator (and the gateway, with an embedded SQLite database, a platform owner and generous
signup credit), and stops exactly what it started when interrupted, whatever signals arrive."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TextIO

from exocorp import names
from exocorp.k8s import Kube
from exocorp.k8s import resources as r
from exocorp.testing import samples
from exocorp.testing.controlplane import ControlPlane
from exocorp.testing.platform import GatewayProcess, OperatorProcess, install_crds
from exocorp.testing.processes import tie_children_to_this_process

OWNER_EMAIL = "admin@exocorp.localhost"
# Enough to try every channel: update (1.0.0 -> 1.1.0), the channel selector (beta), and an
# automatic rollback (the canary's agents crash-loop, so its health gate fails).
SEEDED_RELEASES = (
    samples.release("1.0.0", ("stable",)),
    samples.release("1.1.0", ("stable",)),
    samples.release("1.2.0", ("beta",)),
    samples.release("1.3.0", ("canary",), behaviour=names.SIM_CRASHLOOP),
)
# Minor units: days of running time for a few exocorps on the default price book (one unit per
# replica-second), where production's signup credit lasts minutes. Only `exocorp dev` sets it.
DEV_SIGNUP_CREDIT = 10_000_000


def _seeded() -> str:
    return ", ".join(f"{rel['spec']['version']} ({'/'.join(rel['spec']['channels'])})"
                     for rel in SEEDED_RELEASES)


async def _seed(kubeconfig: Path) -> None:
    async with await Kube.connect(kubeconfig) as kube:
        await install_crds(kube)
        for release in SEEDED_RELEASES:
            await kube.apply(r.RELEASES, release)


class DevPlatform:
    def __init__(self, workdir: Path, *, nodes: int = 2, gateway_port: int = 0,
                 say: Callable[[str], None] | None = None) -> None:
        self.workdir = workdir
        self.say = say or _say
        self.plane = ControlPlane(workdir, nodes=nodes, progress=self.say)
        self.operator: OperatorProcess | None = None
        self.gateway: GatewayProcess | None = None
        self.gateway_port = gateway_port
        self.new_owner_password: str | None = None
        self.started_at = 0.0

    def start(self) -> None:
        self.started_at = time.monotonic()
        self.plane.start()
        self._step("installing CRDs and publishing releases " + _seeded())
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
                 "EXOCORP_PLATFORM_OWNER_PASSWORD_FILE": str(password_file),
                 "EXOCORP_SIGNUP_CREDIT": str(DEV_SIGNUP_CREDIT)},
            port=self.gateway_port or None)
        self.gateway.start()
        self._step(f"gateway ready at {self.gateway.url} (metrics on "
                   f":{self.gateway.metrics_port}, log {self.gateway.log})")

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


def _write(stream: TextIO, text: str) -> None:
    """Print without depending on the stream: a closed pipe (`| tee` stopped by the same
    Ctrl-C) or a vanished terminal must not interrupt the clean-up. Once writing fails the
    stream's descriptor points at /dev/null, so the interpreter's final flush is silent too."""
    try:
        stream.write(text)
        stream.flush()
    except (OSError, ValueError):
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, stream.fileno())
            os.close(devnull)


def _say(line: str) -> None:
    _write(sys.stderr, line + "\n")


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _stop_requested(signum: int, frame: FrameType | None) -> None:
    # The terminal sends Ctrl-C to the whole foreground group (make, uv, us) and uv forwards
    # it once more: from the first one on, further signals are ignored, so nothing interrupts
    # the clean-up. Each child still gets SIGKILL if it does not stop in time
    # (ManagedProcess.stop), and dies with us if we are killed (tie_children_to_this_process).
    for sig in _STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    raise KeyboardInterrupt


def run(workdir: Path, *, nodes: int, port: int,
        kubectl_hint: Callable[[Path], str]) -> int:
    # Installed before anything starts, so a signal during start-up also stops what started.
    # (A shell starts background jobs with SIGINT ignored; this restores it as well.)
    for sig in _STOP_SIGNALS:
        signal.signal(sig, _stop_requested)
    tie_children_to_this_process()
    platform = DevPlatform(workdir, nodes=nodes, gateway_port=port, say=_say)
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
        _write(sys.stdout, "\nExocorp dev platform is up.\n\n"
               f"API gateway: {platform.gateway.url}  (docs: {platform.gateway.url}/api/docs)\n"
               f"{owner}\n\nkubectl:\n"
               f"{kubectl_hint(platform.plane.kubeconfig)}\n"
               "  kubectl get exocorps,exocorpreleases\n"
               "\nPress Ctrl-C to stop everything.\n")
        while True:
            signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        for sig in _STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        _say("\nstopping everything this command started...")
        platform.stop()
        _say("stopped.")
    return 0
