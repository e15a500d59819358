"""The throwaway PostgreSQL harness: starts, serves, stops exactly its own process, explains
failures with the server log, and leaves nothing behind."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from exocorp.testing import postgres
from exocorp.testing.postgres import PostgresServer, PostgresUnavailableError

pytestmark = pytest.mark.integration


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def scratch_tmp(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Make the harness create its cluster directory where we can inspect it (under /tmp, which
    the postgres system user can traverse, unlike pytest's private tmp_path)."""
    scratch = Path(tempfile.mkdtemp(prefix="harness-test-", dir="/tmp"))
    scratch.chmod(0o755)
    monkeypatch.setattr(postgres.tempfile, "tempdir", str(scratch))
    yield scratch
    shutil.rmtree(scratch, ignore_errors=True)


def _entries(path: Path) -> list[Path]:
    return list(path.iterdir())


async def test_server_serves_its_database_then_is_gone(scratch_tmp: Path) -> None:
    with postgres.running_postgres("harness_check") as server:
        assert server.pid is not None
        assert _alive(server.pid)
        assert server.url.startswith("postgresql+asyncpg://postgres@127.0.0.1:")
        assert len(_entries(scratch_tmp)) == 1
        conn = await asyncpg.connect(
            host=server.host, port=server.port, user=server.user, database=server.database
        )
        try:
            version = int(await conn.fetchval("SHOW server_version_num"))
            assert await conn.fetchval("SELECT current_database()") == "harness_check"
        finally:
            await conn.close()
        pid = server.pid
    assert version // 10000 == postgres.POSTGRES_VERSION
    assert not _alive(pid)
    assert _entries(scratch_tmp) == []


def test_failure_to_start_reports_the_log_tail(scratch_tmp: Path) -> None:
    with (
        pytest.raises(PostgresUnavailableError) as caught,
        postgres.running_postgres(settings={"no_such_setting": "1"}),
    ):
        pass
    message = str(caught.value)
    assert "server log tail" in message
    assert "no_such_setting" in message
    assert _entries(scratch_tmp) == []


def test_unreachable_directory_is_explained(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    other_user = postgres._RunAs(user="nobody", uid=65534, gid=65534)
    with pytest.raises(PostgresUnavailableError, match=r"cannot enter .*private"):
        other_user.check_reachable(private / "exocorp-pg-x")
    other_user.check_reachable(Path("/tmp/exocorp-pg-x"))


def test_missing_binaries_say_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(postgres.ENV_BINDIR, "/nonexistent/bin")
    with pytest.raises(PostgresUnavailableError, match="apt-get install -y postgresql-15"):
        postgres.find_bindir()


def test_external_server_url_is_used_as_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(postgres.ENV_URL, "postgresql://ci:pw@db.internal:6543/exo")
    with postgres.postgres_from_env() as server:
        assert server == PostgresServer(
            host="db.internal", port=6543, user="ci", password="pw", database="exo"
        )
        assert server.url == "postgresql+asyncpg://ci:pw@db.internal:6543/exo"


async def test_database_names_are_never_spliced_into_sql() -> None:
    # Refused before any connection is attempted (nothing listens on port 1).
    server = PostgresServer(host="127.0.0.1", port=1, user="u", password=None, database="d")
    for bad in ('x"; DROP DATABASE d; --', "Upper", ""):
        with pytest.raises(ValueError, match="database name"):
            await server.create_database(bad)
        with pytest.raises(ValueError, match="database name"):
            await server.drop_database(bad)
