"""SQLAlchemy's aiosqlite adapter with one trip into aiosqlite's worker thread per statement.

aiosqlite runs every sqlite3 call in its own thread; each call is a round trip from the event
loop (queue, thread wake-up, ``call_soon_threadsafe``, loop wake-up). SQLAlchemy's adapter
makes four per statement: open a cursor, execute, fetch the rows, close the cursor; and the
engine's ``BEGIN`` is a statement of its own. Here one function does all four in the worker
thread, with the ``BEGIN`` when it is its transaction's first statement
(:meth:`OneTripConnection.begin_with_next_statement`). And the pool's rollback of a returned
connection is skipped when its transaction already ended (a commit or rollback, nothing sent
since): it would do nothing, but still cost a round trip.

A transaction that only reads (``Database.reader``: a few lookups by key) makes no trip at all:
its statements and its commit run on the event loop's thread. In WAL mode a reader never waits
for a writer, and such a statement takes tens of microseconds, less than the round trip it
saves. That needs the sqlite3 connection usable from both threads (``check_same_thread`` off:
SQLite itself is built serialized) and never used by both at once: a statement runs inline
only while no call of this connection is queued or running in the worker thread.

Only :mod:`exocorp.store.engine` uses this (``create_engine(..., module=DBAPI)``). It reaches
into aiosqlite's ``Connection._execute`` (run a function in the worker thread) and ``_conn``
(the sqlite3 connection), as SQLAlchemy's own adapter does; aiosqlite is pinned in uv.lock and
tests/unit/test_store_sqlite_driver.py counts the round trips.
"""

from __future__ import annotations

import sqlite3
from collections import deque
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Final, cast

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util.concurrency import await_

if TYPE_CHECKING:
    from sqlalchemy.connectors.asyncio import AsyncIODBAPIConnection

__all__ = ["DBAPI", "OneTripConnection", "OneTripCursor"]

_Outcome = tuple[Any, list[Any], int, int | None]
"""What one statement leaves: description, rows, rowcount, lastrowid."""


def _run(connection: sqlite3.Connection, begin: str | None, operation: str, parameters: Any,
         many: bool) -> _Outcome:
    """One statement, start to finish, after ``begin`` when its transaction starts with it
    (runs in aiosqlite's worker thread)."""
    cursor = connection.cursor()
    try:
        if begin is not None:
            cursor.execute(begin)
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else []
        # After the fetch: an INSERT/UPDATE ... RETURNING counts its rows as they are read.
        return description, rows, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


class OneTripCursor:
    """The DB-API cursor SQLAlchemy drives: ``execute`` runs the statement and reads all its
    rows in one call into the worker thread; the rest is answered from what it kept."""

    server_side: Final = False

    def __init__(self, adapt_connection: OneTripConnection) -> None:
        self._adapt_connection = adapt_connection
        self._rows: deque[Any] = deque()
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self.arraysize = 1

    def _call(self, operation: str, parameters: Any, many: bool) -> None:
        self.description, rows, self.rowcount, self.lastrowid = self._adapt_connection.run(
            operation, parameters, many)
        self._rows = deque(rows)

    def execute(self, operation: str, parameters: Any = None) -> None:
        self._call(operation, parameters, many=False)

    def executemany(self, operation: str, seq_of_parameters: Sequence[Any]) -> None:
        self._call(operation, seq_of_parameters, many=True)

    def fetchone(self) -> Any:
        return self._rows.popleft() if self._rows else None

    def fetchmany(self, size: int | None = None) -> list[Any]:
        rows = self._rows
        return [rows.popleft() for _ in range(min(size or self.arraysize, len(rows)))]

    def fetchall(self) -> list[Any]:
        rows = list(self._rows)
        self._rows.clear()
        return rows

    def __iter__(self) -> Iterator[Any]:
        while self._rows:
            yield self._rows.popleft()

    def close(self) -> None:
        self._rows.clear()

    async def _async_soft_close(self) -> None:
        """SQLAlchemy's async results call this; the sqlite3 cursor is closed already."""

    def nextset(self) -> None:
        return None

    def setinputsizes(self, *sizes: Any) -> None:
        pass

    def setoutputsize(self, size: Any, column: Any = None) -> None:
        pass


class OneTripConnection(AsyncAdapt_aiosqlite_connection):
    """SQLAlchemy's aiosqlite connection with :class:`OneTripCursor` and a rollback that is
    not sent when there is nothing to roll back."""

    __slots__ = ("_begin", "_ended", "_idle", "_inline")
    _cursor_cls = OneTripCursor  # type: ignore[assignment]

    def __init__(self, dbapi: Any, connection: AsyncIODBAPIConnection) -> None:
        super().__init__(dbapi, connection)
        self._ended = False
        """The last call into the worker thread was a commit or rollback that succeeded."""
        self._begin: str | None = None
        """The statement that opens the transaction, sent with its first statement."""
        self._inline = False
        """The open transaction only reads: its statements run on the calling thread."""
        self._idle = True
        """No call of ours is queued or running in the worker thread (one that was cancelled
        while waiting may still be)."""

    def begin_with_next_statement(self, begin: str, *, inline: bool = False) -> None:
        """Open a transaction with ``begin`` (e.g. ``BEGIN IMMEDIATE``) in the same call into
        the worker thread as its first statement, not a call of its own. Its errors (a busy
        database) are then the first statement's. ``inline``: the transaction only reads; it
        runs on the calling thread (see the module docstring)."""
        self._begin = begin
        self._inline = inline

    def run(self, operation: str, parameters: Any, many: bool) -> _Outcome:
        """One statement in one call into the worker thread, or none for an inline
        transaction (a transaction may be open until it ends)."""
        self._ended = False
        begin, self._begin = self._begin, None
        connection = cast(aiosqlite.Connection, self._connection)
        try:
            if self._inline and self._idle:
                return _run(connection._conn, begin, operation, parameters, many)
            self._idle = False
            outcome = cast(_Outcome, await_(connection._execute(  # type: ignore[no-untyped-call]
                _run, connection._conn, begin, operation, parameters, many)))
            self._idle = True
            return outcome
        except Exception as error:
            self._handle_exception(error)  # raises it as SQLAlchemy expects

    def cursor(self, server_side: bool = False) -> Any:
        self._ended = False  # server-side cursors run statements of their own
        if server_side:
            self._idle = False  # in the worker thread, until the next commit or rollback
        return super().cursor(server_side)

    def commit(self) -> None:
        self._begin = None
        self._ended = False
        if self._inline and self._idle:
            try:
                cast(aiosqlite.Connection, self._connection)._conn.commit()
            except Exception as error:
                self._handle_exception(error)
        else:
            self._idle = False
            super().commit()
        self._inline = False
        self._idle = self._ended = True  # behind everything queued before it

    def rollback(self) -> None:
        # The pool rolls back every connection it takes back. After a commit (or rollback) with
        # nothing sent since, no transaction is open and no call is in flight, so sqlite3's
        # rollback would do nothing: skip the round trip. Otherwise (an error, a cancelled
        # call, a transaction left open) it is sent, behind anything still queued.
        self._begin = None  # a transaction that ran no statement: nothing was sent
        self._inline = False
        if self._ended and self._connection._connection is not None \
                and not self._connection.in_transaction:
            return
        self._ended = self._idle = False
        super().rollback()
        self._idle = self._ended = True  # behind everything queued before it


class _OneTripDBAPI(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *arg: Any, **kw: Any) -> OneTripConnection:
        adapted = super().connect(*arg, **kw)
        return OneTripConnection(self, adapted._connection)


DBAPI: Final = _OneTripDBAPI(aiosqlite, sqlite3)
"""The ``module`` to give ``create_async_engine`` for a ``sqlite+aiosqlite`` URL."""
