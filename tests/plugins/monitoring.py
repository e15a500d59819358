"""Fixtures and helpers for the deployment and monitoring tests: rendering the Helm chart,
promtool, a real Prometheus (Debian's package) and a loopback metrics endpoint to scrape."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, start_http_server

from exocorp.testing import binaries
from exocorp.testing.controlplane import free_port
from exocorp.testing.prometheus import (
    PrometheusServer,
    ScrapeTarget,
    find_binary,
    running_prometheus,
)

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "exocorp"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))

Obj = dict[str, Any]


class HelmError(AssertionError):
    """helm refused; the message carries its stderr."""


def helm_binary() -> Path:
    return binaries.ensure(build_missing=False).helm


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(helm_binary()), *args], capture_output=True, text=True,
                            check=False)
    if check and result.returncode != 0:
        raise HelmError(f"helm {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return result


def template_args(
    values_files: Sequence[Path] = (), sets: Sequence[str] = (),
) -> list[str]:
    argv: list[str] = []
    for path in values_files:
        argv += ["--values", str(path)]
    for value in sets:
        argv += ["--set", value]
    return argv


def helm_template(
    *,
    values_files: Sequence[Path] = (),
    sets: Sequence[str] = (),
    release: str = "exocorp",
    namespace: str = "exocorp-system",
    extra: Sequence[str] = (),
) -> list[Obj]:
    """The objects `helm template` renders (hooks included), parsed."""
    result = helm("template", release, str(CHART), "--namespace", namespace,
                  *template_args(values_files, sets), *extra)
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def find(objects: Sequence[Obj], kind: str, name: str | None = None) -> list[Obj]:
    return [o for o in objects
            if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]


def one(objects: Sequence[Obj], kind: str, name: str | None = None) -> Obj:
    found = find(objects, kind, name)
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


@pytest.fixture(scope="session")
def promtool() -> Path:
    return find_binary("promtool")


@dataclass
class MetricsEndpoint:
    """A prometheus_client registry served over HTTP on loopback."""

    registry: CollectorRegistry
    address: str


@pytest.fixture
def metrics_endpoint() -> Iterator[MetricsEndpoint]:
    """A fresh registry served on a free loopback port; shut down after the test."""
    registry = CollectorRegistry()
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        yield MetricsEndpoint(registry, f"127.0.0.1:{port}")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


PrometheusFactory = Callable[..., PrometheusServer]


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[PrometheusFactory]:
    """Start a real Prometheus: ``prometheus([ScrapeTarget(...)], rule_files=[...])``. Every
    server the test started is stopped (by PID) at teardown."""
    with ExitStack() as stack:
        count = 0

        def start(targets: Sequence[ScrapeTarget], **kwargs: Any) -> PrometheusServer:
            nonlocal count
            count += 1
            return stack.enter_context(running_prometheus(
                targets, workdir=tmp_path / f"prometheus-{count}", **kwargs))

        yield start


def service_account_kubeconfig(
    kubectl: Path, admin_kubeconfig: Path, namespace: str, service_account: str, path: Path,
) -> Path:
    """A kubeconfig that authenticates as ``namespace/service_account`` with a short-lived token
    (TokenRequest): how a process runs "with the chart's RBAC" outside the cluster, e.g. the real
    operator in an end-to-end test."""
    token = subprocess.run(
        [str(kubectl), f"--kubeconfig={admin_kubeconfig}", "create", "token", service_account,
         "-n", namespace, "--duration=1h"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    admin = yaml.safe_load(admin_kubeconfig.read_text())
    cluster = admin["clusters"][0]
    config = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": service_account, "user": {"token": token}}],
        "contexts": [{"name": service_account, "context": {
            "cluster": cluster["name"], "user": service_account, "namespace": namespace}}],
        "current-context": service_account,
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
    return path
