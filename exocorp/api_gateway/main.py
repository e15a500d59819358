"""`exocorp gateway`: connect to the cluster, open and migrate the database, make sure the first
platform owner exists, start the watch cache and serve until SIGTERM or SIGINT.

With ``--processes N`` (``supervisor``) each of N such processes serves, in the role
``process_role`` gives it, after ``prepare`` has migrated the database once.

Shutdown is clean: the listener closes, in-flight requests get ``shutdown_timeout`` seconds, then
the watches, the database pool and the Kubernetes client are closed, in that order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from aiohttp.log import access_logger

from exocorp.api_gateway.app import create_app
from exocorp.api_gateway.metrics import GatewayMetrics, metrics_app
from exocorp.api_gateway.settings import GatewaySettings
from exocorp.api_gateway.watch_cache import WatchCache
from exocorp.api_gateway.workers import BackgroundWork
from exocorp.k8s import Kube
from exocorp.k8s.frozen_heap import keep_frozen
from exocorp.security import PasswordHasher
from exocorp.store import Database, accounts, open_database, upgrade_to_head
from exocorp.store.accounts import NewUser
from exocorp.store.errors import Conflict

__all__ = ["ProcessRole", "bootstrap_configured_owner", "bootstrap_platform_owner",
           "owner_from_environment", "prepare", "process_role", "run", "serve"]

log = logging.getLogger(__name__)

OWNER_EMAIL_ENV = "EXOCORP_PLATFORM_OWNER_EMAIL"
OWNER_PASSWORD_FILE_ENV = "EXOCORP_PLATFORM_OWNER_PASSWORD_FILE"  # noqa: S105 (a name)


class StartupError(RuntimeError):
    """The gateway cannot start; the message says what to fix."""


def owner_from_environment() -> tuple[str, str] | None:
    """(e-mail, password) of the first platform owner from the environment, or None."""
    email = os.environ.get(OWNER_EMAIL_ENV, "").strip()
    if not email:
        return None
    path = os.environ.get(OWNER_PASSWORD_FILE_ENV, "").strip()
    if not path:
        raise StartupError(f"{OWNER_EMAIL_ENV} is set but {OWNER_PASSWORD_FILE_ENV} is not: "
                           "point it at a file holding the owner's password")
    try:
        password = Path(path).read_text().strip()
    except OSError as error:
        raise StartupError(f"cannot read {OWNER_PASSWORD_FILE_ENV} ({path}): "
                           f"{error.strerror}") from None
    if len(password) < 10:
        raise StartupError(f"the platform owner's password in {path} is shorter than 10 "
                           "characters")
    return email, password


async def bootstrap_platform_owner(database: Database, email: str, password: str, *,
                                   signup_credit: int = 0, hasher: PasswordHasher | None = None,
                                   only_if_none: bool = True,
                                   promote_existing: bool = False) -> NewUser | None:
    """Make ``email`` a platform owner with ``password`` (returned, with its recovery kit). An
    existing account with that address is a ``Conflict`` unless ``promote_existing`` (see
    :func:`accounts.bootstrap_platform_owner`). With ``only_if_none`` nothing happens (None)
    when some platform owner exists already."""
    async with database.sessionmaker.begin() as s:
        if only_if_none and await accounts.platform_owner_exists(s):
            return None
        return await accounts.bootstrap_platform_owner(
            s, email=email, password=password, signup_credit=signup_credit,
            promote_existing=promote_existing, hasher=hasher)


async def bootstrap_configured_owner(database: Database, email: str, password: str, *,
                                     hasher: PasswordHasher | None = None) -> NewUser | None:
    """The first platform owner named by the environment, at startup. An account someone else
    signed up with that address is never promoted here: the gateway refuses to start."""
    try:
        return await bootstrap_platform_owner(database, email, password, hasher=hasher)
    except Conflict:
        raise StartupError(
            f"{OWNER_EMAIL_ENV} names {email}, which is already registered by an account that "
            "is not a platform owner: if that account is yours, run `exocorp platform-owner "
            "--promote-existing` (it resets the password and signs every session out); "
            "otherwise configure another address") from None


@dataclass(frozen=True)
class ProcessRole:
    """What one gateway process does, by its place among the pod's processes."""

    prepares: bool
    """Migrates the database and creates the configured first platform owner (with several
    processes the supervisor runs that once, before any worker: ``prepare``)."""
    work: BackgroundWork
    """The background workers it runs: process 0 of several runs them all, the others none."""
    metrics_port: int
    """Its own /metrics port: every process has its own counters, each is scraped apart."""
    shares_port: bool
    """Listens on the public port beside the pod's other processes (SO_REUSEPORT), and only once
    its watch cache is ready."""


def process_role(settings: GatewaySettings, index: int | None) -> ProcessRole:
    """The role of process ``index`` of ``settings.processes`` (None: the only process, which
    does everything, as a gateway always did)."""
    if index is None:
        return ProcessRole(prepares=True, work=BackgroundWork.ALL,
                           metrics_port=settings.metrics_port, shares_port=False)
    if not 0 <= index < settings.processes:
        raise StartupError(f"process index {index} is not among the {settings.processes} "
                           "processes")
    return ProcessRole(prepares=False,
                       work=BackgroundWork.ALL if index == 0 else BackgroundWork.NONE,
                       metrics_port=settings.metrics_ports[index], shares_port=True)


async def _prepare_database(database: Database, owner: tuple[str, str] | None) -> None:
    log.info("migrating the database to the newest schema")
    await upgrade_to_head(database.engine)
    if owner is not None:
        created = await bootstrap_configured_owner(database, *owner)
        if created is not None:
            log.info("created the first platform owner %s", created.user.email)


async def prepare(settings: GatewaySettings) -> None:
    """Migrate the database and create the first platform owner, alone (``exocorp gateway
    --processes N`` runs it once, before its workers)."""
    owner = owner_from_environment()
    database = open_database(settings.database_url)
    try:
        await _prepare_database(database, owner)
    finally:
        await database.dispose()


async def _until_ready_or_stopped(cache: WatchCache, stop: asyncio.Event) -> bool:
    """True once ``cache`` is ready, False if ``stop`` came first."""
    ready = asyncio.create_task(cache.wait_ready())
    stopped = asyncio.create_task(stop.wait())
    await asyncio.wait((ready, stopped), return_when=asyncio.FIRST_COMPLETED)
    for task in (ready, stopped):
        task.cancel()
    return cache.ready and not stop.is_set()


async def serve(settings: GatewaySettings, *, kubeconfig: str | None = None,
                stop: asyncio.Event | None = None,
                on_ready: Callable[[web.AppRunner], None] | None = None,
                process: int | None = None) -> None:
    """Run the gateway until ``stop`` is set (or SIGTERM/SIGINT arrive): the only process
    (``process`` None), or process ``process`` of ``settings.processes``."""
    role = process_role(settings, process)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread
            loop.add_signal_handler(signum, stop.set)
    owner = owner_from_environment() if role.prepares else None
    kube = await Kube.connect(kubeconfig)
    database = open_database(settings.database_url)
    metrics = GatewayMetrics()
    cache = WatchCache(kube, platform_namespace=settings.platform_namespace,
                       timeout_seconds=settings.watch_timeout_seconds)
    runner: web.AppRunner | None = None
    metrics_runner: web.AppRunner | None = None
    freezer: asyncio.Task[None] | None = None
    try:
        if role.prepares:
            await _prepare_database(database, owner)
        await cache.start()
        # Full garbage collections must not walk the cache (k8s.frozen_heap): each process.
        freezer = asyncio.create_task(keep_frozen(cache.wait_ready), name="frozen-heap")
        app = create_app(settings, kube=kube, database=database, cache=cache, metrics=metrics,
                         workers=role.work)
        runner = web.AppRunner(app, handle_signals=False,
                               shutdown_timeout=settings.shutdown_timeout,
                               access_log=access_logger if settings.access_log else None)
        await runner.setup()
        metrics_runner = web.AppRunner(metrics_app(metrics), handle_signals=False,
                                       access_log=None)
        await metrics_runner.setup()
        await web.TCPSite(metrics_runner, settings.host, role.metrics_port).start()
        # The only process listens at once and answers /readyz 503 until its cache is ready.
        # Processes sharing the port with SO_REUSEPORT cannot: the kernel hands a connection
        # to any of them, so one still syncing would answer from an empty cache while its peers
        # are ready. Each binds once its cache is ready, so whichever process answers /healthz
        # or /readyz speaks for a pod that serves (and none listens until one is ready: the
        # chart's startupProbe waits for that).
        if role.shares_port and not await _until_ready_or_stopped(cache, stop):
            return
        await web.TCPSite(runner, settings.host, settings.port,
                          reuse_port=role.shares_port or None).start()
        log.info("gateway %slistening on http://%s:%d (API docs at /api/docs), /metrics on "
                 "port %d", "" if process is None else f"process {process} ", settings.host,
                 settings.port, role.metrics_port)
        if on_ready is not None:
            on_ready(runner)
        await stop.wait()
        log.info("shutting down")
    finally:
        if freezer is not None:
            freezer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await freezer
        if runner is not None:
            await runner.cleanup()
        if metrics_runner is not None:
            await metrics_runner.cleanup()
        await cache.stop()
        await database.dispose()
        await kube.close()


def run(settings: GatewaySettings, *, kubeconfig: str | None = None,
        process: int | None = None) -> None:
    """The ``exocorp gateway`` process (or one of its ``--processes``)."""
    if kubeconfig:
        os.environ["KUBECONFIG"] = kubeconfig
    asyncio.run(serve(settings, kubeconfig=kubeconfig, process=process))
