"""SQLite's write transactions queue in the event loop, one at a time per process.

SQLite admits one writer at a time. Every write transaction here opens with ``BEGIN IMMEDIATE``
(``engine``), and a second one meanwhile waits in SQLite's busy handler, which *sleeps*: 1, 2,
5, 10, 15, 20, 25... ms between tries, in the worker thread of its connection. The lock is
usually free again long before the sleeper wakes, so under concurrent writes the database idles
while writers sleep. ``begin()`` of these sessions first takes an asyncio lock of this process,
so its write transactions run back to back instead. Measured in process, tasks each appending
an audit row (``bench/sqlite_writers.py``, ``bench/results/sqlite-writers.json``): with 50
tasks, 1,582 -> 2,074 transactions a second and p99 155 -> 36 ms; with 5, p99 34 -> 6.5 ms
(the median rises from 0.5 to 2.6 ms as writers queue, at about the same throughput).

Only an optimisation: nothing depends on it for correctness. Sessions opened without
``begin()`` and other processes on the same file meet at SQLite's lock as before; a writer that
waited the busy timeout for the gate goes ahead without it, so a transaction nested in another
(already wrong on SQLite: it waits for a lock its own task holds) still fails as SQLite fails
it, never hangs.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio.session import _AsyncSessionContextManager

__all__ = ["SerialWriterSessions"]


class _Gates:
    """One lock per event loop: an engine may outlive a loop (tests run one per test)."""

    def __init__(self) -> None:
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary())

    def current(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop)
        if lock is None:
            lock = self._locks[loop] = asyncio.Lock()
        return lock


class _GatedBegin(_AsyncSessionContextManager[AsyncSession]):
    """``async with sessions.begin() as s``: the gate, then the session and its transaction."""

    __slots__ = ("_gate", "_gates", "_wait")

    def __init__(self, session: AsyncSession, gates: _Gates, wait: float) -> None:
        super().__init__(session)
        self._gates = gates
        self._wait = wait
        self._gate: asyncio.Lock | None = None

    async def __aenter__(self) -> AsyncSession:
        gate = self._gates.current()
        try:
            async with asyncio.timeout(self._wait):
                await gate.acquire()
            self._gate = gate
        except TimeoutError:
            pass  # go ahead without it: SQLite's own lock and busy timeout decide
        try:
            return await super().__aenter__()
        except BaseException:
            self._release()
            raise

    async def __aexit__(self, type_: Any, value: Any, traceback: Any) -> None:
        try:
            await super().__aexit__(type_, value, traceback)
        finally:
            self._release()

    def _release(self) -> None:
        gate, self._gate = self._gate, None
        if gate is not None:
            gate.release()


class SerialWriterSessions(async_sessionmaker[AsyncSession]):
    """An ``async_sessionmaker`` whose ``begin()`` transactions take turns in this process."""

    def __init__(self, *args: Any, gate_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._gates = _Gates()
        self._gate_timeout = gate_timeout

    def begin(self) -> _AsyncSessionContextManager[AsyncSession]:
        return _GatedBegin(self(), self._gates, self._gate_timeout)
