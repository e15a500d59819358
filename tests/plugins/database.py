"""Database fixtures: every store test runs against SQLite and against a real PostgreSQL 15.

- ``postgres_server`` (session): a throwaway PostgreSQL started by the harness, or the server
  named by ``EXOCORP_TEST_POSTGRES_URL``. Started only if a test asks for PostgreSQL. If it cannot
  start, the requesting tests *error* with the server log's tail; they are never skipped.
- ``database_backend``: ``"sqlite"`` or ``"postgresql"``; every fixture below is parametrized
  over it, so a test using any of them runs once per backend.
- ``empty_database_url``: a fresh, empty database per test (for migration tests).
- ``database_url``: a fresh database per test, already migrated to head. Migrations run once per
  session into a template (a PostgreSQL template database, a SQLite file) that each test copies.
- ``database``: an ``exocorp.store.Database`` (engine + sessionmaker) on ``database_url``.
- ``clock``: a :class:`FakeClock` to pass as ``now=clock()``; tests advance it instead of sleeping.
- ``fast_hasher``: argon2id with the cheapest parameters (hashes verify like real ones).
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from exocorp.security import PasswordHasher
from exocorp.store import Database, open_database, upgrade_to_head
from exocorp.testing.postgres import PostgresServer, postgres_from_env

BACKENDS = ("sqlite", "postgresql")


def _sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def _unique_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    with postgres_from_env("exocorp_tests") as server:
        yield server


@pytest.fixture(scope="session")
async def _postgres_template(postgres_server: PostgresServer) -> AsyncIterator[str]:
    name = _unique_name("exocorp_template")
    url = await postgres_server.create_database(name)
    await upgrade_to_head(url)  # disposes its engine: a template must have no connections
    yield name
    await postgres_server.drop_database(name)


@pytest.fixture(scope="session")
async def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    await upgrade_to_head(_sqlite_url(path))
    return path


@pytest.fixture
async def _postgresql_empty_url(postgres_server: PostgresServer) -> AsyncIterator[str]:
    name = _unique_name("exocorp_empty")
    url = await postgres_server.create_database(name)
    yield url
    await postgres_server.drop_database(name)


@pytest.fixture
async def _postgresql_migrated_url(
    postgres_server: PostgresServer, _postgres_template: str
) -> AsyncIterator[str]:
    name = _unique_name("exocorp_test")
    url = await postgres_server.create_database(name, template=_postgres_template)
    yield url
    await postgres_server.drop_database(name)


@pytest.fixture
def _sqlite_empty_url(tmp_path: Path) -> str:
    return _sqlite_url(tmp_path / "empty.db")


@pytest.fixture
def _sqlite_migrated_url(_sqlite_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "exocorp.db"
    shutil.copyfile(_sqlite_template, path)
    return _sqlite_url(path)


@pytest.fixture(params=BACKENDS)
def database_backend(request: pytest.FixtureRequest) -> str:
    backend: str = request.param
    return backend


# Dispatchers are plain (sync) fixtures on purpose: they pick the backend's fixture by name, so
# PostgreSQL is started only when a test runs on it, and getfixturevalue() of an async fixture
# must not be called from inside the running event loop.


@pytest.fixture
def empty_database_url(database_backend: str, request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue(f"_{database_backend}_empty_url")
    return url


@pytest.fixture
def database_url(database_backend: str, request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue(f"_{database_backend}_migrated_url")
    return url


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    db = open_database(database_url)
    try:
        yield db
    finally:
        await db.dispose()


@pytest.fixture
async def sqlite_database(_sqlite_migrated_url: str) -> AsyncIterator[Database]:
    """A fresh migrated SQLite database, for tests that need only the embedded default."""
    db = open_database(_sqlite_migrated_url)
    try:
        yield db
    finally:
        await db.dispose()


class FakeClock:
    """A settable UTC clock: ``clock()`` reads it, ``clock.advance(minutes=5)`` moves it."""

    def __init__(self, start: datetime) -> None:
        self._now = start

    def __call__(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta | None = None, **kwargs: float) -> datetime:
        self._now += delta if delta is not None else timedelta(**kwargs)
        return self._now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2030, 1, 1, 12, 0, tzinfo=UTC))


@pytest.fixture(scope="session")
def fast_hasher() -> PasswordHasher:
    return PasswordHasher.for_tests()
