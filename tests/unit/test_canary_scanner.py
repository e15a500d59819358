"""The canary check of tests/plugins/canary.py finds a planted value wherever the session-end
scan looks (files, nested directories, Kubernetes objects, base64-encoded) and nowhere else: not
in a Secret object, not in etcd's data directory. (The planted value is not the session's
canary, so these plants do not fail the session.)"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.plugins.canary import SCANNER, CanaryScanner
from tests.plugins.platform import CANARY_SECRET

pytestmark = pytest.mark.unit

PLANTED = "sk-planted-5e1f0a9b8c7d"


def test_a_value_in_a_process_log_is_found_with_where_it_is(tmp_path: Path) -> None:
    logs = tmp_path / "operator-3" / "logs"
    logs.mkdir(parents=True)
    (logs / "operator.log").write_text(f"INFO reconciled\nERROR bad key {PLANTED!r}\n")
    (logs / "gateway.log").write_text("INFO nothing to see\n")
    scanner = CanaryScanner(PLANTED)
    assert scanner.scan_tree(tmp_path) == 2
    [finding] = scanner.findings
    assert finding.where == str(logs / "operator.log")
    assert PLANTED in finding.excerpt


def test_a_base64_encoded_value_is_found_but_etcd_storage_is_not_read(tmp_path: Path) -> None:
    (tmp_path / "etcd" / "member").mkdir(parents=True)
    (tmp_path / "etcd" / "member" / "db").write_bytes(PLANTED.encode())
    (tmp_path / "dump.json").write_text(
        json.dumps({"data": {"value": base64.b64encode(PLANTED.encode()).decode()}}))
    scanner = CanaryScanner(PLANTED)
    scanner.scan_tree(tmp_path)
    assert [f.where for f in scanner.findings] == [str(tmp_path / "dump.json")]


def test_objects_but_secrets_are_scanned() -> None:
    scanner = CanaryScanner(PLANTED)
    objects = [
        {"kind": "Secret", "metadata": {"name": "credentials", "namespace": "exo-a"},
         "stringData": {"value": PLANTED}},
        {"kind": "Event", "metadata": {"name": "e1", "namespace": "exo-a"},
         "message": f"failed to bind {PLANTED}"},
        {"kind": "Exocorp", "metadata": {"name": "acme"},
         "status": {"conditions": [{"message": f"key {PLANTED} rejected"}]}},
        {"kind": "ConfigMap", "metadata": {"name": "manifest", "namespace": "exo-a"},
         "data": {"manifest": "{}"}},
    ]
    assert scanner.scan_objects(objects, "cluster") == 3
    assert [f.where for f in scanner.findings] == ["cluster Event exo-a/e1",
                                                   "cluster Exocorp acme"]


def test_a_clean_text_has_no_finding() -> None:
    scanner = CanaryScanner(PLANTED)
    assert not scanner.scan_text("sk-planted-5e1f0a9b8c7 (one character short)", "log")
    assert scanner.findings == []


def test_the_session_scanner_looks_for_the_tests_canary() -> None:
    assert SCANNER.value == CANARY_SECRET


LEAKY_TEST = """
from tests.plugins.canary import CANARY_SECRET

def test_logs_the_credential(tmp_path):
    (tmp_path / "operator.log").write_text("bound key " + CANARY_SECRET + "\\n")

def test_clean():
    assert True
"""


def test_a_leak_fails_a_session_whose_tests_all_passed(tmp_path: Path) -> None:
    """A whole pytest session (a child process, so its findings stay its own) with the plugin:
    every test passes, one of them writes the canary to a log, and the session fails."""
    (tmp_path / "test_leaky.py").write_text(LEAKY_TEST)
    basetemp = tmp_path / "basetemp"
    repo = Path(__file__).resolve().parents[2]
    try:
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "tests.plugins.canary",
             "-p", "no:cacheprovider", f"--basetemp={basetemp}", "--rootdir", str(tmp_path),
             "-c", os.devnull, str(tmp_path / "test_leaky.py")],
            cwd=tmp_path, capture_output=True, text=True, check=False,
            env={**os.environ, "PYTHONPATH": str(repo)})
    finally:
        shutil.rmtree(basetemp, ignore_errors=True)  # the planted log: not this session's leak
    output = result.stdout.replace(CANARY_SECRET, "<canary>")
    assert "2 passed" in output, output
    assert result.returncode == 1, output
    assert "leaked" in output
    assert "operator.log" in output
