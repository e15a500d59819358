"""Child processes the harness starts: each logs to a file in the work directory, and is
stopped by the PID we recorded, never by name, so nothing else on the machine is touched."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

LOG_TAIL_LINES = 40


@dataclass
class ManagedProcess:
    """One started component: its name, PID, executable and log file."""

    name: str
    pid: int
    executable: str
    log: Path

    def alive(self) -> bool:
        """True while our process (not a later one that reused the PID) is running."""
        try:
            exe = os.readlink(f"/proc/{self.pid}/exe")
        except OSError:
            return False
        try:
            with open(f"/proc/{self.pid}/stat") as stat:
                state = stat.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            return False
        if state == "Z":
            _reap(self.pid)
            return False
        wanted = os.path.realpath(self.executable)
        if os.path.realpath(exe) == wanted:
            return True
        # A script runs under its interpreter: then its path is in the command line instead.
        try:
            with open(f"/proc/{self.pid}/cmdline", "rb") as cmdline:
                argv = cmdline.read().split(b"\0")
        except OSError:
            return False
        return any(os.path.realpath(a.decode(errors="replace")) == wanted for a in argv[:2] if a)

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` seconds; reap it if it is our child."""
        if not self.alive():
            _reap(self.pid)
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            _reap(self.pid)
            if not self.alive():
                return
            time.sleep(0.1)
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        for _ in range(50):
            _reap(self.pid)
            if not self.alive():
                return
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL at once, as a crash or an out-of-memory kill would."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
        for _ in range(50):
            _reap(self.pid)
            if not self.alive():
                return
            time.sleep(0.1)

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


_PR_SET_PDEATHSIG = 1
_tied_to: int | None = None


def tie_children_to_this_process() -> None:
    """From now on every child started by :func:`spawn` gets SIGKILL from the kernel when this
    process dies, however it dies (even SIGKILL, where no clean-up of ours can run).

    For foreground commands such as `exocorp dev`; `exocorp cluster up` leaves its children
    running on purpose, so this is opt-in. The kernel ties a child to the *thread* that forked
    it: call spawn from the main thread only after this."""
    global _tied_to
    _tied_to = os.getpid()


def _die_with(parent: int) -> Callable[[], None]:
    def preexec() -> None:  # runs in the child between fork and exec
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl: the signal never comes
            os._exit(1)
    return preexec


def spawn(name: str, argv: list[str], log: Path, env: dict[str, str] | None = None) -> (
    ManagedProcess
):
    """Start ``argv`` in its own session so a Ctrl-C at the terminal reaches only us; we then
    stop the children ourselves, in order."""
    log.parent.mkdir(parents=True, exist_ok=True)
    preexec = _die_with(_tied_to) if _tied_to == os.getpid() else None
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, env=env, preexec_fn=preexec,
        )
    return ManagedProcess(name=name, pid=proc.pid, executable=argv[0], log=log)


_CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a running process (benchmarks: the operator, the gateway)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def peak_rss_mib(pid: int) -> float:
    """Peak resident memory of a running process (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0
