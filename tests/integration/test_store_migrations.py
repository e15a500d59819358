"""Migrations: the head revision creates exactly what the models describe, on both databases."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import DBAPIError

from exocorp.store import (
    Database,
    current_revision,
    head_revision,
    open_database,
    schema_diff,
    upgrade_to_head,
)
from exocorp.store.engine import SQLITE_BUSY_TIMEOUT_MS
from exocorp.store.schema import Base

pytestmark = pytest.mark.integration


async def test_empty_database_differs_from_models(empty_database_url: str) -> None:
    # Guards the next test against passing by construction: the diff does see missing tables.
    assert await current_revision(empty_database_url) is None
    diff = await schema_diff(empty_database_url)
    added = {item[1].name for item in diff if item[0] == "add_table"}
    assert added == set(Base.metadata.tables)


async def test_head_matches_models(empty_database_url: str) -> None:
    await upgrade_to_head(empty_database_url)
    assert await current_revision(empty_database_url) == head_revision()
    assert await schema_diff(empty_database_url) == []


async def test_upgrade_is_idempotent(empty_database_url: str) -> None:
    await upgrade_to_head(empty_database_url)
    await upgrade_to_head(empty_database_url)
    assert await current_revision(empty_database_url) == head_revision()


async def test_constraint_names_follow_the_convention(database: Database) -> None:
    async with database.engine.connect() as conn:
        names = await conn.run_sync(
            lambda sync: {uq["name"] for uq in inspect(sync).get_unique_constraints("exocorps")}
        )
    assert {"uq_exocorps_slug", "uq_exocorps_portal_domain", "uq_exocorps_app_domain"} <= names


async def test_audit_table_refuses_update_and_delete(database: Database) -> None:
    async with database.sessionmaker.begin() as s:
        await s.execute(
            text(
                "INSERT INTO audit_events (created_at, actor_kind, action, outcome) "
                "VALUES (CURRENT_TIMESTAMP, 'system', 'test', 'succeeded')"
            )
        )
    statements = ["UPDATE audit_events SET action = 'forged'", "DELETE FROM audit_events"]
    if database.dialect == "postgresql":
        statements.append("TRUNCATE audit_events")
    for statement in statements:
        with pytest.raises(DBAPIError, match="append-only"):
            async with database.sessionmaker.begin() as s:
                await s.execute(text(statement))
    async with database.sessionmaker() as s:
        assert (await s.execute(text("SELECT action FROM audit_events"))).scalars().all() == [
            "test"
        ]


async def test_sqlite_connections_are_configured(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path}/plain.db")  # plain URLs get the async driver
    try:
        assert db.engine.url.drivername == "sqlite+aiosqlite"
        async with db.engine.connect() as conn:
            journal = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar()
            foreign_keys = (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar()
            busy = (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar()
    finally:
        await db.dispose()
    assert (journal, foreign_keys) == ("wal", 1)
    assert busy == SQLITE_BUSY_TIMEOUT_MS


def test_unsupported_urls_are_refused() -> None:
    with pytest.raises(ValueError, match="unsupported database"):
        open_database("mysql+aiomysql://localhost/db")
