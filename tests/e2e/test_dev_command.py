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


REPO = Path(__file__).resolve().parents[2]


def _wait_until_up(proc: subprocess.Popen[str]) -> list[str]:
    output: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        output.append(line)
        if "Press Ctrl-C" in line:
            return output
    pytest.fail("exocorp dev exited before it was up:\n" + "".join(output))


def _left_running(pids: list[int], marker: Path, timeout: float = 120) -> list[str]:
    """What still runs of ``pids`` or with ``marker`` on its command line, once the clean-up
    had ``timeout`` seconds to finish."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = [str(pid) for pid in pids if _alive(pid)] + subprocess.run(
            ["pgrep", "-f", str(marker)], capture_output=True, text=True, check=False,
        ).stdout.split()
        if not left:
            return []
        time.sleep(0.5)
    return [Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
            for pid in left if _alive(int(pid))]


def _stop_group(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:  # a failed assertion: still stop what it started (Ctrl-C)
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_make_dev_runs_the_platform_and_ctrl_c_stops_everything(tmp_path: Path) -> None:
    """As the README says: `make dev`, try it, Ctrl-C. The terminal sends SIGINT to the whole
    foreground group (make, uv, the platform), twice here as an impatient user would, and the
    terminal (or `| tee`) is gone by then, so the platform's output pipe is broken."""
    # A person's shell: no virtual environment on PATH (make's `python3 -m uv` is the
    # system's). The dashboard build and the Debian packages are prerequisites other tests
    # cover: `-o` takes them as done.
    venv = Path(sys.prefix)
    path = [p for p in os.environ["PATH"].split(os.pathsep)
            if p and not Path(p).resolve().is_relative_to(venv.resolve())]
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env |= {"EXOCORP_STATE": str(tmp_path / "state"), "PATH": os.pathsep.join(path)}
    proc = subprocess.Popen(["make", "--no-print-directory", "-o", "ui", "-o", "system-deps",
                             "dev", "DEV_ARGS=--port 0"],
                            cwd=REPO, env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        output = _wait_until_up(proc)
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
            assert json.loads(resp.read())["release"]["spec"]["version"] == "1.1.0"
        catalog = urllib.request.Request(gateway + "/api/registry/company-releases/catalog",
                                         headers={"Cookie": cookie})
        with urllib.request.urlopen(catalog, timeout=30) as resp:
            assert json.loads(resp.read())["newest"] == {
                "stable": "1.1.0", "beta": "1.2.0", "canary": "1.3.0"}
        # A new account can run an exocorp for days, not minutes (1 unit per replica-second).
        signup = urllib.request.Request(
            gateway + "/api/auth/signup", method="POST",
            data=json.dumps({"email": "new@example.com", "password": "a long password"}).encode(),
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(signup, timeout=30) as resp:
            newcomer = resp.headers["Set-Cookie"].split(";", 1)[0]
        summary = urllib.request.Request(gateway + "/api/dashboard/summary",
                                         headers={"Cookie": newcomer})
        with urllib.request.urlopen(summary, timeout=30) as resp:
            assert json.loads(resp.read())["balance"]["balance"] > 4 * 86400 * 3
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
        assert proc.stdout is not None
        proc.stdout.close()  # every later write of the platform fails with EPIPE
        os.killpg(proc.pid, signal.SIGINT)
        time.sleep(0.5)  # the second Ctrl-C lands while the platform is stopping its children
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=300)
        # The control plane, the operator and the gateway are all gone.
        assert _left_running(pids, tmp_path) == []
    finally:
        _stop_group(proc)


def test_children_die_with_a_killed_dev_command(tmp_path: Path) -> None:
    """SIGKILL leaves the platform no chance to clean up: the kernel stops its children."""
    env = dict(os.environ, EXOCORP_STATE=str(tmp_path / "state"))
    proc = subprocess.Popen([sys.executable, "-m", "exocorp.cli", "dev", "--port", "0",
                             "--nodes", "1"], env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_until_up(proc)
        state = json.loads((tmp_path / "state" / "clusters" / "dev" / "state.json").read_text())
        pids = [p["pid"] for p in state["processes"]]
        assert all(_alive(pid) for pid in pids)
        assert subprocess.run(["pgrep", "-f", f"operator --kubeconfig {tmp_path}"],
                              capture_output=True,
                              check=False).returncode == 0
        proc.kill()
        proc.wait(timeout=30)
        assert _left_running(pids, tmp_path) == []
    finally:
        _stop_group(proc)
