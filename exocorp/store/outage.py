"""Is this exception "the database is unreachable"? One predicate for the whole platform, so
the gateway answers every such failure the same way (503 with ``Retry-After``) instead of 500.

Covered: SQLAlchemy's ``OperationalError`` and ``InterfaceError`` (the driver lost or could not
open its connection; SQLite's "database is locked" is one too), any ``DBAPIError`` whose
connection was invalidated, asyncpg's connection errors (``PostgresConnectionError``,
``InterfaceError``, the server shutting down or starting up), and ``OSError`` (refused, reset,
unreachable) and ``TimeoutError`` raised while connecting. The engine pings pooled connections
before use (``postgres_pings``), so once the server is back the next request gets a fresh one.
"""

from __future__ import annotations

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import exc as sa_exc

__all__ = ["database_unavailable"]

_ASYNCPG: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
)


def database_unavailable(error: BaseException) -> bool:
    """True when ``error`` (or an exception it was raised from) means the database cannot be
    reached right now: worth a 503 and a retry, not a 500."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, sa_exc.DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, (sa_exc.OperationalError, sa_exc.InterfaceError)):
            return True
        if isinstance(current, _ASYNCPG):
            return True
        if isinstance(current, (ConnectionError, TimeoutError, OSError)):
            return True
        current = current.__cause__
    return False
