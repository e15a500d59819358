"""A throwaway PostgreSQL 15 server for tests, benchmarks and local runs.

``running_postgres()`` creates a cluster with ``initdb`` in a temporary directory, starts
``postgres`` on a free loopback port (its unix socket in that directory too), waits until it
accepts connections, creates a database and yields a :class:`PostgresServer` with an asyncpg URL.
On exit, success or failure, it stops exactly the process it started (by PID) and removes the
directory. It installs nothing: it uses Debian's ``postgresql-15`` package
(``apt-get install -y postgresql-15``), found in ``/usr/lib/postgresql/15/bin`` or in
``$EXOCORP_POSTGRES_BINDIR``.

PostgreSQL refuses to run as root, so under root the cluster belongs to, and the server runs as,
the ``postgres`` system user that the Debian package creates.

When ``$EXOCORP_TEST_POSTGRES_URL`` names an existing server (any database on it that the user may
``CREATE DATABASE`` from), :func:`postgres_from_env` uses it and starts nothing.

Run ``python -m exocorp.testing.postgres`` to get a server until Ctrl-C.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.engine import URL, make_url

__all__ = [
    "DEBIAN_BINDIR",
    "DURABLE_POSTGRES",
    "ENV_BINDIR",
    "ENV_URL",
    "PostgresServer",
    "PostgresUnavailableError",
    "find_bindir",
    "postgres_from_env",
    "running_postgres",
]

POSTGRES_VERSION: Final = 15
DURABLE_POSTGRES: Final = {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"}
"""``running_postgres(settings=...)`` for benchmarks: production's durability, which the tests'
throwaway servers turn off for speed."""
DEBIAN_BINDIR: Final = Path(f"/usr/lib/postgresql/{POSTGRES_VERSION}/bin")
ENV_BINDIR: Final = "EXOCORP_POSTGRES_BINDIR"
ENV_URL: Final = "EXOCORP_TEST_POSTGRES_URL"
SYSTEM_USER: Final = "postgres"
SUPERUSER: Final = "postgres"
INSTALL_HINT: Final = f"install it with `apt-get install -y postgresql-{POSTGRES_VERSION}`"
LOG_TAIL_LINES: Final = 40

# Durability is worthless for a database that is deleted at the end of the run.
_SERVER_SETTINGS: Final = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "listen_addresses": "127.0.0.1",
}
_IDENTIFIER: Final = re.compile(r"[a-z_][a-z0-9_]{0,62}")


class PostgresUnavailableError(RuntimeError):
    """PostgreSQL could not be found or started; the message says why and what to do."""


@dataclass(frozen=True)
class PostgresServer:
    """A reachable PostgreSQL server and the database made for this run."""

    host: str
    port: int
    user: str
    password: str | None
    database: str
    """Created at start (or named by ``$EXOCORP_TEST_POSTGRES_URL``)."""
    pid: int | None = None
    """The postmaster's PID when this process started the server, None for an external one."""

    @property
    def url(self) -> str:
        """asyncpg URL of :attr:`database`."""
        return self.url_for(self.database)

    def url_for(self, database: str) -> str:
        return URL.create(
            "postgresql+asyncpg",
            username=self.user,
            password=self.password,
            host=self.host,
            port=self.port,
            database=database,
        ).render_as_string(hide_password=False)

    @classmethod
    def from_url(cls, url: str) -> PostgresServer:
        parsed = make_url(url)
        if parsed.get_backend_name() != "postgresql":
            raise PostgresUnavailableError(f"{ENV_URL} must be a postgresql:// URL")
        return cls(
            host=parsed.host or "127.0.0.1",
            port=parsed.port or 5432,
            user=parsed.username or SUPERUSER,
            password=parsed.password,
            database=parsed.database or "postgres",
        )

    async def _admin(self) -> Any:
        return await asyncpg.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            database=self.database,
        )

    async def create_database(self, name: str, *, template: str | None = None) -> str:
        """Create database ``name`` (optionally a copy of ``template``) and return its URL."""
        sql = f'CREATE DATABASE "{_identifier(name)}"'
        if template is not None:
            sql += f' TEMPLATE "{_identifier(template)}"'
        conn = await self._admin()
        try:
            await conn.execute(sql)
        finally:
            await conn.close()
        return self.url_for(name)

    async def drop_database(self, name: str) -> None:
        """Drop ``name``, disconnecting whoever is still in it."""
        sql = f'DROP DATABASE IF EXISTS "{_identifier(name)}" WITH (FORCE)'
        conn = await self._admin()
        try:
            await conn.execute(sql)
        finally:
            await conn.close()


def _identifier(name: str) -> str:
    if not _IDENTIFIER.fullmatch(name):
        raise ValueError(f"not a plain lowercase database name: {name!r}")
    return name


def find_bindir() -> Path:
    """The directory holding ``initdb`` and ``postgres`` for PostgreSQL 15."""
    configured = os.environ.get(ENV_BINDIR)
    bindir = Path(configured) if configured else DEBIAN_BINDIR
    missing = [
        tool
        for tool in ("initdb", "postgres", "pg_isready", "createdb")
        if not (bindir / tool).is_file()
    ]
    if missing:
        where = f"${ENV_BINDIR}={configured}" if configured else str(bindir)
        raise PostgresUnavailableError(
            f"PostgreSQL {POSTGRES_VERSION} not found ({', '.join(missing)} missing in {where}): "
            f"{INSTALL_HINT}, or set {ENV_URL} to an existing server"
        )
    return bindir


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _log_tail(log: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return "(no server log)"
    tail = text.splitlines()[-lines:]
    return "\n".join(tail) if tail else "(server log is empty)"


@dataclass(frozen=True)
class _RunAs:
    """Who the cluster belongs to: ourselves, or the postgres system user when we are root."""

    user: str | None
    uid: int
    gid: int

    @classmethod
    def detect(cls) -> _RunAs:
        if os.geteuid() != 0:
            return cls(user=None, uid=os.geteuid(), gid=os.getegid())
        try:
            entry = pwd.getpwnam(SYSTEM_USER)
        except KeyError:
            raise PostgresUnavailableError(
                f"running as root, and PostgreSQL refuses to: the {SYSTEM_USER!r} system user "
                f"is missing ({INSTALL_HINT} creates it)"
            ) from None
        return cls(user=SYSTEM_USER, uid=entry.pw_uid, gid=entry.pw_gid)

    def run(self, args: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            args,
            user=self.user,
            group=self.gid if self.user else None,
            text=True,
            capture_output=True,
            check=False,
        )

    def chown(self, path: Path) -> None:
        if self.user is not None:
            os.chown(path, self.uid, self.gid)

    def check_reachable(self, path: Path) -> None:
        """Fail early, and clearly, when a parent directory bars the postgres user."""
        if self.user is None:
            return
        for parent in path.parents:
            st = parent.stat()
            if st.st_uid == self.uid:
                allowed = st.st_mode & stat.S_IXUSR
            elif st.st_gid == self.gid:
                allowed = st.st_mode & stat.S_IXGRP
            else:
                allowed = st.st_mode & stat.S_IXOTH
            if not allowed:
                raise PostgresUnavailableError(
                    f"the {self.user!r} user cannot enter {parent}, so it cannot reach {path}; "
                    "point TMPDIR at a directory it can traverse (such as /tmp)"
                )


def _initdb(bindir: Path, run_as: _RunAs, data_dir: Path) -> None:
    result = run_as.run(
        [
            str(bindir / "initdb"),
            "--pgdata",
            str(data_dir),
            "--username",
            SUPERUSER,
            "--auth",
            "trust",  # loopback only, and the cluster dies with the run
            "--encoding",
            "UTF8",
            "--locale",
            "C",
            "--no-sync",
            "--no-instructions",
        ]
    )
    if result.returncode != 0:
        raise PostgresUnavailableError(
            f"initdb failed (exit {result.returncode}):\n{result.stdout}{result.stderr}"
        )


def _stop(process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Stop the postmaster we started, by its PID: fast shutdown, then immediate, then kill."""
    for sig, wait in ((signal.SIGINT, timeout), (signal.SIGQUIT, 5.0), (signal.SIGKILL, 5.0)):
        if process.poll() is not None:
            return
        process.send_signal(sig)
        try:
            process.wait(wait)
        except subprocess.TimeoutExpired:
            continue
        return


def _wait_ready(
    bindir: Path, process: subprocess.Popen[bytes], port: int, log: Path, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise PostgresUnavailableError(
                f"postgres exited with code {process.returncode} while starting; "
                f"server log tail:\n{_log_tail(log)}"
            )
        probe = subprocess.run(
            [str(bindir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(port), "-t", "1"],
            check=False,
        )
        if probe.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise PostgresUnavailableError(
                f"postgres did not accept connections within {timeout:.0f}s; "
                f"server log tail:\n{_log_tail(log)}"
            )
        time.sleep(0.1)


def _start(
    bindir: Path,
    run_as: _RunAs,
    base: Path,
    data_dir: Path,
    timeout: float,
    extra_settings: Mapping[str, str],
    port: int | None = None,
) -> tuple[subprocess.Popen[bytes], int, Path]:
    """Start the postmaster (on ``port``, or a free one: then retry on another port if it was
    taken meanwhile)."""
    fixed = port
    attempts = 1 if fixed is not None else 3
    for attempt in range(1, attempts + 1):
        port = fixed if fixed is not None else _free_port()
        log = base / f"postgres-{port}.log"
        log.parent.mkdir(exist_ok=True)
        settings = [
            f"--{key}={value}" for key, value in {**_SERVER_SETTINGS, **extra_settings}.items()
        ]
        with log.open("ab") as log_file:
            process = subprocess.Popen(
                [
                    str(bindir / "postgres"),
                    "-D",
                    str(data_dir),
                    "-p",
                    str(port),
                    "-k",
                    str(base),
                    *settings,
                ],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                user=run_as.user,
                group=run_as.gid if run_as.user else None,
                start_new_session=True,  # Ctrl-C in a terminal reaches us, not the server
            )
        try:
            _wait_ready(bindir, process, port, log, timeout)
        except PostgresUnavailableError:
            _stop(process)
            if attempt < attempts and "could not bind" in _log_tail(log):
                continue
            raise
        except BaseException:
            _stop(process)
            raise
        return process, port, log
    raise AssertionError("unreachable")


@contextmanager
def running_postgres(
    database: str = "exocorp",
    *,
    startup_timeout: float = 60.0,
    settings: Mapping[str, str] | None = None,
) -> Iterator[PostgresServer]:
    """Start a throwaway PostgreSQL 15 with ``database`` created in it; stop it on exit.

    ``settings`` adds or overrides server configuration parameters (``{"work_mem": "64MB"}``).
    """
    bindir = find_bindir()
    run_as = _RunAs.detect()
    base = Path(tempfile.mkdtemp(prefix="exocorp-pg-"))
    try:
        run_as.chown(base)
        run_as.check_reachable(base)
        data_dir = base / "data"
        _initdb(bindir, run_as, data_dir)
        process, port, log = _start(bindir, run_as, base, data_dir, startup_timeout, settings or {})
        try:
            # The createdb tool rather than asyncpg: this works with or without an event loop.
            created = run_as.run(
                [
                    str(bindir / "createdb"),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(port),
                    "-U",
                    SUPERUSER,
                    _identifier(database),
                ]
            )
            if created.returncode != 0:
                raise PostgresUnavailableError(
                    f"could not create database {database!r}: {created.stderr.strip()}; "
                    f"server log tail:\n{_log_tail(log)}"
                )
            yield PostgresServer(
                host="127.0.0.1",
                port=port,
                user=SUPERUSER,
                password=None,
                database=database,
                pid=process.pid,
            )
        finally:
            _stop(process)
    finally:
        shutil.rmtree(base, ignore_errors=True)


class RestartablePostgres:
    """A throwaway server that a test can stop and start again on the same port and data
    directory (a database outage under traffic). Use :func:`restartable_postgres`."""

    def __init__(self, bindir: Path, run_as: _RunAs, base: Path, startup_timeout: float,
                 ) -> None:
        self._bindir = bindir
        self._run_as = run_as
        self._base = base
        self._timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.log = base / "postgres.log"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start the postmaster (again) on the same data directory and port."""
        if self.running:
            return
        self._process, self.port, self.log = _start(
            self._bindir, self._run_as, self._base, self._base / "data", self._timeout, {},
            port=self.port or None)

    def stop(self) -> None:
        """Fast shutdown (SIGINT: sessions are disconnected, committed work is checkpointed),
        by the PID we started; waits until the postmaster has exited."""
        if self._process is not None:
            _stop(self._process)
            self._process = None


@contextmanager
def restartable_postgres(database: str = "exocorp", *, startup_timeout: float = 60.0,
                         ) -> Iterator[tuple[PostgresServer, RestartablePostgres]]:
    """Like :func:`running_postgres`, plus a handle to stop and start the server."""
    bindir = find_bindir()
    run_as = _RunAs.detect()
    base = Path(tempfile.mkdtemp(prefix="exocorp-pg-"))
    handle = RestartablePostgres(bindir, run_as, base, startup_timeout)
    try:
        run_as.chown(base)
        run_as.check_reachable(base)
        _initdb(bindir, run_as, base / "data")
        handle.start()
        try:
            created = run_as.run([str(bindir / "createdb"), "-h", "127.0.0.1", "-p",
                                  str(handle.port), "-U", SUPERUSER, _identifier(database)])
            if created.returncode != 0:
                raise PostgresUnavailableError(
                    f"could not create database {database!r}: {created.stderr.strip()}")
            assert handle._process is not None
            yield PostgresServer(host="127.0.0.1", port=handle.port, user=SUPERUSER,
                                 password=None, database=database, pid=handle._process.pid), handle
        finally:
            handle.stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)


def postgres_from_env(database: str = "exocorp") -> AbstractContextManager[PostgresServer]:
    """The server named by ``$EXOCORP_TEST_POSTGRES_URL``, else a throwaway one."""
    external = os.environ.get(ENV_URL)
    if external:
        return nullcontext(PostgresServer.from_url(external))
    return running_postgres(database)


def main() -> None:
    with running_postgres() as server:
        print(f"PostgreSQL {POSTGRES_VERSION} running (pid {server.pid}): {server.url}")
        print("Ctrl-C stops it and deletes its data.", flush=True)
        with suppress(KeyboardInterrupt):
            signal.pause()


if __name__ == "__main__":
    main()
