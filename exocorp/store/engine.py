"""Engines and session factories from a ``DATABASE_URL``.

SQLite (aiosqlite) is the embedded default, PostgreSQL (asyncpg) the production database. SQLite
is set up on every new connection for concurrent use by one multi-task process (and a few
processes): WAL journal (readers never block the writer), foreign keys on, a busy timeout instead
of instant "database is locked" errors, and every transaction opened with ``BEGIN IMMEDIATE``.
The last point matters: a deferred transaction that reads and then writes can fail outright with
SQLITE_BUSY when another writer committed in between; taking the write lock up front makes
concurrent writers queue behind the busy timeout instead. Transactions that only read
(:attr:`Database.reader`) open with a plain ``BEGIN``: they see one snapshot, neither wait for
nor hold up the writers, and run on the event loop's thread (``sqlite_driver``).

Durability: ``synchronous = NORMAL`` with WAL syncs the log at checkpoints, not at every commit.
A committed transaction survives the process crashing or being killed (the log is in the
operating system's hands); an operating-system crash or power cut may lose the last
transactions before the newest checkpoint, never corrupt the database. PostgreSQL with its
defaults (``synchronous_commit = on``) loses nothing committed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from sqlalchemy import event, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from exocorp.store import sqlite_driver
from exocorp.store.postgres_pings import ping_idle_connections

__all__ = [
    "DEFAULT_DATABASE_URL",
    "SQLITE_BUSY_TIMEOUT_MS",
    "Database",
    "create_engine",
    "database_url_from_env",
    "make_sessionmaker",
    "open_database",
]

DEFAULT_DATABASE_URL: Final = "sqlite+aiosqlite:///exocorp.db"
SQLITE_BUSY_TIMEOUT_MS: Final = 30_000
_READ_ONLY: Final = "exocorp_read_only"
"""Execution option of :attr:`Database.reader`'s engine: its transactions only read."""

_DRIVERS: Final = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}


def database_url_from_env(environ: Mapping[str, str] | None = None) -> str:
    """``DATABASE_URL`` from the environment, or the embedded SQLite default."""
    env = os.environ if environ is None else environ
    return env.get("DATABASE_URL") or DEFAULT_DATABASE_URL


def _normalize_url(url: str | URL) -> URL:
    """Accept plain ``sqlite:///`` / ``postgresql://`` (and ``postgres://``) URLs too."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "postgres":
        backend = "postgresql"
    if backend not in _DRIVERS:
        raise ValueError(
            f"unsupported database {backend!r}: use sqlite+aiosqlite:///path "
            "or postgresql+asyncpg://user@host/db"
        )
    drivername = _DRIVERS[backend]
    if parsed.drivername not in (backend, drivername, parsed.get_backend_name()):
        raise ValueError(f"unsupported driver {parsed.drivername!r}: use {drivername}")
    return parsed.set(drivername=drivername)


def _on_sqlite_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    # Take transaction control away from the sqlite3 module (see the module docstring).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")  # see "Durability" above
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _on_sqlite_begin(connection: Connection) -> None:
    read_only = connection.get_execution_options().get(_READ_ONLY, False)
    begin = "BEGIN" if read_only else "BEGIN IMMEDIATE"
    driver = connection.connection.dbapi_connection
    if isinstance(driver, sqlite_driver.OneTripConnection):
        # No thread round trip of its own; a reader's makes none at all (sqlite_driver).
        driver.begin_with_next_statement(begin, inline=read_only)
    else:
        connection.exec_driver_sql(begin)


def create_engine(url: str | URL | None = None, **kwargs: Any) -> AsyncEngine:
    """An async engine for ``url`` (default: :func:`database_url_from_env`)."""
    parsed = _normalize_url(url if url is not None else database_url_from_env())
    # PostgreSQL: pooled connections are pinged before use unless just used (postgres_pings).
    pings = parsed.get_backend_name() == "postgresql" and "pool_pre_ping" not in kwargs
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    if parsed.get_backend_name() == "sqlite":
        kwargs.setdefault("module", sqlite_driver.DBAPI)  # one thread round trip per statement
        # Readers run on the event loop's thread, writers in aiosqlite's (sqlite_driver).
        kwargs["connect_args"] = {"check_same_thread": False, **kwargs.get("connect_args", {})}
    engine = _create_async_engine(parsed, **kwargs)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", _on_sqlite_connect)
        event.listen(engine.sync_engine, "begin", _on_sqlite_begin)
    if pings:
        ping_idle_connections(engine)
    return engine


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions whose objects stay readable after commit (no lazy reloads in async code)."""
    return async_sessionmaker(engine, expire_on_commit=False)


@dataclass(frozen=True)
class Database:
    """An engine and its session factories; ``await db.dispose()`` on shutdown."""

    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    reader: async_sessionmaker[AsyncSession]
    """Sessions for a few lookups by key that only read (same pool), such as an action's
    planning inputs; not for scans. On SQLite they do not take the write lock (see the module
    docstring), so they neither queue behind writers nor hold them up, see one snapshot and run
    on the event loop's thread; a write in one fails as SQLite's deferred transactions do.
    Elsewhere the same as :attr:`sessionmaker`."""

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def ping(self) -> None:
        """Raises unless the database answers a trivial query (readiness)."""
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


def open_database(url: str | URL | None = None, **kwargs: Any) -> Database:
    engine = create_engine(url, **kwargs)
    return Database(engine=engine, sessionmaker=make_sessionmaker(engine),
                    reader=make_sessionmaker(engine.execution_options(**{_READ_ONLY: True})))
