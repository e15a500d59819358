"""`exocorp gateway`: connect to the cluster, open and migrate the database, make sure the first
platform owner exists, start the watch cache and serve until SIGTERM or SIGINT.

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
from pathlib import Path

from aiohttp import web

from exocorp.api_gateway.app import create_app
from exocorp.api_gateway.metrics import GatewayMetrics, metrics_app
from exocorp.api_gateway.settings import GatewaySettings
from exocorp.api_gateway.watch_cache import WatchCache
from exocorp.k8s import Kube
from exocorp.security import PasswordHasher
from exocorp.store import Database, accounts, open_database, upgrade_to_head
from exocorp.store.accounts import NewUser
from exocorp.store.errors import Conflict

__all__ = ["bootstrap_configured_owner", "bootstrap_platform_owner", "owner_from_environment",
           "run", "serve"]

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


async def serve(settings: GatewaySettings, *, kubeconfig: str | None = None,
                stop: asyncio.Event | None = None,
                on_ready: Callable[[web.AppRunner], None] | None = None) -> None:
    """Run the gateway until ``stop`` is set (or SIGTERM/SIGINT arrive)."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread
            loop.add_signal_handler(signum, stop.set)
    owner = owner_from_environment()
    kube = await Kube.connect(kubeconfig)
    database = open_database(settings.database_url)
    metrics = GatewayMetrics()
    cache = WatchCache(kube, platform_namespace=settings.platform_namespace,
                       timeout_seconds=settings.watch_timeout_seconds)
    runner: web.AppRunner | None = None
    metrics_runner: web.AppRunner | None = None
    try:
        log.info("migrating the database to the newest schema")
        await upgrade_to_head(database.engine)
        if owner is not None:
            created = await bootstrap_configured_owner(database, *owner)
            if created is not None:
                log.info("created the first platform owner %s", created.user.email)
        await cache.start()
        app = create_app(settings, kube=kube, database=database, cache=cache, metrics=metrics,
                         process_workers=True)
        runner = web.AppRunner(app, handle_signals=False,
                               shutdown_timeout=settings.shutdown_timeout)
        await runner.setup()
        await web.TCPSite(runner, settings.host, settings.port).start()
        metrics_runner = web.AppRunner(metrics_app(metrics), handle_signals=False,
                                       access_log=None)
        await metrics_runner.setup()
        await web.TCPSite(metrics_runner, settings.host, settings.metrics_port).start()
        log.info("gateway listening on http://%s:%d (API docs at /api/docs), /metrics on port "
                 "%d", settings.host, settings.port, settings.metrics_port)
        if on_ready is not None:
            on_ready(runner)
        await stop.wait()
        log.info("shutting down")
    finally:
        if runner is not None:
            await runner.cleanup()
        if metrics_runner is not None:
            await metrics_runner.cleanup()
        await cache.stop()
        await database.dispose()
        await kube.close()


def run(settings: GatewaySettings, *, kubeconfig: str | None = None) -> None:
    """The ``exocorp gateway`` process."""
    if kubeconfig:
        os.environ["KUBECONFIG"] = kubeconfig
    asyncio.run(serve(settings, kubeconfig=kubeconfig))
