"""hack/kind.sh, the laptop path for users with Docker. These machines have no container engine,
so the script runs against stand-in `docker`, `podman`, `kind`, `helm` and `kubectl` that record
their arguments: the test checks the commands a user's machine would run, in order."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "hack" / "kind.sh"

# Each stand-in logs "<tool> <args>" and emulates just enough state: kind knows the clusters it
# created, helm knows the releases it installed.
STUB = """#!/usr/bin/env bash
tool=$(basename "$0")
# The whole line in one write(2) to a file opened for append: stand-ins that run at once (the
# two ends of a pipe) then never interleave their lines.
printf -v line '%s' "$tool"; printf -v args ' %q' "$@"; [[ $# -gt 0 ]] || args=""
printf '%s\n' "$line$args" >> "$STUB_LOG"
state="$STUB_STATE"
case "$tool $1" in
  "kind get") cat "$state/clusters" 2>/dev/null ;;
  "kind create") echo "$4" >> "$state/clusters" ;;
  "helm --kube-context")
    if [[ "$3" == status ]]; then [[ -f "$state/release" ]] || exit 1
    elif [[ "$3" == upgrade ]]; then touch "$state/release"; fi ;;
  "kubectl --context")
    if [[ "$3" == create ]]; then echo "apiVersion: v1"
    elif [[ "$3" == apply ]]; then cat > /dev/null; fi ;;
esac
exit 0
"""


def install_stubs(tmp_path: Path) -> Path:
    stubs = tmp_path / "bin"
    stubs.mkdir(exist_ok=True)
    for tool in ("docker", "podman", "kind", "helm", "kubectl"):
        path = stubs / tool
        path.write_text(STUB)
        path.chmod(0o755)
    return stubs


def run_kind_sh(tmp_path: Path, **env: str) -> tuple[subprocess.CompletedProcess[str], list[
    list[str]
]]:
    stubs = install_stubs(tmp_path)
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    log = tmp_path / "calls.log"
    log.write_text("")
    full_env = {
        "PATH": f"{stubs}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "STUB_LOG": str(log),
        "STUB_STATE": str(state),
        **env,
    }
    result = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True,
                            env=full_env, check=False, cwd=tmp_path)
    calls = [shlex.split(line) for line in log.read_text().splitlines()]
    return result, calls


def index_of(calls: list[list[str]], *prefix: str) -> int:
    for i, call in enumerate(calls):
        if call[: len(prefix)] == list(prefix):
            return i
    raise AssertionError(f"no call starting with {prefix}; calls: {calls}")


def test_first_run_creates_the_cluster_builds_loads_and_installs(tmp_path: Path) -> None:
    result, calls = run_kind_sh(tmp_path)
    assert result.returncode == 0, result.stderr
    create = index_of(calls, "kind", "create", "cluster", "--name", "exocorp")
    build = index_of(calls, "docker", "build", "-t", "exocorp:dev")
    assert calls[build][-1] == "."
    load = index_of(calls, "kind", "load", "docker-image", "exocorp:dev", "--name", "exocorp")
    namespace = index_of(calls, "kubectl", "--context", "kind-exocorp", "create", "namespace",
                         "exocorp-system")
    label = index_of(calls, "kubectl", "--context", "kind-exocorp", "label", "namespace",
                     "exocorp-system")
    assert "pod-security.kubernetes.io/enforce=restricted" in calls[label]
    install = index_of(calls, "helm", "--kube-context", "kind-exocorp", "upgrade", "--install",
                       "exocorp", "charts/exocorp")
    assert create < build < load < namespace < install
    args = calls[install]
    assert {"image.repository=exocorp", "image.tag=dev", "image.pullPolicy=Never"} <= set(args)
    assert "--wait" in args
    assert args[args.index("--namespace") + 1] == "exocorp-system"
    assert not any(c[:2] == ["kubectl", "--context"] and "rollout" in c for c in calls)
    assert "port-forward svc/exocorp-gateway 8000:80" in result.stdout


def test_rerun_reuses_the_cluster_and_restarts_the_pods_on_the_new_image(tmp_path: Path) -> None:
    first, _ = run_kind_sh(tmp_path)
    assert first.returncode == 0, first.stderr
    result, calls = run_kind_sh(tmp_path)
    assert result.returncode == 0, result.stderr
    assert not any(c[:2] == ["kind", "create"] for c in calls)
    assert "reusing the existing cluster" in result.stdout
    index_of(calls, "docker", "build")
    install = index_of(calls, "helm", "--kube-context", "kind-exocorp", "upgrade")
    restart = index_of(calls, "kubectl", "--context", "kind-exocorp", "-n", "exocorp-system",
                       "rollout", "restart", "deploy")
    assert install < restart


def test_podman_loads_the_image_through_an_archive(tmp_path: Path) -> None:
    result, calls = run_kind_sh(tmp_path, CONTAINER_ENGINE="podman",
                                IMAGE="registry.local:5000/exocorp:v1",
                                KIND_CLUSTER="laptop", RELEASE="demo")
    assert result.returncode == 0, result.stderr
    index_of(calls, "podman", "build", "-t", "registry.local:5000/exocorp:v1")
    save = index_of(calls, "podman", "save", "-o")
    archive = calls[save][3]
    load = index_of(calls, "kind", "load", "image-archive", archive, "--name", "laptop")
    assert save < load
    install = calls[index_of(calls, "helm", "--kube-context", "kind-laptop", "upgrade",
                             "--install", "demo")]
    assert "image.repository=registry.local:5000/exocorp" in install
    assert "image.tag=v1" in install
    assert not Path(archive).exists(), "the image archive is left behind"
    assert "svc/demo-exocorp-gateway" in result.stdout


def test_extra_helm_arguments_are_passed_through(tmp_path: Path) -> None:
    result, calls = run_kind_sh(
        tmp_path, HELM_EXTRA_ARGS="-f charts/exocorp/ci/monitoring-values.yaml")
    assert result.returncode == 0, result.stderr
    install = calls[index_of(calls, "helm", "--kube-context", "kind-exocorp", "upgrade")]
    assert install[-2:] == ["-f", "charts/exocorp/ci/monitoring-values.yaml"]


def test_a_missing_tool_stops_before_anything_happens_and_says_how_to_get_it(
    tmp_path: Path,
) -> None:
    result, calls = run_kind_sh(tmp_path, KIND=str(tmp_path / "nowhere" / "kind"))
    assert result.returncode != 0
    assert "not found" in result.stderr
    assert "kind.sigs.k8s.io" in result.stderr
    assert calls == []


def test_script_is_valid_bash_and_executable() -> None:
    assert os.access(SCRIPT, os.X_OK)
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)
    makefile = (REPO / "Makefile").read_text()
    assert "\nkind:" in makefile
    assert "hack/kind.sh" in makefile


def test_stand_ins_in_one_pipeline_never_interleave_their_log_lines(tmp_path: Path) -> None:
    """kind.sh pipes `kubectl create ... -o yaml` into `kubectl apply -f -`: both stand-ins run at
    once and append to one log. Each line must arrive whole (issue 18: `kubectlkubectl ...`)."""
    stubs = install_stubs(tmp_path)
    log = tmp_path / "calls.log"
    log.write_text("")
    rounds = 300
    pipeline = (f"for i in $(seq {rounds}); do kubectl --context c create namespace ns "
                "--dry-run=client -o yaml | kubectl --context c apply -f -; done")
    subprocess.run(["bash", "-c", pipeline], check=True, cwd=tmp_path, env={
        "PATH": f"{stubs}:/usr/local/bin:/usr/bin:/bin", "STUB_LOG": str(log),
        "STUB_STATE": str(tmp_path)})
    lines = log.read_text().splitlines()
    create = ["kubectl", "--context", "c", "create", "namespace", "ns", "--dry-run=client", "-o",
              "yaml"]
    apply = ["kubectl", "--context", "c", "apply", "-f", "-"]
    broken = [line for line in lines if shlex.split(line) not in (create, apply)]
    assert broken == [], f"{len(broken)} of {len(lines)} lines torn, e.g. {broken[:3]}"
    assert len(lines) == 2 * rounds
