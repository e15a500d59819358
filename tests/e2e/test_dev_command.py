"""`exocorp dev` as a new user runs it: the platform comes up, kubectl works, Ctrl-C stops
exactly what it started."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_dev_runs_the_platform_and_ctrl_c_stops_everything(tmp_path: Path) -> None:
    env = dict(os.environ, EXOCORP_STATE=str(tmp_path / "state"))
    proc = subprocess.Popen([sys.executable, "-m", "exocorp.cli", "dev", "--port", "0"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            output.append(line)
            if "Press Ctrl-C" in line:
                break
        else:
            pytest.fail("exocorp dev exited before it was up:\n" + "".join(output))
        text = "".join(output)
        kubeconfig = next(line.split("=", 1)[1].strip() for line in output
                          if "export KUBECONFIG=" in line)
        kubectl_dir = next(line.split("=", 1)[1].split(":", 1)[0].strip() for line in output
                           if "export PATH=" in line)
        assert "operator healthy" in text
        gateway = next(line.split()[2] for line in output if line.startswith("API gateway:"))
        email, password = next(line.split(":", 1)[1].strip().split(" / ")
                               for line in output if "platform owner:" in line)
        login = urllib.request.Request(
            gateway + "/api/auth/login", method="POST",
            data=json.dumps({"email": email, "password": password}).encode(),
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(login, timeout=30) as resp:
            cookie = resp.headers["Set-Cookie"].split(";", 1)[0]
        me_request = urllib.request.Request(gateway + "/api/auth/me", headers={"Cookie": cookie})
        with urllib.request.urlopen(me_request, timeout=30) as resp:
            me = json.loads(resp.read())
        assert me["user"]["email"] == email
        assert me["platformOwner"] is True
        current = urllib.request.Request(gateway + "/api/registry/company-releases/current",
                                         headers={"Cookie": cookie})
        with urllib.request.urlopen(current, timeout=30) as resp:
            assert json.loads(resp.read())["release"]["spec"]["version"] == "1.0.0"
        nodes = json.loads(subprocess.run(
            [f"{kubectl_dir}/kubectl", "--kubeconfig", kubeconfig, "get", "nodes", "-o", "json"],
            capture_output=True, text=True, check=True).stdout)["items"]
        assert nodes
        assert all(any(c["type"] == "Ready" and c["status"] == "True"
                       for c in n["status"]["conditions"]) for n in nodes)
        releases = subprocess.run(
            [f"{kubectl_dir}/kubectl", "--kubeconfig", kubeconfig, "get", "exocorpreleases"],
            capture_output=True, text=True, check=True).stdout
        assert "1.0.0" in releases

        state = json.loads((tmp_path / "state" / "clusters" / "dev" / "state.json").read_text())
        pids = [p["pid"] for p in state["processes"]]
        assert len(pids) == 5
        assert all(_alive(pid) for pid in pids)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=300) == 0
        deadline = time.monotonic() + 30
        while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert [pid for pid in pids if _alive(pid)] == []
        # The operator (and anything else started with this state directory) is gone too.
        leftovers = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True,
                                   text=True, check=False).stdout.split()
        assert leftovers == []
        rest = proc.stdout.read()
        assert "stopping everything" in rest
    finally:
        if proc.poll() is None:  # a failed assertion: still stop what it started (Ctrl-C)
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
