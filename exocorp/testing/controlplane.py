"""A real local Kubernetes control plane: etcd, kube-apiserver (TLS, RBAC, service-account
keys), kube-controller-manager, kube-scheduler and kwok with fake nodes, as plain processes."""

from __future__ import annotations

import json
import socket
import ssl
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from exocorp.testing import binaries, kwok_stages, pki
from exocorp.testing.processes import ManagedProcess, spawn

STATE_FILE = "state.json"
KUBECONFIG_FILE = "admin.kubeconfig"
SERVICE_CIDR = "10.0.0.0/16"
"""Each exocorp's runtime has two Services (portal, app): a /24 (254 addresses) ran out at ~126
exocorps (``failed to allocate a serviceIP ... range is full``, bench/load.py at 200)."""
POD_CIDR = "10.244.0.0/16"


class ControlPlaneError(RuntimeError):
    """A component failed to start; the message carries the tail of its log."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ControlPlaneState:
    """What ``cluster status`` and ``cluster down`` need: written after every start step."""

    workdir: str
    server: str
    kubeconfig: str
    processes: list[dict[str, Any]] = field(default_factory=list)
    nodes: list[str] = field(default_factory=list)
    started_at: float = 0.0

    def managed(self) -> list[ManagedProcess]:
        return [
            ManagedProcess(name=p["name"], pid=p["pid"], executable=p["executable"],
                           log=Path(p["log"]))
            for p in self.processes
        ]

    def save(self) -> None:
        path = Path(self.workdir) / STATE_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2))
        tmp.replace(path)

    @classmethod
    def load(cls, workdir: Path) -> ControlPlaneState | None:
        try:
            return cls(**json.loads((workdir / STATE_FILE).read_text()))
        except (OSError, ValueError, TypeError):
            return None


class ControlPlane:
    """Start with :meth:`start`, stop with :meth:`stop` (also usable as a context manager).

    ``progress`` receives one line per step (component started, elapsed seconds)."""

    def __init__(
        self,
        workdir: Path,
        *,
        nodes: int = 2,
        volumes: int = 64,
        progress: Callable[[str], None] | None = None,
        bins: binaries.Binaries | None = None,
    ) -> None:
        self.workdir = workdir.resolve()
        self.node_count = nodes
        self.volume_count = volumes
        self.progress = progress or (lambda line: print(line, file=sys.stderr))
        self.bins = bins
        self.started: list[ManagedProcess] = []
        self.pki: pki.PKIPaths | None = None
        self.api_port = 0
        self._t0 = 0.0
        self.state: ControlPlaneState | None = None
        self._recipes: dict[str, _Recipe] = {}
        self.etcd_url = ""

    # -- public surface -------------------------------------------------------------------

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / KUBECONFIG_FILE

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.api_port}"

    def __enter__(self) -> ControlPlane:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start every component in order; on any failure stop what was started and raise."""
        self._t0 = time.monotonic()
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop exactly the processes we started, newest first."""
        for proc in reversed(self.started):
            proc.stop()
        self.started.clear()
        if self.state is not None:
            self.state.processes = []
            self.state.save()

    # -- faults (tests): stop and start one component on the same data and ports ------------

    def stop_component(self, name: str) -> None:
        """SIGTERM (then SIGKILL) one running component, e.g. ``"etcd"``; its data stays."""
        proc = next((p for p in self.started if p.name == name), None)
        if proc is None:
            raise ControlPlaneError(f"{name} is not running")
        proc.stop()
        self.started.remove(proc)
        if self.state is not None:
            self.state.processes = [p for p in self.state.processes if p["pid"] != proc.pid]
            self.state.save()
        self._say(f"{name} stopped (pid {proc.pid})")

    def start_component(self, name: str) -> None:
        """Start a stopped component again with the arguments it first ran with (same data
        directory and ports), and wait until it is ready."""
        if any(p.name == name and p.alive() for p in self.started):
            raise ControlPlaneError(f"{name} is already running")
        recipe = self._recipes.get(name)
        if recipe is None:
            raise ControlPlaneError(f"{name} was never started here")
        self._launch(name, recipe.argv, recipe.logs, recipe.ready)

    def restart_apiserver(self) -> None:
        """Stop the kube-apiserver and start it again: every watch breaks, and the new
        process starts with an empty watch cache."""
        self.stop_component("kube-apiserver")
        self.start_component("kube-apiserver")

    def stop_etcd(self) -> None:
        """Take etcd down (the API server stays up and answers errors meanwhile)."""
        self.stop_component("etcd")

    def start_etcd(self) -> None:
        """Bring etcd back on the same data directory and ports; wait until the API server is
        ready again (it reconnects by itself)."""
        self.start_component("etcd")
        assert self.pki is not None
        certs = self.pki
        deadline = time.monotonic() + 120
        while not _https_ok(f"{self.server}/readyz", certs):
            self._check_alive()
            if time.monotonic() > deadline:
                raise ControlPlaneError("kube-apiserver not ready 120s after etcd came back")
            time.sleep(0.2)

    def compact_etcd(self) -> int:
        """Compact etcd's history up to its current revision, as the API server does every
        five minutes: a watch resuming from an older resourceVersion then gets 410 Gone and must
        list again. Returns the revision."""
        def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
            req = urllib.request.Request(  # noqa: S310 (our own loopback etcd)
                self.etcd_url + path, data=json.dumps(body).encode(), method="POST",
                headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
                payload: dict[str, Any] = json.loads(resp.read())
                return payload

        revision = int(post("/v3/kv/range", {"key": "AA=="})["header"]["revision"])
        post("/v3/kv/compaction", {"revision": revision, "physical": True})
        return revision

    # -- steps ----------------------------------------------------------------------------

    def _say(self, message: str) -> None:
        self.progress(f"[cluster {time.monotonic() - self._t0:5.1f}s] {message}")

    def _start(self) -> None:
        bins = self.bins or binaries.ensure()
        self.workdir.mkdir(parents=True, exist_ok=True)
        logs = self.workdir / "logs"
        self._say(f"work directory {self.workdir}")
        self.pki = certs = pki.generate(self.workdir / "pki")
        self.api_port = free_port()
        self._write_kubeconfig(certs)
        self.state = ControlPlaneState(
            workdir=str(self.workdir), server=self.server, kubeconfig=str(self.kubeconfig),
            started_at=time.time(),
        )

        etcd_port, peer_port = free_port(), free_port()
        etcd_url = self.etcd_url = f"http://127.0.0.1:{etcd_port}"
        self._launch("etcd", [
            str(bins.etcd), "--name=exocorp", f"--data-dir={self.workdir / 'etcd'}",
            f"--listen-client-urls={etcd_url}", f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
            f"--initial-cluster=exocorp=http://127.0.0.1:{peer_port}",
            "--unsafe-no-fsync=true", "--log-level=warn",
        ], logs, lambda: _http_ok(f"{etcd_url}/health"))

        self._launch("kube-apiserver", [
            str(bins.kube_apiserver), f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
            f"--secure-port={self.api_port}",
            f"--tls-cert-file={certs.serving_cert}", f"--tls-private-key-file={certs.serving_key}",
            f"--cert-dir={self.workdir / 'apiserver-certs'}",
            f"--client-ca-file={certs.ca_cert}", "--authorization-mode=Node,RBAC",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={certs.sa_pub}",
            f"--service-account-signing-key-file={certs.sa_key}",
            f"--service-cluster-ip-range={SERVICE_CIDR}", "--allow-privileged=true",
            "--endpoint-reconciler-type=none", "--profiling=false",
        ], logs, lambda: _https_ok(f"{self.server}/readyz", certs))

        common = [
            f"--kubeconfig={self.kubeconfig}",
            f"--authentication-kubeconfig={self.kubeconfig}",
            f"--authorization-kubeconfig={self.kubeconfig}",
            "--leader-elect=false", "--bind-address=127.0.0.1",
        ]
        kcm_port = free_port()
        self._launch("kube-controller-manager", [
            str(bins.kube_controller_manager), *common, f"--secure-port={kcm_port}",
            f"--cert-dir={self.workdir / 'kcm-certs'}",
            f"--service-account-private-key-file={certs.sa_key}",
            f"--root-ca-file={certs.ca_cert}", "--controllers=*",
            "--use-service-account-credentials=false",
        ], logs, lambda: _https_ok(f"https://127.0.0.1:{kcm_port}/healthz", None))

        sched_port = free_port()
        self._launch("kube-scheduler", [
            str(bins.kube_scheduler), *common, f"--secure-port={sched_port}",
            f"--cert-dir={self.workdir / 'scheduler-certs'}",
        ], logs, lambda: _https_ok(f"https://127.0.0.1:{sched_port}/healthz", None))

        kwok_config = self.workdir / "kwok.yaml"
        kwok_stages.write_config(kwok_config, bins.kwok_stages, POD_CIDR)
        self._launch("kwok", [
            str(bins.kwok), f"--kubeconfig={self.kubeconfig}", f"--config={kwok_config}",
        ], logs, None)

        self._create_nodes()
        self._create_volumes()
        self._say(f"ready: {self.node_count} node(s), {self.volume_count} volume(s); "
                  f"kubeconfig {self.kubeconfig}")

    def _launch(
        self, name: str, argv: list[str], logs: Path, ready: Callable[[], bool] | None,
        timeout: float = 120.0,
    ) -> None:
        self._recipes[name] = _Recipe(argv, logs, ready)
        proc = spawn(name, argv, logs / f"{name}.log")
        self.started.append(proc)
        assert self.state is not None
        self.state.processes.append(asdict(proc) | {"log": str(proc.log)})
        self.state.save()
        deadline = time.monotonic() + timeout
        while True:
            if not proc.alive():
                raise ControlPlaneError(
                    f"{name} exited during start-up; last lines of {proc.log}:\n{proc.log_tail()}"
                )
            if ready is None or ready():
                break
            if time.monotonic() > deadline:
                raise ControlPlaneError(
                    f"{name} not ready after {timeout:.0f}s; last lines of {proc.log}:\n"
                    f"{proc.log_tail()}"
                )
            time.sleep(0.2)
        self._say(f"{name} started (pid {proc.pid})")

    def _check_alive(self) -> None:
        for proc in self.started:
            if not proc.alive():
                raise ControlPlaneError(
                    f"{proc.name} exited; last lines of {proc.log}:\n{proc.log_tail()}")

    def _write_kubeconfig(self, certs: pki.PKIPaths) -> None:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "exocorp-local", "cluster": {
                "server": self.server, "certificate-authority": str(certs.ca_cert)}}],
            "users": [{"name": "exocorp-admin", "user": {
                "client-certificate": str(certs.admin_cert),
                "client-key": str(certs.admin_key)}}],
            "contexts": [{"name": "exocorp-local", "context": {
                "cluster": "exocorp-local", "user": "exocorp-admin"}}],
            "current-context": "exocorp-local",
        }
        self.kubeconfig.write_text(yaml.safe_dump(config, sort_keys=False))
        self.kubeconfig.chmod(0o600)

    def _create_nodes(self) -> None:
        assert self.pki is not None
        assert self.state is not None
        names = [f"kwok-node-{i}" for i in range(self.node_count)]
        for name in names:
            api_request(self.server, self.pki, "POST", "/api/v1/nodes",
                        kwok_stages.fake_node(name), ok_statuses=(201, 409))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            self._check_alive()
            ready = [n for n in names if _node_ready(self.server, self.pki, n)]
            if len(ready) == len(names):
                self.state.nodes = names
                self.state.save()
                return
            time.sleep(0.3)
        kwok = next(p for p in self.started if p.name == "kwok")
        raise ControlPlaneError(f"fake nodes not Ready after 60s; kwok log:\n{kwok.log_tail()}")


    def _create_volumes(self) -> None:
        """No storage provisioner runs here: a default StorageClass with a pool of static
        volumes lets claims bind (the persistent-volume controller does the binding)."""
        assert self.pki is not None
        api_request(self.server, self.pki, "POST", "/apis/storage.k8s.io/v1/storageclasses",
                    STORAGE_CLASS, ok_statuses=(201, 409))
        for i in range(self.volume_count):
            api_request(self.server, self.pki, "POST", "/api/v1/persistentvolumes",
                        _volume(f"local-pv-{i:04d}", self.workdir / "volumes" / str(i)),
                        ok_statuses=(201, 409))


@dataclass(frozen=True)
class _Recipe:
    """How a component was launched, to launch it again identically."""

    argv: list[str]
    logs: Path
    ready: Callable[[], bool] | None


STORAGE_CLASS: dict[str, Any] = {
    "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
    "metadata": {"name": "exocorp-local",
                 "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
    "provisioner": "kubernetes.io/no-provisioner",
    "reclaimPolicy": "Retain",
    "volumeBindingMode": "Immediate",
}


def _volume(name: str, path: Path) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name},
        "spec": {"capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteOnce"],
                 "persistentVolumeReclaimPolicy": "Retain",
                 "storageClassName": "exocorp-local", "hostPath": {"path": str(path)}},
    }


# -- small synchronous HTTP helpers (the harness runs before any event loop exists) ----------

def _ssl_context(certs: pki.PKIPaths | None) -> ssl.SSLContext:
    if certs is None:  # component health endpoints serve self-signed certificates
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    ctx = ssl.create_default_context(cafile=str(certs.ca_cert))
    ctx.load_cert_chain(str(certs.admin_cert), str(certs.admin_key))
    return ctx


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 (loopback only)
            return bool(resp.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def _https_ok(url: str, certs: pki.PKIPaths | None) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2, context=_ssl_context(certs)) as resp:  # noqa: S310
            return bool(resp.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def api_request(
    server: str, certs: pki.PKIPaths, method: str, path: str, body: object = None,
    ok_statuses: tuple[int, ...] = (200, 201), content_type: str = "application/json",
) -> dict[str, Any]:
    """One admin request to the API server; raises ControlPlaneError on other statuses."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(  # noqa: S310 (our own loopback API server)
        server + path, data=data, method=method, headers={"Content-Type": content_type}
    )
    try:
        with urllib.request.urlopen(req, timeout=10, context=_ssl_context(certs)) as resp:  # noqa: S310
            payload: dict[str, Any] = json.loads(resp.read() or b"{}")
            return payload
    except urllib.error.HTTPError as err:
        if err.code in ok_statuses:
            return {}
        raise ControlPlaneError(f"{method} {path}: HTTP {err.code}: {err.read()[:500]!r}") from err


def _node_ready(server: str, certs: pki.PKIPaths, name: str) -> bool:
    try:
        node = api_request(server, certs, "GET", f"/api/v1/nodes/{name}")
    except ControlPlaneError:
        return False
    conditions = node.get("status", {}).get("conditions", [])
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
