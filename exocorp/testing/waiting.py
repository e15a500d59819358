"""Polling until a condition holds: for tests and the dev command, never for measuring speed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


class NeverHappenedError(AssertionError):
    """The awaited condition did not hold in time; carries the last value seen."""


async def eventually(
    probe: Callable[[], Awaitable[T]],
    accept: Callable[[T], bool] = bool,
    *,
    within: float = 120.0,
    interval: float = 0.25,
    what: str = "condition",
) -> T:
    """Call ``probe`` until ``accept`` takes its result; return that result."""
    deadline = time.monotonic() + within
    last: T | None = None
    last_error: Exception | None = None
    while True:
        try:
            last = await probe()
            if accept(last):
                return last
        except Exception as err:
            last_error = err
        if time.monotonic() > deadline:
            raise NeverHappenedError(
                f"{what} did not happen within {within:.0f}s; last value: {last!r}"
                + (f"; last error: {last_error!r}" if last_error else "")
            )
        await asyncio.sleep(interval)
