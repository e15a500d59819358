"""`exocorp gateway --processes N`: one small process that keeps N gateway processes running.

One aiohttp process uses one core, and the gateway's cached reads are CPU bound. The supervisor
runs the one-off ``prepare`` command (migrations, the first platform owner) once, then starts N
workers, each the same ``exocorp gateway`` command with ``--process-index i``. They share the
public port through SO_REUSEPORT (the kernel spreads connections over them); process i serves
its own /metrics on ``metrics_port + i`` and only process 0 runs the background workers
(``main.process_role``).

A worker that dies is started again after a backoff (1 s, doubling up to 30 s). One that keeps
dying young (``RestartPolicy.max_failures`` times in a row, each within ``stable_after`` seconds
of its start) ends the supervisor with exit status 1 after stopping the others, so the container
restarts and its restart count shows. SIGTERM or SIGINT is forwarded to every worker as SIGTERM
(each drains like a lone gateway); the supervisor exits once all have stopped, 0 if each stopped
cleanly. The workers get SIGTERM from the kernel if the supervisor itself dies.

``exocorp gateway`` checks its settings, then execs ``python -m exocorp.api_gateway.supervisor``
(:func:`main`): this module imports nothing heavy, so the supervisor holds no watch cache,
database, app or their libraries.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from exocorp import LOG_FORMAT

__all__ = ["RestartPolicy", "Supervisor", "main", "supervise"]

log = logging.getLogger("exocorp.api_gateway.supervisor")  # also when run as __main__

WorkerCommand = Callable[[int], Sequence[str]]
"""The command line of worker ``i``."""


@dataclass(frozen=True)
class RestartPolicy:
    backoff_initial: float = 1.0
    """Seconds before the first restart of a worker; each further restart in a row doubles it."""
    backoff_max: float = 30.0
    """The longest wait before a restart."""
    stable_after: float = 60.0
    """A worker that lived this long died of something new: its count of failures starts over."""
    max_failures: int = 5
    """Deaths in a row, each before ``stable_after``, after which the supervisor gives up."""

    def backoff(self, failures: int) -> float:
        return float(min(self.backoff_max, self.backoff_initial * 2 ** max(0, failures - 1)))


class CrashLoopError(Exception):
    """A worker kept dying."""


_PR_SET_PDEATHSIG = 1


def _stop_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that has the kernel send the child SIGTERM (it drains) when the
    supervisor dies, however it dies; None off Linux. libc is loaded here, in the parent, so
    the child runs no import between fork and exec."""
    if sys.platform != "linux":
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)

    return preexec


class Supervisor:
    """Keeps ``processes`` workers running until :meth:`run`'s ``stop`` is set."""

    def __init__(self, command: WorkerCommand, processes: int, *,
                 policy: RestartPolicy | None = None, drain_timeout: float = 60.0) -> None:
        self.command = command
        self.processes = processes
        self.policy = policy or RestartPolicy()
        self.drain_timeout = drain_timeout
        """Seconds the workers get to stop after SIGTERM before SIGKILL."""
        self.workers: dict[int, asyncio.subprocess.Process] = {}
        """The running process of each worker index."""
        self._stopping = asyncio.Event()
        self._clean = True
        self._preexec = _stop_with_parent()

    async def _start(self, argv: Sequence[str]) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, preexec_fn=self._preexec)

    async def _keep(self, index: int) -> None:
        """Run worker ``index`` until the supervisor stops; restart it when it dies."""
        loop = asyncio.get_running_loop()
        failures = 0
        while not self._stopping.is_set():
            proc = await self._start(self.command(index))
            self.workers[index] = proc
            if self._stopping.is_set():  # stop came while it was starting
                proc.terminate()
            started = loop.time()
            code = await proc.wait()
            if self._stopping.is_set():
                self._clean = self._clean and code == 0
                return
            failures = 0 if loop.time() - started >= self.policy.stable_after else failures + 1
            how = f"exit status {code}" if code >= 0 else f"signal {-code}"
            if failures >= self.policy.max_failures:
                raise CrashLoopError(f"gateway process {index} died {failures} times in a row "
                                     f"(last: {how}): see its log above")
            delay = self.policy.backoff(failures)
            log.warning("gateway process %d (pid %d) ended (%s); starting it again in %.0f s",
                        index, proc.pid, how, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)

    async def _drain(self, keepers: Sequence[asyncio.Task[None]]) -> None:
        self._stopping.set()
        for proc in self.workers.values():
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()
        running = [k for k in keepers if not k.done()]
        if running:
            _, late = await asyncio.wait(running, timeout=self.drain_timeout)
            if late:
                log.error("%d gateway processes did not stop within %.0f s: killing them",
                          len(late), self.drain_timeout)
                self._clean = False
                for proc in self.workers.values():
                    if proc.returncode is None:
                        with contextlib.suppress(ProcessLookupError):
                            proc.kill()
                await asyncio.wait(late)
        for keeper in keepers:  # collect what they raised (CrashLoopError is already reported)
            if keeper.done() and not keeper.cancelled():
                keeper.exception()

    async def run(self, stop: asyncio.Event) -> int:
        """Start the workers and keep them running until ``stop``; the exit status: 0 when every
        worker stopped cleanly, 1 otherwise (or when one kept dying)."""
        keepers = [asyncio.create_task(self._keep(i), name=f"gateway-process-{i}")
                   for i in range(self.processes)]
        stopped = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([stopped, *keepers], return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        failed = [k for k in keepers if k in done and k.exception() is not None]
        for keeper in failed:
            log.error("%s: stopping the others", keeper.exception())
        if not failed:
            log.info("stopping %d gateway processes", self.processes)
        await self._drain(keepers)
        return 1 if failed or not self._clean else 0


async def _run_once(argv: Sequence[str], stop: asyncio.Event) -> int:
    """Run ``argv`` to its end (SIGTERM it on ``stop``); its exit status."""
    proc = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.DEVNULL)
    waiting = asyncio.create_task(proc.wait())
    stopped = asyncio.create_task(stop.wait())
    await asyncio.wait((waiting, stopped), return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if proc.returncode is None:
        proc.terminate()
    return await waiting


async def supervise(prepare: Sequence[str], command: WorkerCommand, processes: int, *,
                    policy: RestartPolicy | None = None, drain_timeout: float = 60.0,
                    stop: asyncio.Event | None = None) -> int:
    """Run ``prepare`` once, then ``processes`` workers until SIGTERM/SIGINT (or ``stop``);
    the exit status of the whole. A failed ``prepare`` (a migration, a bad owner password
    file) ends it with that status: workers would fail the same way."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread
            loop.add_signal_handler(signum, stop.set)
    status = await _run_once(prepare, stop)
    if stop.is_set():
        return 0 if status == 0 else 1
    if status != 0:
        return status if status > 0 else 1  # < 0: killed by a signal
    return await Supervisor(command, processes, policy=policy,
                            drain_timeout=drain_timeout).run(stop)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m exocorp.api_gateway.supervisor [--log-level L] N WORKER...``: supervise N
    copies of the ``exocorp gateway`` command line WORKER."""
    parser = argparse.ArgumentParser(prog="exocorp gateway supervisor")
    parser.add_argument("--log-level", default="info")
    parser.add_argument("processes", type=int)
    parser.add_argument("worker", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format=LOG_FORMAT)
    worker: list[str] = args.worker
    return asyncio.run(supervise([*worker, "--prepare-only"],
                                 lambda i: [*worker, "--process-index", str(i)], args.processes))


if __name__ == "__main__":
    sys.exit(main())
