"""Gateway read and write throughput against a direct API-server GET, on the local control plane.

Setup: a fresh control plane with the CRDs and a stable release; N exocorps (default 1,000) owned
by 20 accounts (50 each), created as Exocorp objects with their registry rows in a SQLite
database (the embedded default); every account has a provider credential and its exocorps are
provisioned (spec only: no operator runs, so the numbers are the gateway's own). Then
`exocorp gateway` runs as its own process and, at 1, 50 and 200 concurrent clients (each with a
session token of one of the accounts), for a fixed duration each:

- GET /api/registry/my-companies   (50 exocorps per answer, from the watch cache)
- GET /api/registry/companies/:id  (one exocorp, from the watch cache)
- POST stop / provision, alternating on the client's own exocorp (a real write: the patch,
  planned from the watch cache, and an audit row)
- the baseline: GET of the same Exocorp straight from the API server (the Kube client the
  gateway itself uses), in the same run, at the same concurrency;
- the floor: GET /healthz (no authentication, no cache, no database): what the HTTP stack alone
  costs, on the same machine, with the load generator sharing its cores.

Reported per scenario: requests per second, p50 and p99 latency, non-2xx answers; the ratios of
the API-server GET's latency to the cached GET's; the gateway's RSS (now and peak).

Then the same reads again with a native load generator (`oha`, pinned, built by this script
with `cargo install` into ~/.cache/exocorp/bench-tools the first time), so the client is not the
floor:
cached GETs at 1 and 50 clients, `my-companies` at 50, `/healthz`, and the API server's own GET
(with a service-account token) in the same run; the gateway's CPU per request; and the floor of
aiohttp itself (`aiohttp_floor.py`: a constant answer, no middleware), the lowest latency any
read of an aiohttp gateway could have here. Writes keep the
Python generator (each request differs): a lifecycle action (`POST .../stop` and `.../provision`
in turn, each a real spec write) against the API server's own merge PATCH of the same Exocorps
(`spec.restartAt`, a real write each time),
at 1 and 50 clients, with the gateway's CPU per action.

The database is SQLite (the embedded default) unless `--database postgresql`: then a throwaway
PostgreSQL 15 from Debian's packages (`exocorp.testing.postgres`, as the integration tier starts
it) with its production durability settings (fsync, synchronous_commit and full_page_writes on,
unlike the tests' throwaway servers), and the result goes to bench/results/gateway-postgresql.json.
`--writes-only` skips the read scenarios (the writes are what the database changes).
`--rounds N` runs each write pair (the PATCH, then the action) N times in turn and reports the
median of the rounds' ratios, each round's besides: the machine's load drifts over a run, and a
round's two sides run back to back.

Run: uv run python bench/gateway.py [--duration 8] [--exocorps 1000] [--native-only]
         [--writes-only] [--rounds 3] [--database sqlite|postgresql]
     (writes bench/results/gateway.json, or gateway-postgresql.json)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import platform
import pstats
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

from exocorp.k8s import Kube
from exocorp.k8s import resources as r
from exocorp.model import DomainKind, canonical_domains
from exocorp.security import PasswordHasher
from exocorp.stats import percentile
from exocorp.store import accounts, billing, open_database, registry, upgrade_to_head
from exocorp.testing import samples
from exocorp.testing.controlplane import ControlPlane, free_port
from exocorp.testing.platform import PLATFORM_NAMESPACE, install_crds
from exocorp.testing.postgres import DURABLE_POSTGRES, running_postgres
from exocorp.testing.processes import cpu_seconds, spawn
from exocorp.testing.waiting import eventually

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from profile_packages import by_package  # noqa: E402

ACCOUNTS = 20
PASSWORD = "bench password 123"  # noqa: S105 (a throwaway bench account)
CONCURRENCY = (1, 50, 200)
OHA = ("oha", "1.16.0")
"""The native load generator (Rust, built with ``cargo install``): at 50 clients it takes
less than half the CPU per request vegeta did, so the gateway, not the generator, is the floor."""
CLUSTERROLEBINDINGS = r.Resource("rbac.authorization.k8s.io", "v1", "clusterrolebindings",
                                 "ClusterRoleBinding", False)
TOOLS = Path.home() / ".cache" / "exocorp" / "bench-tools"


def generator_binary() -> Path:
    """The pinned native load generator, built once (``cargo install --locked``, minutes)."""
    name, version = OHA
    binary = TOOLS / "bin" / name
    if not binary.exists() or f" {version}" not in subprocess.run(
            [str(binary), "--version"], capture_output=True, text=True).stdout:
        TOOLS.mkdir(parents=True, exist_ok=True)
        print(f"installing {name} {version} (cargo install)", file=sys.stderr)
        subprocess.run(["cargo", "install", "--locked", "--root", str(TOOLS), "--version",
                        version, name], check=True)
    return binary


def native_load(url: str, concurrency: int, duration: float, headers: dict[str, str],
                pid: int | None = None) -> dict[str, Any]:
    """``concurrency`` oha workers on ``url`` for ``duration`` seconds, each sending its next
    request when the last is answered (a closed loop, like the Python generator), over HTTP/1.1
    keep-alive; latencies to the microsecond; the CPU seconds process ``pid`` used per
    request."""
    argv = [str(generator_binary()), "-z", f"{duration}s", "-c", str(concurrency), "--no-tui",
            "--output-format", "json", "--insecure"]
    for key, value in headers.items():
        argv += ["-H", f"{key}: {value}"]
    cpu0 = tree_cpu_seconds(pid) if pid else 0.0
    report = json.loads(subprocess.run([*argv, url], check=True, capture_output=True).stdout)
    cpu = tree_cpu_seconds(pid) - cpu0 if pid else 0.0
    statuses = {str(code): count for code, count in report["statusCodeDistribution"].items()}
    requests = sum(statuses.values())
    percentiles = report["latencyPercentiles"]
    result: dict[str, Any] = {
        "generator": " ".join(OHA), "concurrency": concurrency, "requests": requests,
        "rps": round(requests / report["summary"]["total"], 1),
        "p50_ms": round(percentiles["p50"] * 1e3, 3),
        "p99_ms": round(percentiles["p99"] * 1e3, 3),
        "non_2xx": sum(v for k, v in statuses.items() if not k.startswith("2")),
        "statuses": statuses,
        # Requests still in flight when the duration ran out are cut off, not failures.
        "errors": report.get("errorDistribution") or {},
    }
    if pid:
        result["server_cpu_ms_per_request"] = round(1000 * cpu / max(requests, 1), 3)
    return result


async def service_account_token(kube: Kube) -> str:
    """A bearer token allowed to read Exocorps, for the load generator to call the API server."""
    name, ns = "bench-reader", PLATFORM_NAMESPACE
    await kube.apply(r.SERVICEACCOUNTS, {"apiVersion": "v1", "kind": "ServiceAccount",
                                         "metadata": {"name": name, "namespace": ns}})
    await kube.apply(CLUSTERROLEBINDINGS, {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": ns}]})
    answer = await kube.request(
        "POST", r.SERVICEACCOUNTS.path(ns, name, "token"),
        body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
              "spec": {"expirationSeconds": 3600}})
    token: str = answer["status"]["token"]
    return token


async def native(kube: Kube, base: str, owners: list[dict[str, Any]], duration: float,
                 gateway_pid: int, workdir: Path) -> dict[str, Any]:
    """The read scenarios with the native generator (one account's token), and the floor of
    aiohttp itself (``aiohttp_floor.py``: a constant answer, no middleware) beside them."""
    async with aiohttp.ClientSession() as http, http.post(f"{base}/api/auth/login", json={
            "email": owners[0]["email"], "password": PASSWORD}) as response:
        assert response.status == 200, await response.text()
        token = response.cookies["exocorp_session"].value
    slug = owners[0]["slugs"][0]
    auth = {"Authorization": f"Bearer {token}"}
    api_auth = {"Authorization": f"Bearer {await service_account_token(kube)}"}
    api_url = kube.host + r.EXOCORPS.path(None, slug)
    loop = asyncio.get_running_loop()

    async def run(url: str, c: int, headers: dict[str, str], pid: int | None) -> dict[str, Any]:
        return await loop.run_in_executor(None, native_load, url, c, duration, headers, pid)

    out: dict[str, list[dict[str, Any]]] = {
        "get_company": [], "get_my_companies": [], "gateway_floor_healthz": [],
        "aiohttp_floor_constant": [], "apiserver_get_exocorp": []}
    floor_port = free_port()
    floor = spawn("aiohttp-floor", [sys.executable, str(Path(__file__).with_name(
        "aiohttp_floor.py")), str(floor_port)], workdir / "aiohttp-floor.log")
    floor_url = f"http://127.0.0.1:{floor_port}/healthz"

    async def floor_up() -> int:
        async with aiohttp.ClientSession() as http, http.get(floor_url) as response:
            return response.status

    try:
        await eventually(floor_up, lambda status: status == 200, within=30, what="aiohttp floor")
        for c in (1, 50):
            out["get_company"].append(await run(f"{base}/api/registry/companies/{slug}", c, auth,
                                                gateway_pid))
            out["get_my_companies"].append(await run(f"{base}/api/registry/my-companies", c, auth,
                                                     gateway_pid))
            out["gateway_floor_healthz"].append(await run(f"{base}/healthz", c, {}, gateway_pid))
            out["aiohttp_floor_constant"].append(await run(floor_url, c, {}, floor.pid))
            out["apiserver_get_exocorp"].append(await run(api_url, c, api_auth, None))
            for name, runs in out.items():
                last = runs[-1]
                print(f"  oha {name:<22} c={c:<3} {last['rps']:>8} req/s  p50 "
                      f"{last['p50_ms']:>7} ms  p99 {last['p99_ms']:>7} ms  {last['statuses']}",
                      file=sys.stderr)
    finally:
        floor.stop()
    ratios = {str(c): round(out["apiserver_get_exocorp"][i]["p50_ms"]
                            / out["get_company"][i]["p50_ms"], 2)
              for i, c in enumerate((1, 50))}
    # The most any aiohttp answer could score on the same measure (no work, no middleware).
    best = {str(c): round(out["apiserver_get_exocorp"][i]["p50_ms"]
                          / out["aiohttp_floor_constant"][i]["p50_ms"], 2)
            for i, c in enumerate((1, 50))}
    return {"scenarios": out, "apiserver_get_p50_over_cached_get_p50": ratios,
            "apiserver_get_p50_over_aiohttp_floor_p50": best}


async def writes(kube: Kube, base: str, owners: list[dict[str, Any]],
                 duration: float, gateway_pid: int,
                 profile: Path | None = None, rounds: int = 1) -> dict[str, Any]:
    """A lifecycle action through the gateway against the API server's own PATCH of the same
    Exocorps, at 1 and 50 clients (Python generator: every request differs); the gateway's CPU
    per action besides. With ``rounds`` > 1 each pair (PATCH, then action) runs that many times
    in turn and the ratios are the medians of the rounds' (each round's in ``per_round``): a
    change of the machine's load then moves both sides of a round, not one run. With
    ``profile`` (the gateway runs under bench/profiled.py), the actions at 1 client of the first
    round are profiled, and the gateway's own time per action is reported by package."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        tokens = []
        for owner in owners:
            async with http.post(f"{base}/api/auth/login", json={
                    "email": owner["email"], "password": PASSWORD}) as response:
                tokens.append(response.cookies["exocorp_session"].value)

        def own(w: int) -> tuple[str, str]:
            owner = owners[w % len(owners)]
            return tokens[w % len(owners)], owner["slugs"][(w // len(owners)) % len(owner["slugs"])]

        # Stop and provision in turn on the worker's own exocorp: each is a real spec write
        # that the next one's phase allows without an operator (a restart needs Running, which
        # only an operator reaches). A refusal (a worker's first guess of its phase) flips too.
        next_action: dict[str, str] = {}

        async def action(w: int, i: int) -> int:
            token, slug = own(w)
            name = next_action.get(slug, "stop")
            async with http.post(f"{base}/api/registry/companies/{slug}/{name}",
                                 headers={"Authorization": f"Bearer {token}"},
                                 json={"reason": f"bench {w} {i}"}) as response:
                await response.read()
                next_action[slug] = "provision" if name == "stop" else "stop"
                return response.status

        async def patch(w: int, i: int) -> int:
            _, slug = own(w)
            await kube.patch(r.EXOCORPS, slug, {"spec": {"restartAt": _stamp(w, i)}})
            return 200

        out: dict[str, list[dict[str, Any]]] = {"post_action": [], "apiserver_patch": []}
        pairs: dict[int, list[tuple[dict[str, Any], dict[str, Any]]]] = {1: [], 50: []}
        for c, round_ in ((c, n) for c in (1, 50) for n in range(rounds)):
            out["apiserver_patch"].append(await run_load(c, duration, patch))
            profiled = profile if c == 1 and round_ == 0 else None
            if profiled is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(profiled)
                os.kill(gateway_pid, signal.SIGUSR2)
            cpu0 = tree_cpu_seconds(gateway_pid)
            out["post_action"].append(await run_load(c, duration, action))
            last = out["post_action"][-1]
            cpu1 = tree_cpu_seconds(gateway_pid)  # before the profile is written
            if profiled is not None:
                last["profile_ms_per_action_by_package"] = await _profile_of(
                    gateway_pid, profiled, last["requests"])
            last["server_cpu_ms_per_request"] = round(
                1000 * (cpu1 - cpu0) / max(last["requests"], 1), 3)
            for name, runs in out.items():
                runs[-1]["round"] = round_
                last = runs[-1]
                print(f"  {name:<22} c={c:<3} {last['rps']:>8} req/s  p50 {last['p50_ms']:>7} "
                      f"ms  {last['statuses']}", file=sys.stderr)
            pairs[c].append((out["apiserver_patch"][-1], out["post_action"][-1]))
    return {"scenarios": out, "ratios": {str(c): _write_ratios(pairs[c]) for c in pairs}}


def _write_ratios(pairs: list[tuple[dict[str, Any], dict[str, Any]]]) -> dict[str, Any]:
    """The action against the PATCH of each round (p50 over p50, throughput over throughput)
    and their medians."""
    per_round = [{"action_p50_over_patch_p50": round(action["p50_ms"] / patch["p50_ms"], 2),
                  "action_rps_over_patch_rps": round(action["rps"] / patch["rps"], 2)}
                 for patch, action in pairs]
    medians: dict[str, Any] = {key: round(statistics.median(r[key] for r in per_round), 2)
                               for key in per_round[0]}
    return medians | ({"per_round": per_round} if len(per_round) > 1 else {})


async def _profile_of(gateway_pid: int, profile: Path, requests: int) -> dict[str, float]:
    """Stop the gateway's profiler (bench/profiled.py), print its top functions and answer
    its own time per request by package."""
    os.kill(gateway_pid, signal.SIGUSR1)
    while not os.path.exists(profile):  # noqa: ASYNC110, ASYNC240 (renamed into place whole)
        await asyncio.sleep(0.1)
    text = io.StringIO()
    stats = pstats.Stats(str(profile), stream=text)
    stats.sort_stats("tottime").print_stats(40)
    stats.sort_stats("cumulative").print_stats(60)
    print(text.getvalue(), file=sys.stderr)
    return by_package(stats, requests)


def _stamp(w: int, i: int) -> str:
    """A distinct RFC 3339 time per request, so every PATCH is a real write."""
    t = time.time() + w * 1e-3 + i * 1e-6
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1e6) % 10**6:06d}Z"


def _tree(pid: int) -> list[int]:
    """The gateway and its worker processes (``--processes N``: a supervisor and N children)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return [pid, *children]


def tree_cpu_seconds(pid: int) -> float:
    return sum(cpu_seconds(p) for p in _tree(pid))


def rss_mib(pid: int) -> tuple[float, float]:
    """RSS now and peak (VmHWM), summed over the gateway's processes."""
    now = peak = 0.0
    for p in _tree(pid):
        fields = {}
        for line in Path(f"/proc/{p}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            fields[key] = value.strip()
        now += int(fields["VmRSS"].split()[0]) / 1024
        peak += int(fields["VmHWM"].split()[0]) / 1024
    return now, peak


async def seed(kube: Kube, database_url: str, n: int) -> list[dict[str, Any]]:
    """Accounts, their exocorps (rows and objects, provisioned) and credentials."""
    await install_crds(kube)
    await kube.apply(r.RELEASES, samples.release("1.0.0"))
    await upgrade_to_head(database_url)
    database = open_database(database_url)
    hasher = PasswordHasher.for_tests()
    owners: list[dict[str, Any]] = []
    per_account = n // ACCOUNTS
    draft = samples.draft("1.0.0")
    try:
        async with database.sessionmaker.begin() as s:
            await billing.create_price_book(s, name="default", currency="USD",
                                            rates={"*": 1}, is_default=True)
        for a in range(ACCOUNTS):
            async with database.sessionmaker.begin() as s:
                new = await accounts.create_user(s, email=f"bench{a}@example.com",
                                                 password=PASSWORD, signup_credit=10**9,
                                                 hasher=hasher)
            user = new.user.id
            secret = samples.provider_secret(f"bench-{a}-anthropic", PLATFORM_NAMESPACE, user,
                                             "anthropic", f"sk-bench-{a}")
            await kube.apply(r.SECRETS, secret)
            slugs = [f"bench-{a:02d}-{i:03d}" for i in range(per_account)]

            async def make(slug: str, user: str = user,
                           secret_name: str = secret["metadata"]["name"]) -> None:
                domains = canonical_domains(slug, portal_base="portal.exocorp.localhost",
                                            app_base="app.exocorp.localhost")
                async with database.sessionmaker.begin() as s:
                    await registry.create_exocorp(
                        s, exocorp_id=slug, slug=slug, owner_user_id=user,
                        display_name=slug, portal_domain=domains[DomainKind.PORTAL],
                        app_domain=domains[DomainKind.APP])
                body = samples.exocorp(slug, user)
                body["spec"].update({"provisioned": True, "release": {"channel": "stable",
                                                                       "version": "1.0.0"},
                                     "config": draft["config"],
                                     "providerBindings": [{"provider": "anthropic",
                                                           "secretName": secret_name}]})
                await kube.create(r.EXOCORPS, body)

            for start in range(0, len(slugs), 25):
                await asyncio.gather(*(make(slug) for slug in slugs[start:start + 25]))
            owners.append({"email": f"bench{a}@example.com", "user": user, "slugs": slugs})
            print(f"  seeded account {a + 1}/{ACCOUNTS} ({per_account} exocorps)",
                  file=sys.stderr)
    finally:
        await database.dispose()
    return owners


async def run_load(concurrency: int, duration: float,
                   request: Callable[[int, int], Awaitable[int]]) -> dict[str, Any]:
    """``concurrency`` workers calling ``request(worker, i)`` back to back for ``duration``."""
    latencies: list[float] = []
    failures = 0
    statuses: Counter[int] = Counter()
    deadline = time.monotonic() + duration

    async def worker(w: int) -> None:
        nonlocal failures
        i = 0
        while time.monotonic() < deadline:
            t0 = time.perf_counter()
            status = await request(w, i)
            latencies.append(time.perf_counter() - t0)
            statuses[status] += 1
            if not 200 <= status < 300:
                failures += 1
            i += 1

    t0 = time.monotonic()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    elapsed = time.monotonic() - t0
    return {
        "concurrency": concurrency,
        "requests": len(latencies),
        "rps": round(len(latencies) / elapsed, 1),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 2),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 2),
        "non_2xx": failures,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
    }


async def measure(kube: Kube, base: str, owners: list[dict[str, Any]], duration: float,
                  gateway_pid: int) -> dict[str, Any]:
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        tokens = []
        for owner in owners:
            async with http.post(f"{base}/api/auth/login", json={
                    "email": owner["email"], "password": PASSWORD}) as response:
                assert response.status == 200, await response.text()
                tokens.append(response.cookies["exocorp_session"].value)

        def auth(w: int) -> dict[str, str]:
            return {"Authorization": f"Bearer {tokens[w % len(tokens)]}"}

        def own_exocorp(w: int) -> str:
            slugs: list[str] = owners[w % len(owners)]["slugs"]
            return slugs[(w // len(owners)) % len(slugs)]

        async def get(url: str, headers: dict[str, str]) -> int:
            async with http.get(url, headers=headers) as response:
                await response.read()
                return response.status

        async def my_companies(w: int, i: int) -> int:
            return await get(f"{base}/api/registry/my-companies", auth(w))

        async def company(w: int, i: int) -> int:
            return await get(f"{base}/api/registry/companies/{own_exocorp(w)}", auth(w))

        stopped: set[str] = set()  # each exocorp is driven by one client at a time

        async def action(w: int, i: int) -> int:
            slug = own_exocorp(w)
            verb = "provision" if slug in stopped else "stop"
            url = f"{base}/api/registry/companies/{slug}/{verb}"
            async with http.post(url, headers=auth(w), json={"reason": "bench"}) as response:
                await response.read()
                if response.status == 202:
                    stopped.symmetric_difference_update({slug})
                return response.status

        async def floor(w: int, i: int) -> int:
            return await get(f"{base}/healthz", {})

        async def apiserver(w: int, i: int) -> int:
            await kube.get(r.EXOCORPS, own_exocorp(w))
            return 200

        # Warm up every path once (imports, connection pools, caches).
        for fn in (my_companies, company, apiserver):
            await fn(0, 0)
        scenarios: dict[str, list[dict[str, Any]]] = {
            "get_my_companies": [], "get_company": [], "post_action": [],
            "apiserver_get_exocorp": [], "gateway_floor_healthz": []}
        for concurrency in CONCURRENCY:
            for name, fn in (("get_my_companies", my_companies), ("get_company", company),
                             ("post_action", action), ("apiserver_get_exocorp", apiserver),
                             ("gateway_floor_healthz", floor)):
                result = await run_load(concurrency, duration, fn)
                scenarios[name].append(result)
                print(f"  {name:<22} c={concurrency:<4} {result['rps']:>8} req/s  "
                      f"p50 {result['p50_ms']:>8} ms  p99 {result['p99_ms']:>8} ms  "
                      f"statuses {result['statuses']}", file=sys.stderr)
        rss_now, rss_peak = rss_mib(gateway_pid)
    ratios = {}
    for i, concurrency in enumerate(CONCURRENCY):
        api = scenarios["apiserver_get_exocorp"][i]
        cached = scenarios["get_company"][i]
        ratios[str(concurrency)] = {
            "apiserver_p50_over_cached_get_p50": round(api["p50_ms"] / cached["p50_ms"], 2),
            "cached_get_rps_over_apiserver_rps": round(cached["rps"] / api["rps"], 2),
        }
    return {"scenarios": scenarios, "ratios": ratios,
            "gateway_rss_mib": round(rss_now, 1), "gateway_peak_rss_mib": round(rss_peak, 1)}


"""PostgreSQL's own defaults, which the test harness turns off for its throwaway servers."""


async def bench(workdir: Path, database_url: str, n: int, duration: float,
                keep_log: str | None, native_only: bool = False,
                writes_only: bool = False, processes: int = 1,
                profile_actions: Path | None = None, rounds: int = 1) -> dict[str, Any]:
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    plane = ControlPlane(workdir / "cluster", nodes=1, progress=lambda line: None)
    plane.start()
    gateway = None
    try:
        async with await Kube.connect(plane.kubeconfig) as kube:
            t0 = time.monotonic()
            owners = await seed(kube, database_url, n)
            seeded = time.monotonic() - t0
            port = free_port()
            env = {**os.environ, "DATABASE_URL": database_url, "EXOCORP_COOKIE_SECURE": "false",
                   "EXOCORP_LOG_LEVEL": "warning"}
            env["EXOCORP_LOG_LEVEL"] = os.environ.get("BENCH_GATEWAY_LOG_LEVEL", "warning")
            profile = profile_actions
            runner = ([str(BENCH / "profiled.py"), str(profile)]
                      if profile else ["-m", "exocorp.cli"])
            gateway = spawn("gateway", [sys.executable, *runner, "gateway",
                                        "--kubeconfig", str(plane.kubeconfig),
                                        "--port", str(port),
                                        "--metrics-port", str(free_port()),
                                        "--processes", str(processes)],
                            workdir / "gateway.log", env=env)
            base = f"http://127.0.0.1:{port}"

            async def ready() -> int:
                async with aiohttp.ClientSession() as http, http.get(f"{base}/readyz") as resp:
                    return resp.status

            t1 = time.monotonic()
            await eventually(ready, lambda status: status == 200, within=120,
                             what="gateway ready")
            ready_s = time.monotonic() - t1
            print(f"gateway ready in {ready_s:.1f}s with {n} exocorps", file=sys.stderr)
            idle_rss, _ = rss_mib(gateway.pid)
            results = {} if native_only or writes_only else await measure(
                kube, base, owners, duration, gateway.pid)
            if not writes_only:
                results["native"] = await native(kube, base, owners, duration, gateway.pid,
                                                 workdir)
            results["writes"] = await writes(kube, base, owners, duration, gateway.pid,
                                            profile, rounds)
            results["gateway_rss_after_native_mib"] = round(rss_mib(gateway.pid)[0], 1)
    finally:
        if gateway is not None:
            gateway.stop()
            if keep_log:
                shutil.copyfile(gateway.log, keep_log)
        plane.stop()
    return {
        "exocorps": n,
        "accounts": ACCOUNTS,
        "exocorps_per_account": n // ACCOUNTS,
        "duration_seconds_per_scenario": duration,
        "seed_seconds": round(seeded, 1),
        "gateway_ready_seconds": round(ready_s, 2),
        "gateway_processes": processes,
        "gateway_idle_rss_mib": round(idle_rss, 1),
        **results,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average_at_start": load_at_start,
                    "load_average_at_end": [round(x, 2) for x in os.getloadavg()]},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exocorps", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--out", help="default bench/results/gateway.json (SQLite) or "
                        "bench/results/gateway-postgresql.json")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--writes-only", action="store_true",
                        help="only the write scenarios (actions against the API server's PATCH)")
    parser.add_argument("--processes", type=int, default=1,
                        help="gateway processes (`exocorp gateway --processes`); CPU and RSS "
                             "are summed over them")
    parser.add_argument("--keep-log", help="copy the gateway's log here")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run each write pair (PATCH, action) this many times in turn; "
                             "the ratios are the medians of the rounds")
    parser.add_argument("--native-only", action="store_true",
                        help="skip the Python-generator read scenarios")
    parser.add_argument("--profile-actions", metavar="FILE",
                        help="run the gateway under cProfile (bench/profiled.py), write the "
                             "profile of the actions at 1 client to FILE (pstats) and report "
                             "where the gateway's time goes in them, by package (slower)")
    args = parser.parse_args()
    suffix = "".join([f"-{args.database}" if args.database != "sqlite" else "",
                      f"-{args.processes}-processes" if args.processes > 1 else ""])
    out = args.out or f"bench/results/gateway{suffix}.json"
    if not args.writes_only:
        generator_binary()  # before the control plane starts: a failed install fails fast
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        if args.database == "postgresql":
            server = stack.enter_context(running_postgres("exocorp_bench",
                                                          settings=DURABLE_POSTGRES))
            database_url, database = server.url, {
                "name": "postgresql 15 (exocorp.testing.postgres, loopback)",
                "settings": DURABLE_POSTGRES}
        else:
            database_url = f"sqlite+aiosqlite:///{tmp}/gateway.db"
            database = {"name": "sqlite (embedded default)",
                        "settings": {"journal_mode": "WAL", "synchronous": "NORMAL"}}
        result = asyncio.run(bench(Path(tmp), database_url, args.exocorps, args.duration,
                                   args.keep_log, args.native_only, args.writes_only,
                                   args.processes,
                                   Path(args.profile_actions).resolve() if args.profile_actions
                                   else None, args.rounds))
    result = {"database": database, **result,
              "command": " ".join(["uv run python bench/gateway.py", *sys.argv[1:]])}
    Path(out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result.get(k) for k in ("ratios",)}, indent=2))
    if "native" in result:
        print(json.dumps(result["native"]["apiserver_get_p50_over_cached_get_p50"]))
    print(json.dumps(result["writes"]["ratios"]))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
