"""Measure the local control plane: warm start time (median of N starts) and the peak resident
memory of its processes under a small workload (100 pods on kwok nodes).

Run: uv run python bench/control_plane.py [--runs 5]   (writes bench/results/control_plane.json)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

from exocorp.k8s import Kube
from exocorp.k8s import resources as r
from exocorp.testing import binaries
from exocorp.testing.controlplane import ControlPlane
from exocorp.testing.waiting import eventually


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


async def workload(kubeconfig: Path, pods: int) -> float:
    async with await Kube.connect(kubeconfig) as kube:
        await kube.create(r.NAMESPACES, {"metadata": {"name": "bench"}})
        t0 = time.monotonic()
        await kube.create(r.DEPLOYMENTS, {
            "metadata": {"name": "load"},
            "spec": {"replicas": pods, "selector": {"matchLabels": {"app": "load"}},
                     "template": {"metadata": {"labels": {"app": "load"}},
                                  "spec": {"containers": [{"name": "c", "image": "x/y:1"}]}}},
        }, "bench")

        async def ready() -> int:
            dep = await kube.get(r.DEPLOYMENTS, "load", "bench")
            return int(dep.get("status", {}).get("readyReplicas", 0))

        await eventually(ready, lambda n: n == pods, within=600, what="pods ready")
        return time.monotonic() - t0


def main() -> None:
    # A SIGTERM (a timeout, say) must still run the finally blocks that stop the control plane.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--pods", type=int, default=100)
    args = parser.parse_args()
    bins = binaries.ensure(build_missing=False)
    starts: list[float] = []
    peaks: dict[str, int] = {}
    pods_ready_s = 0.0
    for run in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            plane = ControlPlane(Path(tmp), bins=bins, progress=lambda line: None)
            t0 = time.monotonic()
            plane.start()
            starts.append(time.monotonic() - t0)
            try:
                if run == args.runs - 1:
                    pods_ready_s = asyncio.run(workload(plane.kubeconfig, args.pods))
                    peaks = {p.name: peak_rss_kib(p.pid) for p in plane.started}
            finally:
                plane.stop()
    result = {
        "kubernetes": binaries.K8S_VERSION, "etcd": binaries.ETCD_VERSION,
        "kwok": binaries.KWOK_VERSION,
        "warm_start_seconds": [round(s, 2) for s in starts],
        "warm_start_median_seconds": round(statistics.median(starts), 2),
        "workload_pods": args.pods,
        "workload_pods_ready_seconds": round(pods_ready_s, 2),
        "peak_rss_mib": {k: round(v / 1024, 1) for k, v in peaks.items()},
        "peak_rss_total_mib": round(sum(peaks.values()) / 1024, 1),
    }
    out = Path(__file__).parent / "results" / "control_plane.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
