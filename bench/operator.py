"""Operator throughput against the Kubernetes floor, on the local control plane.

For N exocorps: the time from provisioning all of them to all Running, against two floors taken
in the same run: the same workloads (3 Deployments, 4 pods per exocorp) created directly in N
namespaces, and every object of the same N runtimes (the operator's builders: quota, Services,
claim, policies, ...) applied directly, as fast as the operator could. Also the operator's peak
RSS and CPU seconds, and reconcile latency (provision patch to the operator observing that
generation) p50 / p99 during that burst. Then, once the fleet is
settled: the operator's CPU over a minute with nothing changing (the cost of resyncs), and the
steady-state latency of 100 spec changes (restart actions, one at a time) to
``status.observedGeneration``. With ``--shards K`` the exocorps carry a shard label (stable hash
of the name) and K operator processes run, one per shard.

Run: uv run python bench/operator.py --n 100 [--n 1000] [--shards 2] [--profile]
(writes bench/results/operator.json; ``--profile`` runs the operator under tracemalloc and
writes where its memory is to bench/results/operator-memory-N.txt)
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from exocorp import names, shards
from exocorp.k8s import ApiError, Kube, Obj
from exocorp.k8s import resources as r
from exocorp.lifecycle import perform
from exocorp.model import ActionRequest, Exocorp, ExocorpReleaseSpec
from exocorp.names import LABEL_SHARD
from exocorp.operator.runtime_objects import RESOURCES
from exocorp.operator.settings import OperatorSettings
from exocorp.runtime import builders
from exocorp.stats import percentile
from exocorp.testing import samples
from exocorp.testing.controlplane import ControlPlane
from exocorp.testing.platform import PLATFORM_NAMESPACE, OperatorProcess, install_crds
from exocorp.testing.processes import cpu_seconds, peak_rss_mib

RESULTS = Path(__file__).parent / "results"
# The shipped resync period: the test harness's 2 s would make an idle fleet of N cost N / 2
# passes a second and queue every measured change behind them.
RESYNC_SECONDS = OperatorSettings().resync_seconds
IDLE_SECONDS = 60
STEADY_CHANGES = 100


class TracedOperator(OperatorProcess):
    """The operator under tracemalloc (bench/traced.py): SIGUSR1 writes its memory profile."""

    def __init__(self, *args: Any, profile: Path, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.profile = profile

    def argv(self) -> list[str]:
        argv = super().argv()
        return [argv[0], str(Path(__file__).parent / "traced.py"), str(self.profile), *argv[3:]]


def shard_of(name: str, count: int) -> str | None:
    """As the gateway assigns them (exocorp.shards), among shard-0 .. shard-<count - 1>."""
    return None if count <= 1 else shards.assign(name, [f"shard-{i}" for i in range(count)])


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


def provisioned(name: str) -> Obj:
    """An Exocorp as a provision leaves it (the sample draft on release 1.0.0)."""
    body = samples.exocorp(name, "bench")
    body["spec"].update({"provisioned": True,
                         "release": {"channel": "stable", "version": "1.0.0"},
                         "config": samples.draft("1.0.0")["config"],
                         "providerBindings": [{"provider": "anthropic",
                                               "secretName": "bench-anthropic"}]})
    return body


def _unowned(body: Obj) -> Obj:
    """``body`` as no operator would see it: its labels renamed (in templates and selectors
    alike), else the operator's informers would cache the floor's objects too, and no owner
    reference (there is no Exocorp: the garbage collector would delete them)."""
    text = json.dumps(body).replace(f'"{names.LABEL_EXOCORP}"', '"bench.exocorp.io/floor"')
    text = text.replace(f'"{names.LABEL_MANAGED_BY}"', '"bench.exocorp.io/managed-by"')
    floor: Obj = json.loads(text)
    floor["metadata"].pop("ownerReferences", None)
    return floor


async def runtime_floor(kube: Kube, n: int) -> float:
    """Every object of N exocorps' runtimes, built by the operator's own builders and applied
    directly as the operator applies them (the namespace, then the rest at once; as many
    exocorps at a time as it has workers): what Kubernetes alone takes for the whole runtime.
    Besides the Deployments it has a resource quota (admission checks every pod against it and
    the quota controller recounts it), Services (endpoint slices), a claim to bind, network
    policies, a limit range."""
    settings = OperatorSettings()
    release = ExocorpReleaseSpec.model_validate(samples.release("1.0.0")["spec"])
    credentials = {builders.credential_key("anthropic"):
                   base64.b64encode(b"sk-bench").decode()}
    namespaces = {names.runtime_namespace(f"floor-{i:04d}") for i in range(n)}
    workers = asyncio.Semaphore(settings.workers)

    async def one(i: int) -> None:
        name = f"floor-{i:04d}"
        exo = Exocorp.model_validate(provisioned(name))
        inputs = builders.RuntimeInputs(release=release, revision=f"{name}-1",
                                        credentials=credentials, settings=settings)
        first, *rest = [_unowned(body) for body in builders.runtime_objects(exo, inputs)]
        async with workers:
            await kube.apply(RESOURCES[first["kind"]], first)
            await asyncio.gather(*(kube.apply(RESOURCES[b["kind"]], b) for b in rest))

    t0 = time.monotonic()
    await asyncio.gather(*(one(i) for i in range(n)))
    want = n * len(release.components)
    while True:
        deps = (await kube.list_all(r.DEPLOYMENTS))["items"]
        ready = sum(1 for d in deps if d["metadata"]["namespace"] in namespaces
                    and d.get("status", {}).get("readyReplicas", 0) == d["spec"]["replicas"])
        if ready >= want:
            return time.monotonic() - t0
        await asyncio.sleep(0.2)


async def exocorps(kube: Kube, n: int, shards: int) -> tuple[float, list[float]]:
    await kube.apply(r.SECRETS, samples.provider_secret(
        "bench-anthropic", PLATFORM_NAMESPACE, "bench", "anthropic", "sk-bench"))
    names = [f"bench-{i:04d}" for i in range(n)]
    for name in names:
        body = samples.exocorp(name, "bench")
        shard = shard_of(name, shards)
        if shard:
            body["metadata"]["labels"] = {LABEL_SHARD: shard}
        await kube.create(r.EXOCORPS, body)
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


async def settled(kube: Kube, n: int) -> None:
    """Every exocorp Running with its rollout finished."""
    while True:
        items = (await kube.list_all(r.EXOCORPS))["items"]
        done = sum(1 for i in items if (i.get("status") or {}).get("phase") == "Running"
                   and ((i["status"].get("rollout") or {}).get("outcome") != "Progressing"))
        if done >= n:
            return
        await asyncio.sleep(2)


async def steady_latencies(kube: Kube, n: int, count: int) -> list[float]:
    """``count`` restarts of distinct exocorps, one at a time, each timed from its write's
    answer to the operator's status showing that generation (seen through a watch)."""
    seen: dict[str, tuple[int, float]] = {}  # name -> (observedGeneration, when seen)
    changed = asyncio.Event()
    listing = await kube.list(r.EXOCORPS)
    rv = listing["metadata"]["resourceVersion"]
    for item in listing["items"]:
        seen[item["metadata"]["name"]] = ((item.get("status") or {}).get("observedGeneration", 0),
                                          time.monotonic())

    async def watch() -> None:
        nonlocal rv
        while True:
            try:
                async for event in kube.watch(r.EXOCORPS, resource_version=rv):
                    obj = event["object"]
                    rv = obj["metadata"]["resourceVersion"]
                    if event["type"] in ("ADDED", "MODIFIED"):
                        og = (obj.get("status") or {}).get("observedGeneration", 0)
                        name = obj["metadata"]["name"]
                        if og > seen.get(name, (0, 0.0))[0]:
                            seen[name] = (og, time.monotonic())
                            changed.set()
            except ApiError as err:
                if not err.gone:
                    raise
                rv = (await kube.list(r.EXOCORPS, limit=1))["metadata"]["resourceVersion"]

    watcher = asyncio.create_task(watch())
    catalog = await perform.releases(kube)
    caller = perform.Caller(actor="user:bench", draft=samples.draft("1.0.0"))
    latencies = []
    try:
        await asyncio.sleep(1)
        step = max(1, n // count)
        for i in range(count):
            name = f"bench-{(i * step) % n:04d}"
            await perform.perform(kube, PLATFORM_NAMESPACE, name,
                                  ActionRequest.model_validate({"action": "restart"}), caller,
                                  catalog=catalog)
            written = time.monotonic()
            generation = (await kube.get(r.EXOCORPS, name))["metadata"]["generation"]
            while seen.get(name, (0, 0.0))[0] < generation:
                changed.clear()  # no await between the check and the wait: no lost wake-up
                await changed.wait()
            latencies.append(max(seen[name][1] - written, 0.0))
            await asyncio.sleep(0.5)  # one change at a time, as people make them
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
    return latencies


def load_average() -> float:
    return round(os.getloadavg()[0], 1)


async def run(n: int, workdir: Path, shards: int = 1, profile: bool = False) -> dict[str, Any]:
    # Room for the phases' pods (110 per node; a floor's namespaces are still being deleted
    # while the next phase runs) and for the CPU the runtime floor's pods and the exocorps'
    # request (1200m each), with surge.
    nodes = max(-(-n * 4 * 2 // 100), -(-n * 12 * 3 // 320)) + 2
    plane = ControlPlane(workdir, nodes=nodes, volumes=2 * n + 8, progress=lambda line: None)
    plane.start()
    try:
        async with await Kube.connect(plane.kubeconfig) as kube:
            floor_s = await floor(kube, n)
            for i in range(n):  # free the nodes before the next phase
                await kube.delete(r.NAMESPACES, f"floor-{i}")
            runtime_floor_s = await runtime_floor(kube, n)
            for i in range(n):
                await kube.delete(r.NAMESPACES, names.runtime_namespace(f"floor-{i:04d}"))
            await install_crds(kube)
            await kube.apply(r.RELEASES, samples.release("1.0.0"))
            ops = []
            for shard in [None] if shards <= 1 else [f"shard-{i}" for i in range(shards)]:
                extra = ("--shard", shard) if shard else ()
                profile_to = RESULTS / f"operator-memory-{n}.txt"
                ops.append(TracedOperator(plane.kubeconfig, workdir / f"operator-{shard}",
                                          extra_args=extra, profile=profile_to,
                                          resync_seconds=RESYNC_SECONDS) if profile
                           else OperatorProcess(plane.kubeconfig, workdir / f"operator-{shard}",
                                                extra_args=extra,
                                                resync_seconds=RESYNC_SECONDS))
            for op in ops:
                op.start()
            pids = [op.process.pid for op in ops if op.process is not None]
            cpu0 = [cpu_seconds(pid) for pid in pids]
            try:
                load_start = load_average()
                exo_s, latencies = await exocorps(kube, n, shards)
                cpu = [cpu_seconds(pid) - c for pid, c in zip(pids, cpu0, strict=True)]
                await settled(kube, n)
                await asyncio.sleep(10)  # the last status writes' echoes
                idle0 = [cpu_seconds(pid) for pid in pids]
                await asyncio.sleep(IDLE_SECONDS)
                idle = [(cpu_seconds(pid) - c) / IDLE_SECONDS
                        for pid, c in zip(pids, idle0, strict=True)]
                rss_settled = [_rss_mib(pid) for pid in pids]
                steady = await steady_latencies(kube, n, min(STEADY_CHANGES, n))
                if profile:
                    for pid in pids:
                        os.kill(pid, signal.SIGUSR1)
                    await asyncio.sleep(30)  # a snapshot of 25,000 objects takes a while
                rss = [peak_rss_mib(pid) for pid in pids]
                load_end = load_average()
            finally:
                for op in ops:
                    op.stop()
    finally:
        plane.stop()
    return {
        "n": n, "nodes": nodes, "shards": max(shards, 1), "profiled": profile,
        "resync_seconds": RESYNC_SECONDS,
        "floor_deployments_ready_seconds": round(floor_s, 2),
        "exocorps_running_seconds": round(exo_s, 2),
        "ratio": round(exo_s / floor_s, 2),
        "floor_runtime_ready_seconds": round(runtime_floor_s, 2),
        "ratio_to_runtime_floor": round(exo_s / runtime_floor_s, 2),
        "operator_peak_rss_mib": max(rss),
        "operator_peak_rss_mib_per_shard": rss,
        "operator_rss_settled_mib_per_shard": rss_settled,
        "operator_cpu_seconds": round(sum(cpu), 2),
        "operator_cpu_seconds_per_shard": [round(c, 2) for c in cpu],
        "burst_latency_p50_seconds": round(statistics.median(latencies), 3),
        "burst_latency_p99_seconds": round(percentile(latencies, 0.99), 3),
        "idle_cpu_percent_of_a_core": round(100 * sum(idle), 2),
        "idle_cpu_percent_per_shard": [round(100 * c, 2) for c in idle],
        "steady_changes": len(steady),
        "steady_latency_p50_seconds": round(statistics.median(steady), 3),
        "steady_latency_p99_seconds": round(percentile(steady, 0.99), 3),
        "load_average_start_end": [load_start, load_end],
    }


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def main() -> None:
    # A SIGTERM (a timeout, say) must still run the finally blocks that stop the control plane.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, action="append", default=None)
    parser.add_argument("--shards", type=int, default=1)
    parser.add_argument("--profile", action="store_true",
                        help="the operator under tracemalloc (slower; its RSS is not comparable)")
    parser.add_argument("--out", type=Path, default=RESULTS / "operator.json",
                        help="results file: runs are appended to its list")
    args = parser.parse_args()
    out: Path = args.out
    previous = json.loads(out.read_text()) if out.exists() else {}
    results = list(previous.get("runs", []))
    for n in args.n or [100]:
        with tempfile.TemporaryDirectory() as tmp:
            result = asyncio.run(run(n, Path(tmp), args.shards, args.profile))
        result["command"] = " ".join(["uv run python bench/operator.py", *sys.argv[1:]])
        print(json.dumps(result), flush=True)
        results.append(result)
        out.write_text(json.dumps({"machine": f"{os.cpu_count()} cores", "runs": results},
                                  indent=2) + "\n")


if __name__ == "__main__":
    main()
