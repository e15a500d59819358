"""Alembic, run from code: no ``alembic.ini``, the same path for SQLite and PostgreSQL.

Alembic is synchronous, so it runs inside ``AsyncConnection.run_sync`` on the caller's async
engine: one transaction, committed only when every step succeeded (both SQLite and PostgreSQL
have transactional DDL). On PostgreSQL an advisory lock serialises replicas that start at once.

Developers add a revision with ``python -m exocorp.store.migrate revision -m "what"`` (it
autogenerates the difference between the models and a scratch SQLite database at head).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path
from typing import Any, Final

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from exocorp.store.engine import create_engine
from exocorp.store.schema import Base

__all__ = [
    "MIGRATIONS_DIR",
    "alembic_config",
    "current_revision",
    "head_revision",
    "schema_diff",
    "upgrade_to_head",
]

MIGRATIONS_DIR: Final = Path(__file__).parent / "migrations"
_PG_MIGRATION_LOCK: Final = 0x65786F63  # "exoc": any constant shared by all replicas


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config for the shipped migrations; ``env.py`` uses ``connection`` if given."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "the migrations directory has no revisions"
    return head


def _upgrade(connection: Connection, target: str) -> None:
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK})")
    command.upgrade(alembic_config(connection), target)


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "compare_server_default": True}
    )
    return list(compare_metadata(context, Base.metadata))


async def _with_engine(url_or_engine: str | AsyncEngine, fn: Any, *args: Any) -> Any:
    engine = (
        url_or_engine if isinstance(url_or_engine, AsyncEngine) else create_engine(url_or_engine)
    )
    try:
        async with engine.begin() as conn:
            return await conn.run_sync(fn, *args)
    finally:
        if engine is not url_or_engine:
            await engine.dispose()


async def upgrade_to_head(url_or_engine: str | AsyncEngine) -> None:
    """Bring the database to the newest schema; a no-op when it is already there."""
    await _with_engine(url_or_engine, _upgrade, "head")


async def upgrade_to(url_or_engine: str | AsyncEngine, revision: str) -> None:
    await _with_engine(url_or_engine, _upgrade, revision)


async def current_revision(url_or_engine: str | AsyncEngine) -> str | None:
    """The revision the database is at, or None for an empty database."""
    result: str | None = await _with_engine(url_or_engine, _current)
    return result


async def schema_diff(url_or_engine: str | AsyncEngine) -> list[Any]:
    """Alembic autogenerate's differences between the database and the models (empty = in sync)."""
    result: list[Any] = await _with_engine(url_or_engine, _diff)
    return result


def _revision(message: str) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        url = f"sqlite+aiosqlite:///{scratch}/scratch.db"
        asyncio.run(upgrade_to_head(url))

        def generate(connection: Connection) -> None:
            command.revision(alembic_config(connection), message=message, autogenerate=True)

        async def run() -> None:
            await _with_engine(url, generate)

        asyncio.run(run())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m exocorp.store.migrate")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("upgrade", help="migrate DATABASE_URL (or --url) to head")
    up.add_argument("--url", default=None)
    rev = sub.add_parser("revision", help="autogenerate a new revision from the models")
    rev.add_argument("-m", "--message", required=True)
    args = parser.parse_args(argv)
    if args.command == "upgrade":
        from exocorp.store.engine import database_url_from_env

        asyncio.run(upgrade_to_head(args.url or database_url_from_env()))
        print(f"database at revision {head_revision()}")
    else:
        _revision(args.message)


if __name__ == "__main__":
    main()
