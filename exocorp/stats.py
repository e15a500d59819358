"""Small statistics shared by the admin API's fleet figures, the load harness and the benchmarks,
so every percentile the platform reports follows one rule."""

from __future__ import annotations

import math
from collections.abc import Iterable


def percentile(values: Iterable[float], fraction: float) -> float:
    """Nearest-rank percentile: the smallest value with at least ``fraction`` (0 to 1) of the
    values at or below it (p50 of 1..4 is 2, p99 of 1..100 is 99). ValueError when empty."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("percentile of no values")
    return ordered[max(1, math.ceil(fraction * len(ordered))) - 1]
