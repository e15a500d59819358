"""A cProfile's own time (tottime) summed by top-level package: where a request's CPU goes."""

from __future__ import annotations

import pstats
from collections import Counter
from pathlib import Path


def by_package(stats: pstats.Stats, n: int) -> dict[str, float]:
    """The profiled thread's own time per request (ms), by top-level package (the standard
    library by module); waiting in epoll is the loop being idle."""
    totals: Counter[str] = Counter()
    for (filename, _line, function), row in stats.stats.items():  # type: ignore[attr-defined]
        if "site-packages/" in filename:
            package = filename.split("site-packages/", 1)[1].split("/", 1)[0]
        elif "/exocorp/" in filename:
            package = "exocorp." + filename.split("/exocorp/", 1)[1].split("/", 1)[0]
        elif filename == "~":
            package = f"builtin {function}"
        else:
            package = "stdlib " + Path(filename).stem
        totals[package] += row[2]
    return {package: round(seconds * 1000 / n, 3) for package, seconds in totals.most_common(25)}
