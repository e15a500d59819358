"""`exocorp gateway --processes N`: the supervisor keeps N real child processes running (a tiny
stand-in worker here; tests/integration/test_gateway_processes.py runs the real gateway),
starts a dead one again, gives up on one that keeps dying, forwards SIGTERM for a drain, and
prepares the database once before any worker; only process 0 runs the background workers."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest
from aiohttp import web

from exocorp.api_gateway.main import process_role
from exocorp.api_gateway.settings import GatewaySettings
from exocorp.api_gateway.supervisor import RestartPolicy, Supervisor
from exocorp.api_gateway.workers import BackgroundWork, billing, install_workers, system_audit
from exocorp.testing.waiting import eventually

pytestmark = pytest.mark.unit

# A stand-in for `exocorp gateway`: with --prepare-only it marks the database prepared; with
# --process-index i it records its start (and whether the database was prepared by then), then
# drains on SIGTERM (and records that), or dies at once if its crash marker exists.
WORKER = """\
import os, signal, sys, time
from pathlib import Path
state, args = Path(sys.argv[1]), sys.argv[2:]
if "--prepare-only" in args:
    (state / "prepared").touch()
    sys.exit(0)
index = args[args.index("--process-index") + 1]
prepared = (state / "prepared").exists()
(state / f"started-{index}-{os.getpid()}-{'prepared' if prepared else 'unprepared'}").touch()
if (state / f"crash-{index}").exists():
    sys.exit(3)
def drain(signum, frame):
    (state / f"drained-{index}-{os.getpid()}").touch()
    sys.exit(0)
signal.signal(signal.SIGTERM, drain)
while True:
    time.sleep(60)
"""

FAST = RestartPolicy(backoff_initial=0.05, backoff_max=0.2, stable_after=3600, max_failures=3)


def worker(state: Path) -> list[str]:
    return [sys.executable, "-c", WORKER, str(state)]


def starts(state: Path, index: int) -> list[int]:
    """PIDs worker ``index`` has run under, one per start."""
    return [int(p.name.split("-")[2]) for p in state.glob(f"started-{index}-*")]


def prepared_at_start(state: Path) -> list[str]:
    """Whether the database was prepared when each worker started, per start."""
    return sorted(p.name.rsplit("-", 1)[1] for p in state.glob("started-*"))


def drained(state: Path) -> set[int]:
    return {int(p.name.split("-")[2]) for p in state.glob("drained-*")}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"


def supervisor_of(state: Path) -> Supervisor:
    return Supervisor(lambda i: [*worker(state), "--process-index", str(i)], 2, policy=FAST,
                      drain_timeout=30)


async def test_a_killed_worker_is_started_again_and_its_peer_keeps_running(
        tmp_path: Path) -> None:
    stop = asyncio.Event()
    supervisor = supervisor_of(tmp_path)
    running = asyncio.create_task(supervisor.run(stop))

    async def both_started() -> tuple[list[int], list[int]]:
        return starts(tmp_path, 0), starts(tmp_path, 1)

    (first_0,), (first_1,) = await eventually(
        both_started, lambda s: len(s[0]) == len(s[1]) == 1, within=60, what="two workers")
    os.kill(first_1, signal.SIGKILL)  # as an out-of-memory kill would
    await eventually(both_started, lambda s: len(s[1]) == 2, within=60,
                     what="worker 1 started again")
    assert starts(tmp_path, 0) == [first_0]
    assert alive(first_0)
    (second_1,) = set(starts(tmp_path, 1)) - {first_1}
    assert alive(second_1)
    stop.set()
    assert await asyncio.wait_for(running, 60) == 0
    assert drained(tmp_path) == {first_0, second_1}
    assert not alive(first_0)
    assert not alive(second_1)


async def test_a_worker_that_keeps_dying_stops_the_others_and_ends_with_status_1(
        tmp_path: Path) -> None:
    (tmp_path / "crash-1").touch()
    status = await asyncio.wait_for(supervisor_of(tmp_path).run(asyncio.Event()), 60)
    assert status == 1
    assert len(starts(tmp_path, 1)) == FAST.max_failures  # started again until it gave up
    (healthy,) = starts(tmp_path, 0)
    assert drained(tmp_path) == {healthy}


def test_backoff_doubles_up_to_its_ceiling() -> None:
    policy = RestartPolicy(backoff_initial=1, backoff_max=30)
    assert [policy.backoff(n) for n in (1, 2, 3, 5, 6, 9)] == [1, 2, 4, 16, 30, 30]


async def _start_supervisor(state: Path) -> asyncio.subprocess.Process:
    """The supervisor as `exocorp gateway --processes 2` execs it, in a process of its own so
    that real signals reach it."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "exocorp.api_gateway.supervisor", "2", *worker(state))

    async def started() -> list[str]:
        return prepared_at_start(state)

    assert await eventually(started, lambda s: len(s) == 2, within=60,
                            what="two workers") == ["prepared", "prepared"]
    return proc


async def test_sigterm_to_the_supervisor_drains_every_worker_after_one_prepare(
        tmp_path: Path) -> None:
    proc = await _start_supervisor(tmp_path)
    workers = {*starts(tmp_path, 0), *starts(tmp_path, 1)}
    proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(proc.wait(), 60) == 0
    assert drained(tmp_path) == workers
    assert not any(alive(pid) for pid in workers)


async def test_workers_drain_when_the_supervisor_is_killed(tmp_path: Path) -> None:
    proc = await _start_supervisor(tmp_path)
    workers = {*starts(tmp_path, 0), *starts(tmp_path, 1)}
    proc.kill()  # no clean-up of its own can run: the kernel sends the workers SIGTERM
    await proc.wait()

    async def drained_now() -> set[int]:
        return drained(tmp_path)

    assert await eventually(drained_now, lambda d: d == workers, within=60,
                            what="workers drained") == workers


def test_only_process_0_of_several_runs_the_background_workers_and_none_migrates() -> None:
    settings = GatewaySettings(port=8000, metrics_port=9090, processes=3)
    roles = [process_role(settings, i) for i in range(3)]
    assert [r.metrics_port for r in roles] == [9090, 9091, 9092]
    assert [r.prepares for r in roles] == [False] * 3  # the supervisor's prepare did it
    assert all(r.shares_port for r in roles)
    installed = []
    for role in roles:
        app = web.Application()
        install_workers(app, role.work)
        installed.append(list(app.cleanup_ctx))
    assert system_audit in installed[0]
    assert billing in installed[0]
    assert installed[1] == installed[2] == []
    lone = process_role(GatewaySettings(), None)  # --processes 1: as the gateway always was
    assert (lone.prepares, lone.work, lone.metrics_port, lone.shares_port) == (
        True, BackgroundWork.ALL, 9090, False)


@pytest.mark.parametrize(("fields", "message"), [
    ({"processes": 0}, "processes must be between 1 and 64"),
    ({"processes": 3, "port": 9091}, "port 9091 is among the metrics ports"),
    ({"processes": 2, "port": 0}, "several processes need fixed ports"),
    ({"processes": 2, "metrics_port": 65535}, "must be a port number"),
])
def test_impossible_process_settings_are_refused(fields: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        GatewaySettings(**fields)  # type: ignore[arg-type]
