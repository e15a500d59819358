"""A throwaway Prometheus server for tests and local runs, and the way to call ``promtool``.

``running_prometheus(targets, ...)`` writes a configuration that scrapes the given loopback
targets (one scrape job per :class:`ScrapeTarget`, named like the chart's jobs:
``exocorp-operator``, ``exocorp-gateway``), optionally with rule files, starts Debian's
``prometheus`` on a free loopback port with its data in a temporary directory, waits until it is
ready and yields a :class:`PrometheusServer` that queries it through the HTTP API. On exit,
success or failure, it stops exactly the process it started (by PID) and removes the directory.

It installs nothing: ``apt-get install -y prometheus`` provides ``/usr/bin/prometheus`` and
``/usr/bin/promtool`` (Debian's package also enables a system service where systemd runs; this
harness never touches it). ``$EXOCORP_PROMETHEUS`` and ``$EXOCORP_PROMTOOL`` name other
binaries.

Run ``python -m exocorp.testing.prometheus 127.0.0.1:8080`` to scrape a local process
(job ``exocorp-operator``) until Ctrl-C.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

from exocorp.testing.processes import ManagedProcess, spawn

__all__ = [
    "ENV_PROMETHEUS",
    "ENV_PROMTOOL",
    "PrometheusError",
    "PrometheusServer",
    "PrometheusUnavailableError",
    "ScrapeTarget",
    "find_binary",
    "running_prometheus",
    "write_config",
]

ENV_PROMETHEUS: Final = "EXOCORP_PROMETHEUS"
ENV_PROMTOOL: Final = "EXOCORP_PROMTOOL"
INSTALL_HINT: Final = "install it with `apt-get install -y prometheus`"
START_TIMEOUT: Final = 60.0


class PrometheusUnavailableError(RuntimeError):
    """The prometheus or promtool binary is not installed."""


class PrometheusError(RuntimeError):
    """Prometheus failed to start, or a query failed; the message says why."""


@dataclass(frozen=True)
class ScrapeTarget:
    """One target: ``job`` names its scrape job (the alerts select on it; replicas share a job),
    ``address`` is host:port."""

    job: str
    address: str
    metrics_path: str = "/metrics"
    labels: dict[str, str] = field(default_factory=dict)


def find_binary(name: str) -> Path:
    """``prometheus`` or ``promtool``: from its environment variable, else from $PATH."""
    env = ENV_PROMETHEUS if name == "prometheus" else ENV_PROMTOOL
    explicit = os.environ.get(env)
    if explicit:
        path = Path(explicit)
        if not os.access(path, os.X_OK):
            raise PrometheusUnavailableError(f"${env}={explicit} is not an executable file")
        return path
    found = shutil.which(name)
    if not found:
        raise PrometheusUnavailableError(f"{name} not found on PATH; {INSTALL_HINT}")
    return Path(found)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def write_config(
    path: Path,
    targets: Sequence[ScrapeTarget],
    *,
    scrape_interval: str = "1s",
    rule_files: Sequence[Path] = (),
) -> None:
    """A prometheus.yml scraping ``targets`` and evaluating ``rule_files`` every interval."""
    config: dict[str, Any] = {
        "global": {
            "scrape_interval": scrape_interval,
            "scrape_timeout": scrape_interval,
            "evaluation_interval": scrape_interval,
        },
        "rule_files": [str(p) for p in rule_files],
        "scrape_configs": _scrape_configs(targets),
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def _scrape_configs(targets: Sequence[ScrapeTarget]) -> list[dict[str, Any]]:
    """One scrape config per job; targets of the same job (replicas) share it."""
    jobs: dict[str, dict[str, Any]] = {}
    for t in targets:
        job = jobs.setdefault(t.job, {"job_name": t.job, "metrics_path": t.metrics_path,
                                      "static_configs": []})
        if job["metrics_path"] != t.metrics_path:
            raise ValueError(f"job {t.job!r}: targets with different metrics paths")
        job["static_configs"].append({"targets": [t.address], "labels": dict(t.labels)})
    return list(jobs.values())


class PrometheusServer:
    """A started Prometheus: its URL, its process and small HTTP API helpers."""

    def __init__(self, url: str, process: ManagedProcess, workdir: Path) -> None:
        self.url = url
        self.process = process
        self.workdir = workdir

    def api(self, path: str, **params: str) -> Any:
        """GET ``/api/v1/<path>``; return ``data`` or raise :class:`PrometheusError`."""
        query = urllib.parse.urlencode(params)
        url = f"{self.url}/api/v1/{path}" + (f"?{query}" if query else "")
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 (loopback)
                body = json.loads(resp.read())
        except urllib.error.HTTPError as err:
            detail = err.read().decode(errors="replace")[:500]
            raise PrometheusError(f"GET {url}: HTTP {err.code}: {detail}") from err
        except (OSError, ValueError) as err:
            raise PrometheusError(f"GET {url}: {err}") from err
        if body.get("status") != "success":
            raise PrometheusError(f"GET {url}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant PromQL query; the result vector (``metric`` labels and ``value``)."""
        data = self.api("query", query=expr)
        if data.get("resultType") != "vector":
            raise PrometheusError(f"{expr!r} returned a {data.get('resultType')}, not a vector")
        result: list[dict[str, Any]] = data["result"]
        return result

    def targets(self) -> list[dict[str, Any]]:
        """The active scrape targets with their health (``up``/``down``/``unknown``)."""
        active: list[dict[str, Any]] = self.api("targets", state="active")["activeTargets"]
        return active

    def rules(self) -> list[dict[str, Any]]:
        """The loaded rule groups."""
        groups: list[dict[str, Any]] = self.api("rules")["groups"]
        return groups

    def wait_until(
        self,
        expr: str,
        accept: Callable[[list[dict[str, Any]]], bool] = bool,
        *,
        within: float = 60.0,
    ) -> list[dict[str, Any]]:
        """Query ``expr`` until ``accept`` takes the result (default: any series); return it."""
        deadline = time.monotonic() + within
        last: list[dict[str, Any]] = []
        while True:
            last = self.query(expr)
            if accept(last):
                return last
            if not self.process.alive():
                raise PrometheusError(
                    f"prometheus exited; last lines of {self.process.log}:\n"
                    f"{self.process.log_tail()}"
                )
            if time.monotonic() > deadline:
                health = [(t["scrapeUrl"], t["health"], t["lastError"]) for t in self.targets()]
                raise PrometheusError(
                    f"{expr!r} gave no accepted result within {within:.0f}s; last: {last!r}; "
                    f"targets: {health}"
                )
            time.sleep(0.25)


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as resp:  # noqa: S310 (loopback)
            return bool(resp.status == 200)
    except (OSError, urllib.error.URLError):
        return False


@contextmanager
def running_prometheus(
    targets: Sequence[ScrapeTarget],
    *,
    rule_files: Sequence[Path] = (),
    scrape_interval: str = "1s",
    workdir: Path | None = None,
) -> Iterator[PrometheusServer]:
    """Start Prometheus scraping ``targets`` on a free loopback port; stop it on exit."""
    binary = find_binary("prometheus")
    owned = workdir is None
    base = Path(tempfile.mkdtemp(prefix="exocorp-prometheus-")) if workdir is None else workdir
    base.mkdir(parents=True, exist_ok=True)
    config = base / "prometheus.yml"
    write_config(config, targets, scrape_interval=scrape_interval, rule_files=rule_files)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    process = spawn("prometheus", [
        str(binary),
        f"--config.file={config}",
        f"--storage.tsdb.path={base / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--storage.tsdb.retention.time=1h",
        "--log.level=warn",
    ], base / "prometheus.log")
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not _ready(url):
            if not process.alive():
                raise PrometheusError(
                    f"prometheus exited during start-up; last lines of {process.log}:\n"
                    f"{process.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise PrometheusError(
                    f"prometheus not ready after {START_TIMEOUT:.0f}s; last lines of "
                    f"{process.log}:\n{process.log_tail()}"
                )
            time.sleep(0.1)
        yield PrometheusServer(url, process, base)
    finally:
        process.stop()
        if owned:
            shutil.rmtree(base, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: python -m exocorp.testing.prometheus HOST:PORT [JOB]", file=sys.stderr)
        return 2
    job = args[1] if len(args) > 1 else "exocorp-operator"
    with running_prometheus([ScrapeTarget(job, args[0])], scrape_interval="5s") as prom:
        print(f"Prometheus at {prom.url} scrapes {args[0]} as job {job!r}; Ctrl-C stops it",
              flush=True)
        try:
            while prom.process.alive():
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
