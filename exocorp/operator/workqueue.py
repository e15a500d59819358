"""A work queue like client-go's: each name is queued at most once, never processed by two
workers at a time, and re-queued if triggered again while being processed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class WorkQueue:
    def __init__(self, handler: Callable[[str], Awaitable[float | None]], workers: int,
                 retry_delay: float = 5.0) -> None:
        """``handler(name)`` returns seconds after which to look again, or None; a handler
        that raises is retried after ``retry_delay`` seconds."""
        self._handler = handler
        self._retry_delay = retry_delay
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        self._active: set[str] = set()
        self._dirty: set[str] = set()
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._workers = workers
        self._tasks: list[asyncio.Task[None]] = []
        self._open = asyncio.Event()
        self._open.set()

    @property
    def open(self) -> bool:
        return self._open.is_set()

    def pause(self) -> None:
        """Workers take nothing more (a pass under way finishes); names keep being queued."""
        self._open.clear()

    def resume(self) -> None:
        self._open.set()

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._work(), name=f"reconcile-worker-{i}")
                       for i in range(self._workers)]

    async def stop(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    def add(self, name: str) -> None:
        if name in self._active:
            self._dirty.add(name)
        elif name not in self._queued:
            self._queued.add(name)
            self._queue.put_nowait(name)

    def add_after(self, name: str, delay: float) -> None:
        existing = self._timers.get(name)
        loop = asyncio.get_running_loop()
        if existing is not None and existing.when() <= loop.time() + delay:
            return
        if existing is not None:
            existing.cancel()
        self._timers[name] = loop.call_later(delay, self._fire, name)

    def _fire(self, name: str) -> None:
        self._timers.pop(name, None)
        self.add(name)

    def alive(self) -> bool:
        return bool(self._tasks) and not any(task.done() for task in self._tasks)

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    async def _work(self) -> None:
        while True:
            await self._open.wait()
            name = await self._queue.get()
            if not self._open.is_set():  # paused while this worker waited for work
                self._queued.discard(name)
                self.add(name)
                continue
            self._queued.discard(name)
            self._active.add(name)
            try:
                again = await self._handler(name)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reconcile of %s failed; retrying", name)
                again = self._retry_delay
            finally:
                self._active.discard(name)
            if name in self._dirty:
                self._dirty.discard(name)
                self.add(name)
            elif again is not None:
                self.add_after(name, again)
