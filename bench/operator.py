"""Operator throughput against the Kubernetes floor, on the local control plane.

For N exocorps: the time from provisioning all of them to all Running, against the time for the
same workloads (3 Deployments, 4 pods per exocorp) created directly in N namespaces in the same
run. Also the operator's peak RSS and CPU seconds, and reconcile latency (provision patch to the
operator observing that generation) p50 / p99.

Run: uv run python bench/operator.py --n 100 [--n 500]   (writes bench/results/operator.json)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from exocorp.k8s import Kube
from exocorp.k8s import resources as r
from exocorp.lifecycle import perform
from exocorp.model import ActionRequest
from exocorp.stats import percentile
from exocorp.testing import samples
from exocorp.testing.controlplane import ControlPlane
from exocorp.testing.platform import PLATFORM_NAMESPACE, OperatorProcess, install_crds
from exocorp.testing.processes import cpu_seconds, peak_rss_mib


async def floor(kube: Kube, n: int) -> float:
    """The same Deployments, created directly: what Kubernetes alone takes."""
    release = samples.release("1.0.0")["spec"]
    t0 = time.monotonic()
    for i in range(n):
        ns = f"floor-{i}"
        await kube.create(r.NAMESPACES, {"metadata": {"name": ns}})
        for comp in release["components"]:
            labels = {"app": comp["name"]}
            await kube.create(r.DEPLOYMENTS, {
                "metadata": {"name": comp["name"]},
                "spec": {"replicas": comp["replicas"], "selector": {"matchLabels": labels},
                         "template": {"metadata": {"labels": labels}, "spec": {"containers": [
                             {"name": comp["name"], "image": comp["image"]}]}}}}, ns)
    want = n * len(release["components"])
    while True:
        deps = (await kube.list_all(r.DEPLOYMENTS))["items"]
        ready = sum(1 for d in deps if d["metadata"]["namespace"].startswith("floor-")
                    and d.get("status", {}).get("readyReplicas", 0) == d["spec"]["replicas"])
        if ready >= want:
            return time.monotonic() - t0
        await asyncio.sleep(0.2)


async def exocorps(kube: Kube, n: int) -> tuple[float, list[float]]:
    await kube.apply(r.SECRETS, samples.provider_secret(
        "bench-anthropic", PLATFORM_NAMESPACE, "bench", "anthropic", "sk-bench"))
    names = [f"bench-{i:04d}" for i in range(n)]
    for name in names:
        await kube.create(r.EXOCORPS, samples.exocorp(name, "bench"))
    while True:  # every Draft observed before the clock starts
        items = (await kube.list_all(r.EXOCORPS))["items"]
        if sum(1 for i in items if (i.get("status") or {}).get("phase") == "Draft") >= n:
            break
        await asyncio.sleep(0.2)
    catalog = await perform.releases(kube)
    caller = perform.Caller(actor="user:bench", draft=samples.draft("1.0.0"))
    patched_at: dict[str, float] = {}
    latencies: dict[str, float] = {}
    running_at: float | None = None

    async def observe() -> None:
        """Poll concurrently with the patching, so each latency is measured from its patch."""
        nonlocal running_at
        while running_at is None:
            items = (await kube.list_all(r.EXOCORPS))["items"]
            now = time.monotonic()
            running = 0
            for item in items:
                name = item["metadata"]["name"]
                status = item.get("status") or {}
                if name in patched_at and name not in latencies and \
                        status.get("observedGeneration", 0) >= item["metadata"]["generation"] \
                        and item["metadata"]["generation"] >= 2:
                    latencies[name] = now - patched_at[name]
                running += status.get("phase") == "Running"
            if running >= n:
                running_at = now
            await asyncio.sleep(0.1)

    observer = asyncio.create_task(observe())
    t0 = time.monotonic()
    for name in names:
        await perform.perform(kube, PLATFORM_NAMESPACE, name,
                              ActionRequest.model_validate({"action": "provision"}),
                              caller, catalog=catalog)
        patched_at[name] = time.monotonic()
    await observer
    assert running_at is not None
    return running_at - t0, list(latencies.values())


async def run(n: int, workdir: Path) -> dict[str, Any]:
    # Room for both phases' pods (110 per node) and the exocorps' CPU requests with surge.
    nodes = max(-(-n * 4 // 100), -(-n * 12 * 2 // 320)) + 2
    plane = ControlPlane(workdir, nodes=nodes, volumes=n + 8, progress=lambda line: None)
    plane.start()
    try:
        async with await Kube.connect(plane.kubeconfig) as kube:
            floor_s = await floor(kube, n)
            for i in range(n):  # free the nodes before the operator's run
                await kube.delete(r.NAMESPACES, f"floor-{i}")
            await install_crds(kube)
            await kube.apply(r.RELEASES, samples.release("1.0.0"))
            op = OperatorProcess(plane.kubeconfig, workdir / "operator")
            op.start()
            assert op.process is not None
            cpu0 = cpu_seconds(op.process.pid)
            try:
                exo_s, latencies = await exocorps(kube, n)
                cpu = cpu_seconds(op.process.pid) - cpu0
                rss = peak_rss_mib(op.process.pid)
            finally:
                op.stop()
    finally:
        plane.stop()
    return {
        "n": n, "nodes": nodes,
        "floor_deployments_ready_seconds": round(floor_s, 2),
        "exocorps_running_seconds": round(exo_s, 2),
        "ratio": round(exo_s / floor_s, 2),
        "operator_peak_rss_mib": round(rss, 1),
        "operator_cpu_seconds": round(cpu, 2),
        "reconcile_latency_p50_seconds": round(statistics.median(latencies), 3),
        "reconcile_latency_p99_seconds": round(percentile(latencies, 0.99), 3),
    }


def main() -> None:
    # A SIGTERM (a timeout, say) must still run the finally blocks that stop the control plane.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, action="append", default=None)
    args = parser.parse_args()
    results = []
    for n in args.n or [100]:
        with tempfile.TemporaryDirectory() as tmp:
            result = asyncio.run(run(n, Path(tmp)))
        print(json.dumps(result), flush=True)
        results.append(result)
    out = Path(__file__).parent / "results" / "operator.json"
    out.write_text(json.dumps({"machine": f"{os.cpu_count()} cores", "runs": results},
                              indent=2) + "\n")


if __name__ == "__main__":
    main()
