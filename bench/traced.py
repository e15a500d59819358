"""Run an `exocorp` command under tracemalloc; on SIGUSR1 write where its live memory was
allocated (by file and by line, top 40 each) to the file named first.

Used by `bench/operator.py --profile`: python bench/traced.py OUT operator --kubeconfig ...
"""

from __future__ import annotations

import signal
import sys
import tracemalloc
from pathlib import Path
from types import FrameType


def _dump(out: Path) -> None:
    snapshot = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(False, tracemalloc.__file__)])
    total = sum(stat.size for stat in snapshot.statistics("filename"))
    lines = [f"traced total: {total / 2**20:.1f} MiB",
             f"process RSS now: {_rss_mib():.1f} MiB", "", "by file:"]
    for stat in snapshot.statistics("filename")[:40]:
        lines.append(f"{stat.size / 2**20:8.2f} MiB {stat.count:9d} blocks  "
                     f"{stat.traceback[0].filename}")
    lines += ["", "by line:"]
    for stat in snapshot.statistics("lineno")[:40]:
        frame = stat.traceback[0]
        lines.append(f"{stat.size / 2**20:8.2f} MiB {stat.count:9d} blocks  "
                     f"{frame.filename}:{frame.lineno}")
    out.write_text("\n".join(lines) + "\n")


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    out = Path(sys.argv[1])
    tracemalloc.start(1)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        _dump(out)

    signal.signal(signal.SIGUSR1, on_signal)
    from exocorp.cli import main as cli_main
    sys.argv = ["exocorp", *sys.argv[2:]]
    sys.exit(cli_main())


if __name__ == "__main__":
    main()
