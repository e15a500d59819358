"""Mixed load on the whole platform: concurrent clients reading and driving a fleet of exocorps
over HTTP, then the proof that nothing was lost or applied twice.

Setup: a fresh local control plane (kwok nodes for every exocorp's pods with surge), the CRDs,
releases 1.0.0 and 1.1.0 on stable, `exocorp operator` and `exocorp gateway` as real processes,
the gateway on a throwaway PostgreSQL 15 (``--database sqlite`` for the embedded default).
``--accounts`` users sign up over HTTP, store a provider credential, create the exocorps (round
robin) with a draft and provision them; the run starts once all are Running.

Load: ``--clients`` clients for ``--seconds`` (closed loop, no think time); client i acts for
account i mod accounts on that account's exocorps: ~80 % reads (company detail, fleet,
dashboard, update handshake, current release, identity), ~20 % lifecycle actions chosen from the
phase the client last saw (15 % of them blindly, so many are refused with 409).

Checks (``exocorp.testing.load.verify``), after the operator settles: zero 5xx; one audit event
per action request with the answer's outcome (accepted ones matched by request id, action,
exocorp and reason); per exocorp, generation delta == accepted actions (+ automatic rollbacks
and billing pauses, from the audit trail); the final spec and settled phase are the last
accepted action's.

Run: uv run python bench/load.py [--clients 200 --seconds 60 --exocorps 200]
     (writes bench/results/load.json; exits 1 when an invariant is broken)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from exocorp.k8s import Kube
from exocorp.k8s import resources as r
from exocorp.testing import load, samples
from exocorp.testing.controlplane import ControlPlane
from exocorp.testing.platform import GatewayProcess, OperatorProcess, install_crds
from exocorp.testing.postgres import running_postgres
from exocorp.testing.processes import cpu_seconds, peak_rss_mib

OWNER_EMAIL = "load-owner@example.com"


def say(line: str) -> None:
    print(f"[load {time.strftime('%H:%M:%S')}] {line}", file=sys.stderr, flush=True)


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]




async def prepare(kubeconfig: Path) -> None:
    async with await Kube.connect(kubeconfig) as kube:
        await install_crds(kube)
        for version in ("1.0.0", "1.1.0"):
            await kube.apply(r.RELEASES, samples.release(version))


async def drive(kubeconfig: Path, gateway: GatewayProcess, operator: OperatorProcess,
                owner_password: str, args: argparse.Namespace) -> dict[str, Any]:
    tag = load.new_tag("ld")
    config = load.LoadConfig(clients=args.clients, seconds=args.seconds,
                             action_share=args.action_share)
    assert gateway.process is not None
    assert operator.process is not None
    pids = {"gateway": gateway.process.pid, "operator": operator.process.pid}
    async with await Kube.connect(kubeconfig) as kube, aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=300),
            connector=aiohttp.TCPConnector(limit=0)) as http:
        t0 = time.monotonic()
        fleet = await load.provision_fleet(kube, http, gateway.url, tag=tag,
                                           accounts=args.accounts, exocorps=args.exocorps,
                                           within=args.settle_timeout, say=say)
        setup_s = time.monotonic() - t0
        names = [slug for account in fleet for slug in account.exocorps]
        before = await load.snapshot(kube, names)
        since = load.utcnow()
        cpu0 = {name: cpu_seconds(pid) for name, pid in pids.items()}
        at_load_start = loadavg()
        say(f"running {config.clients} clients for {config.seconds:.0f}s "
            f"(load average {at_load_start})")
        samples_, elapsed = await load.run_load(http, gateway.url, fleet, config, tag=tag)
        cpu = {name: round(cpu_seconds(pid) - cpu0[name], 1) for name, pid in pids.items()}
        at_load_end = loadavg()
        summary = load.summarise(samples_, elapsed)
        say(f"{summary['requests']} requests, {summary['requests_per_second']} req/s, "
            f"statuses {summary['statuses']}; settling")
        # Kept even if what follows fails (a saturated machine): the figures of the run itself.
        Path(args.out).write_text(json.dumps({"partial": True, "load": summary,  # noqa: ASYNC240
                                              "load_average_at_load_start": at_load_start,
                                              "load_average_at_load_end": at_load_end},
                                             indent=2) + "\n")
        settle_s = await load.settle(kube, names, within=args.settle_timeout, say=say)
        after = await load.snapshot(kube, names)
        token = await load.login_token(http, gateway.url, OWNER_EMAIL, owner_password)
        events = await load.audit_events(http, gateway.url, token, since=since)
    verdict = load.verify(samples_, events, before, after, tag=tag)
    return {
        "setup_seconds": round(setup_s, 1),
        "settle_seconds_after_load": round(settle_s, 1),
        "load": summary,
        "checks": verdict.checks,
        "ok": not verdict.problems,
        "problems": verdict.problems[:50],
        "problem_count": len(verdict.problems),
        "process_cpu_seconds_during_load": cpu,
        "process_peak_rss_mib": {name: peak_rss_mib(pid) for name, pid in pids.items()},
        "load_average_at_load_start": at_load_start,
        "load_average_at_load_end": at_load_end,
    }


def run(workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    started = loadavg()
    n = args.exocorps
    # Room for every exocorp's 4 pods, twice over (rollouts surge), by pods (110 a node) and by
    # CPU requests (as bench/operator.py sizes it).
    nodes = max(-(-n * 4 * 2 // 100), -(-n * 12 * 2 // 320)) + 2
    plane = ControlPlane(workdir / "cluster", nodes=nodes, volumes=n + 8,
                         progress=lambda line: None)
    operator = OperatorProcess(plane.kubeconfig, workdir / "operator")
    gateway: GatewayProcess | None = None
    with contextlib.ExitStack() as stack:
        say(f"starting the control plane ({nodes} kwok nodes)")
        plane.start()
        stack.callback(plane.stop)
        if args.keep_logs:  # copied once the processes have stopped
            keep = Path(args.keep_logs)
            keep.mkdir(parents=True, exist_ok=True)
            stack.callback(lambda: [shutil.copyfile(log, keep / log.name) for log in
                                    (operator.log, workdir / "gateway" / "logs" / "gateway.log")
                                    if log.exists()])
        if args.database == "postgresql":
            server = stack.enter_context(running_postgres("exocorp_load"))
            database_url = server.url
        else:
            database_url = f"sqlite+aiosqlite:///{workdir}/gateway.db"
        asyncio.run(prepare(plane.kubeconfig))
        operator.start()
        stack.callback(operator.stop)
        password_file = workdir / "owner-password"
        owner_password = "load owner password"  # noqa: S105 (a throwaway platform)
        password_file.write_text(owner_password)
        gateway = GatewayProcess(
            plane.kubeconfig, workdir / "gateway", database_url,
            env={"EXOCORP_PLATFORM_OWNER_EMAIL": OWNER_EMAIL,
                 "EXOCORP_PLATFORM_OWNER_PASSWORD_FILE": str(password_file),
                 "EXOCORP_SIGNUP_CREDIT": str(10**12),
                 "EXOCORP_LOG_LEVEL": "warning"})
        gateway.start(timeout=180)
        stack.callback(gateway.stop)
        say(f"operator and gateway ({args.database}) up; provisioning {n} exocorps over HTTP")
        result = asyncio.run(drive(plane.kubeconfig, gateway, operator, owner_password, args))
        tracebacks = gateway.log.read_text().count("Traceback")
    return {
        "command": "uv run python bench/load.py " + " ".join(sys.argv[1:]),
        "clients": args.clients, "seconds": args.seconds, "exocorps": n,
        "accounts": args.accounts, "action_share": args.action_share,
        "database": args.database, "kwok_nodes": nodes,
        **result,
        "gateway_log_tracebacks": tracebacks,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average_at_start": started, "load_average_at_end": loadavg()},
    }


def main() -> None:
    # A SIGTERM (a timeout, say) must still run the finally blocks that stop the control plane.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--exocorps", type=int, default=200)
    parser.add_argument("--accounts", type=int, default=40)
    parser.add_argument("--action-share", type=float, default=0.2)
    parser.add_argument("--database", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--settle-timeout", type=float, default=1800.0)
    parser.add_argument("--out", default="bench/results/load.json")
    parser.add_argument("--keep-logs", help="copy the gateway's and operator's logs here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = run(Path(tmp), args)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("ok", "checks")}, indent=2))
    print(f"wrote {args.out}")
    if not result["ok"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
