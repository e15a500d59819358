"""Run an `exocorp` command under cProfile, off until told: SIGUSR2 starts a fresh profile,
SIGUSR1 stops it and writes its stats (pstats format) to the file named first.

Used by `bench/gateway.py --profile-actions`: python bench/profiled.py OUT gateway ...
"""

from __future__ import annotations

import cProfile
import os
import signal
import sys
from types import FrameType


def main() -> None:
    out = sys.argv[1]
    profiler: list[cProfile.Profile] = []

    def start(signum: int, frame: FrameType | None) -> None:
        profiler[:] = [cProfile.Profile()]
        profiler[0].enable()

    def dump(signum: int, frame: FrameType | None) -> None:
        if profiler:
            profiler[0].disable()
            profiler.pop().dump_stats(out + ".part")
            os.replace(out + ".part", out)  # the reader waits for the whole file to appear

    signal.signal(signal.SIGUSR2, start)
    signal.signal(signal.SIGUSR1, dump)
    from exocorp.cli import main as cli_main
    sys.argv = ["exocorp", *sys.argv[2:]]
    sys.exit(cli_main())


if __name__ == "__main__":
    main()
