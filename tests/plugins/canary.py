"""The canary check: the tests bind ``CANARY_SECRET`` (defined here, re-exported by
tests/plugins/platform.py) as a provider
credential and drive exocorps to Running with it; at the end of the session this plugin looks
for the value everywhere the tests could see it and fails the session if it is anywhere but in
Secret objects:

- every file the session wrote under pytest's base temporary directory: the operator's and the
  gateway's process logs, the control plane's component logs, databases, rendered values
  (etcd's data directory is skipped: it stores the Secrets themselves);
- the cluster, scanned just before the session's control plane stops (``scan_cluster``, called
  by the ``cluster`` fixture): Kubernetes Events and every Exocorp (status included), releases,
  revisions, ConfigMaps, workloads, pods, services, ingresses, namespaces;
- every HTTP response body a test client (aiohttp) received, except the API server's answers
  about Secrets;
- every test report: failure messages, tracebacks, captured output and log records.

The value is looked for as is and base64-encoded (as a Secret's ``data`` carries it). The check
runs after the last test whatever ran and in whatever order: with no cluster and no canary bound
it simply finds nothing. A leak is reported with where it was found and fails the session.
"""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

CANARY_SECRET = "sk-canary-0f9d8c7b6a5e4d3c"  # a value the tests look for everywhere

# What the cluster scan lists: everything the platform writes, but Secrets.
CLUSTER_KINDS = ("events", "exocorps.exocorp.io", "exocorpreleases.exocorp.io",
                 "controllerrevisions", "configmaps", "deployments", "replicasets", "pods",
                 "services", "ingresses", "namespaces", "serviceaccounts", "resourcequotas",
                 "limitranges", "networkpolicies", "persistentvolumeclaims")
SKIPPED_DIRS = ("etcd",)  # the API server's storage: holds the Secret objects themselves
MAX_FILE_BYTES = 256 * 1024 * 1024


def needles(value: str) -> list[bytes]:
    raw = value.encode()
    return [raw, base64.b64encode(raw).rstrip(b"="), base64.urlsafe_b64encode(raw).rstrip(b"=")]


@dataclass
class Finding:
    where: str
    excerpt: str

    def __str__(self) -> str:
        return f"{self.where}: ...{self.excerpt}..."


@dataclass
class CanaryScanner:
    """Looks for one secret value in texts, files, trees and Kubernetes objects."""

    value: str
    findings: list[Finding] = field(default_factory=list)

    def scan_bytes(self, data: bytes, where: str) -> bool:
        for needle in needles(self.value):
            at = data.find(needle)
            if at >= 0:
                excerpt = data[max(0, at - 80):at + len(needle) + 40].decode("utf-8", "replace")
                self.findings.append(Finding(where, excerpt.replace("\n", " ")))
                return True
        return False

    def scan_text(self, text: str, where: str) -> bool:
        return self.scan_bytes(text.encode("utf-8", "replace"), where)

    def scan_file(self, path: Path) -> bool:
        try:
            with path.open("rb") as f:
                data = f.read(MAX_FILE_BYTES)
        except OSError:
            return False
        return self.scan_bytes(data, str(path))

    def scan_tree(self, root: Path, *, skip_dirs: Iterable[str] = SKIPPED_DIRS) -> int:
        """Every regular file under ``root`` but those in directories named in ``skip_dirs``.
        Returns how many files were read."""
        skipped = set(skip_dirs)
        count = 0
        for path in _walk(root, skipped):
            self.scan_file(path)
            count += 1
        return count

    def scan_objects(self, objects: Iterable[dict[str, Any]], where: str) -> int:
        """Kubernetes objects (any kind but Secret, which is where the value belongs)."""
        count = 0
        for obj in objects:
            if obj.get("kind") == "Secret":
                continue
            meta = obj.get("metadata", {})
            name = "/".join(p for p in (meta.get("namespace"), meta.get("name")) if p)
            self.scan_text(json.dumps(obj), f"{where} {obj.get('kind', '?')} {name}")
            count += 1
        return count


def _walk(root: Path, skipped: set[str]) -> Iterator[Path]:
    if not root.is_dir():
        return
    for child in sorted(root.iterdir()):
        if child.is_symlink():
            continue
        if child.is_dir():
            if child.name not in skipped:
                yield from _walk(child, skipped)
        elif child.is_file():
            yield child


SCANNER = CanaryScanner(CANARY_SECRET)
_CLUSTER_SCANS: list[str] = []


def scan_cluster(kubectl: Path, kubeconfig: Path) -> None:
    """List what the cluster holds (but Secrets) and look for the canary in it. Called by the
    ``cluster`` fixture before it stops the control plane."""
    result = subprocess.run(
        [str(kubectl), f"--kubeconfig={kubeconfig}", "get", ",".join(CLUSTER_KINDS),
         "--all-namespaces", "-o", "json", "--request-timeout=60s"],
        capture_output=True, text=True, check=False)
    if result.returncode != 0:
        SCANNER.findings.append(Finding("cluster scan", f"kubectl failed: {result.stderr}"))
        return
    items = json.loads(result.stdout).get("items", [])
    count = SCANNER.scan_objects(items, "cluster")
    _CLUSTER_SCANS.append(f"{count} objects of {kubeconfig}")


# -- HTTP responses the test clients received ----------------------------------------------------

_ORIGINAL_READ = aiohttp.ClientResponse.read


async def _read_and_scan(self: aiohttp.ClientResponse) -> bytes:
    body: bytes = await _ORIGINAL_READ(self)
    if "/secrets" not in self.url.path:  # the API server answering about Secrets
        SCANNER.scan_bytes(body, f"HTTP response of {self.method} {self.url}")
    return body


def pytest_configure(config: pytest.Config) -> None:
    aiohttp.ClientResponse.read = _read_and_scan  # type: ignore[method-assign]


def pytest_unconfigure(config: pytest.Config) -> None:
    aiohttp.ClientResponse.read = _ORIGINAL_READ  # type: ignore[method-assign]


# -- reports and files ---------------------------------------------------------------------------


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.longrepr is not None:
        SCANNER.scan_text(report.longreprtext, f"report of {report.nodeid} ({report.when})")
    for title, content in report.sections:
        SCANNER.scan_text(content, f"{title} of {report.nodeid}")


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    factory = getattr(session.config, "_tmp_path_factory", None)
    files = 0
    if factory is not None:
        files = SCANNER.scan_tree(factory.getbasetemp())
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    summary = (f"canary check: {files} files, {', '.join(_CLUSTER_SCANS) or 'no cluster'}, "
               f"{len(SCANNER.findings)} leak(s)")
    if reporter is not None:
        reporter.write("\n")
        reporter.write_sep("-", summary)
    if SCANNER.findings:
        if reporter is not None:
            reporter.write_line(f"the canary secret ({CANARY_SECRET[:6]}...) leaked:", red=True)
            for finding in SCANNER.findings[:50]:
                reporter.write_line(f"  {finding}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
