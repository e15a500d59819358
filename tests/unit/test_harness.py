"""The harness starts and stops exactly its own processes and explains start-up failures."""

from __future__ import annotations

import ipaddress
import os
import signal
import ssl
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from exocorp import names
from exocorp.testing import controlplane, kwok_stages, pki
from exocorp.testing.binaries import Binaries
from exocorp.testing.controlplane import ControlPlane, ControlPlaneError, ControlPlaneState
from exocorp.testing.processes import spawn

pytestmark = pytest.mark.unit


def test_stop_kills_only_the_process_it_started(tmp_path: Path) -> None:
    bystander = subprocess.Popen(["sleep", "300"])
    try:
        ours = spawn("sleeper", ["/bin/sleep", "300"], tmp_path / "sleeper.log")
        assert ours.alive()
        ours.stop()
        assert not ours.alive()
        assert bystander.poll() is None, "an unrelated sleep process was killed"
    finally:
        bystander.kill()
        bystander.wait()


def test_stop_escalates_to_sigkill_when_sigterm_is_ignored(tmp_path: Path) -> None:
    script = tmp_path / "stubborn.sh"
    script.write_text("#!/bin/sh\ntrap '' TERM\necho started\nwhile :; do sleep 0.1; done\n")
    script.chmod(0o755)
    proc = spawn("stubborn", [str(script)], tmp_path / "stubborn.log")
    for _ in range(50):
        if "started" in proc.log_tail():
            break
        os.sched_yield()
        subprocess.run(["sleep", "0.1"], check=True)
    proc.stop(timeout=1.0)
    assert not proc.alive()


def test_a_recorded_pid_reused_by_another_program_is_left_alone(tmp_path: Path) -> None:
    other = subprocess.Popen(["sleep", "300"])
    try:
        state = ControlPlaneState(workdir=str(tmp_path), server="", kubeconfig="", processes=[
            {"name": "etcd", "pid": other.pid, "executable": "/nonexistent/etcd",
             "log": str(tmp_path / "etcd.log")}])
        (proc,) = state.managed()
        assert not proc.alive()
        proc.stop()
        assert other.poll() is None
    finally:
        other.send_signal(signal.SIGKILL)
        other.wait()


def _fake_binaries(tmp_path: Path, etcd_script: str) -> Binaries:
    etcd = tmp_path / "etcd"
    etcd.write_text(etcd_script)
    etcd.chmod(0o755)
    missing = tmp_path / "absent"
    return Binaries(etcd=etcd, kube_apiserver=missing, kube_controller_manager=missing,
                    kube_scheduler=missing, kubectl=missing, kwok=missing, helm=missing)


def test_failed_component_start_shows_its_log_tail_and_leaves_nothing(tmp_path: Path) -> None:
    bins = _fake_binaries(tmp_path, "#!/bin/sh\necho 'etcd: bad flag --frobnicate' >&2\nexit 3\n")
    plane = ControlPlane(tmp_path / "work", bins=bins, progress=lambda line: None)
    with pytest.raises(ControlPlaneError) as err:
        plane.start()
    assert "etcd exited during start-up" in str(err.value)
    assert "bad flag --frobnicate" in str(err.value)
    assert plane.started == []
    state = ControlPlaneState.load(tmp_path / "work")
    assert state is not None
    assert state.processes == []


def test_a_component_restarts_with_its_first_arguments_and_faults_name_what_is_wrong(
    tmp_path: Path,
) -> None:
    plane = ControlPlane(tmp_path / "work", progress=lambda line: None)
    plane._t0 = time.monotonic()
    plane.state = ControlPlaneState(workdir=str(plane.workdir), server="", kubeconfig="")
    plane.workdir.mkdir(parents=True)
    with pytest.raises(ControlPlaneError, match="etcd is not running"):
        plane.stop_component("etcd")
    with pytest.raises(ControlPlaneError, match="never started"):
        plane.start_component("etcd")
    plane._launch("sleeper", ["/bin/sleep", "300"], tmp_path / "logs", None)
    first = plane.started[0]
    with pytest.raises(ControlPlaneError, match="already running"):
        plane.start_component("sleeper")
    plane.stop_component("sleeper")
    assert not first.alive()
    assert plane.started == []
    assert plane.state.processes == []
    plane.start_component("sleeper")
    try:
        (again,) = plane.started
        assert again.pid != first.pid
        assert again.alive()
        assert [p["pid"] for p in plane.state.processes] == [again.pid]
    finally:
        plane.stop()


def test_ctrl_c_during_start_stops_what_was_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # etcd never becomes healthy; Ctrl-C arrives while the harness waits for it. The
    # KeyboardInterrupt is raised where the terminal's SIGINT would surface: in the wait.
    bins = _fake_binaries(tmp_path, "#!/bin/sh\nwhile :; do sleep 1; done\n")
    plane = ControlPlane(tmp_path / "work", bins=bins, progress=lambda line: None)
    waits = 0
    real_sleep = time.sleep

    def interrupted_sleep(seconds: float) -> None:
        # One Ctrl-C, once etcd had a moment; the cleanup that follows sleeps normally.
        nonlocal waits
        waits += 1
        if waits == 6:
            raise KeyboardInterrupt
        real_sleep(seconds)

    monkeypatch.setattr(controlplane.time, "sleep", interrupted_sleep)
    with pytest.raises(KeyboardInterrupt):
        plane.start()
    monkeypatch.undo()
    state = ControlPlaneState.load(tmp_path / "work")
    assert state is not None
    assert state.processes == []
    sleepers = subprocess.run(["pgrep", "-f", f"{tmp_path}/etcd"], capture_output=True,
                              text=True, check=False).stdout.split()
    assert sleepers == []


def test_pki_chain_and_names(tmp_path: Path) -> None:
    paths = pki.generate(tmp_path)
    ctx = ssl.create_default_context(cafile=str(paths.ca_cert))
    ctx.load_cert_chain(str(paths.admin_cert), str(paths.admin_key))
    text = subprocess.run(["openssl", "x509", "-in", str(paths.serving_cert), "-noout", "-text"],
                          capture_output=True, text=True, check=True).stdout
    assert "DNS:localhost" in text
    assert "IP Address:127.0.0.1" in text
    verify = subprocess.run(["openssl", "verify", "-CAfile", str(paths.ca_cert),
                             str(paths.serving_cert), str(paths.admin_cert)],
                            capture_output=True, text=True, check=False)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    subject = subprocess.run(["openssl", "x509", "-in", str(paths.admin_cert), "-noout",
                              "-subject"], capture_output=True, text=True, check=True).stdout
    assert "O = system:masters" in subject
    assert oct(paths.admin_key.stat().st_mode & 0o777) == "0o600"


def test_kwok_config_selects_annotated_nodes_and_behaviour_labels(tmp_path: Path) -> None:
    stock = tmp_path / "stages"
    for rel in kwok_stages.STOCK_STAGES:
        (stock / rel).parent.mkdir(parents=True, exist_ok=True)
        (stock / rel).write_text(yaml.safe_dump({"kind": "Stage", "metadata": {"name": rel}}))
    out = tmp_path / "kwok.yaml"
    kwok_stages.write_config(out, stock, "10.244.0.0/16")
    docs = list(yaml.safe_load_all(out.read_text()))
    options = docs[0]["options"]
    assert options["manageNodesWithAnnotationSelector"] == "kwok.x-k8s.io/node=fake"
    assert options["manageAllNodes"] is False
    custom = {d["metadata"]["name"]: d for d in docs[1:] if d["metadata"]["name"].startswith("exo")}
    crash = custom["exocorp-pod-crashloop"]["spec"]
    assert crash["selector"]["matchLabels"] == {names.SIM_BEHAVIOR_LABEL: names.SIM_CRASHLOOP}
    assert crash["weight"] == 1
    assert "CrashLoopBackOff" in crash["next"]["statusTemplate"]
    assert len(docs) == 1 + len(kwok_stages.STOCK_STAGES) + 2


def test_missing_stock_stage_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="exocorp cluster build"):
        kwok_stages.write_config(tmp_path / "kwok.yaml", tmp_path / "none", "10.0.0.0/16")


def test_binaries_dataclass_paths() -> None:
    bins = Binaries(*(Path(f"/x/{i}") for i in range(7)))
    assert bins.path("kube-apiserver") == Path("/x/1")
    assert replace(bins, helm=Path("/y")).helm == Path("/y")


def test_the_service_range_holds_the_services_of_a_large_fleet() -> None:
    # Regression: a /24 was full at ~126 exocorps (two Services each), so a 200-exocorp load run
    # left the rest Provisioning with "failed to allocate a serviceIP: range is full".
    network = ipaddress.ip_network(controlplane.SERVICE_CIDR)
    assert network.num_addresses - 2 >= 2 * 5_000 + 1  # kubernetes.default + 5,000 exocorps
    assert ipaddress.ip_address("10.0.0.1") in network  # the API server's certificate names it
