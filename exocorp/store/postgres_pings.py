"""PostgreSQL connections are pinged before use, unless they were in use a moment ago.

A pooled connection may have died while it waited (the server restarted, a proxy dropped it), so
the pool checks it before handing it out, as SQLAlchemy's ``pool_pre_ping`` does, and on a dead
one drops the whole pool and connects anew. But SQLAlchemy's ping over asyncpg is three round
trips (``BEGIN``, ``;``, ``ROLLBACK``, for pgbouncer's transaction mode), and a lifecycle action
checks a connection out twice: six round trips an action. Without them, in process (``uv run
python bench/action_profile.py --postgresql``, two runs each): 2.67-2.73 -> 2.46-2.49 ms p50 per
action, 2.19-2.28 -> 2.00-2.10 ms of CPU; the server is spared the statements too.

So a connection returned to the pool less than :data:`PING_BYPASS_SECONDS` ago is handed out
unchecked (HikariCP's ``aliveBypassWindowMs``, 500 ms by default). Under load that is every
checkout; an idle gateway still pings. A server restart inside that window fails the one request
that meets the dead connection with a 503 (``outage``), and the pool is replaced as after a
failed ping.
"""

from __future__ import annotations

import time
from typing import Any, Final

from sqlalchemy import event, exc
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import ConnectionPoolEntry

__all__ = ["PING_BYPASS_SECONDS", "ping_idle_connections"]

PING_BYPASS_SECONDS: Final = 0.5
_RETURNED: Final = "exocorp_returned_at"


def _returned(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    record.info[_RETURNED] = time.monotonic()


def ping_idle_connections(engine: AsyncEngine) -> None:
    """Ping a connection on checkout when it sat in the pool :data:`PING_BYPASS_SECONDS` or
    more (use instead of ``pool_pre_ping``)."""
    dialect = engine.sync_engine.dialect

    def check(dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        returned = record.info.get(_RETURNED)
        if returned is not None and time.monotonic() - returned < PING_BYPASS_SECONDS:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as error:
            if dialect.is_disconnect(error, dbapi_connection, None):
                # As a failed pre-ping: connections older than this one are dead too.
                raise exc.InvalidatePoolError() from error
            raise

    event.listen(engine.sync_engine, "connect", _returned)  # a new connection is alive
    event.listen(engine.sync_engine, "checkin", _returned)
    event.listen(engine.sync_engine, "checkout", check)
