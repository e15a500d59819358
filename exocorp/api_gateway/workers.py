"""The gateway's background workers, all started and stopped here. Each is an aiohttp cleanup
context: it starts with the app and is cancelled (and awaited) when the app stops, before the
caller closes the database, the watch cache and the Kubernetes client.

- ``system_audit``: records the operator's automatic rollbacks in the audit trail
  (``audit.operator_actions``), a pass every two seconds once the watch cache is ready.
- ``billing``: creates the configured default price book if there is no default, then runs the
  metering and enforcement service (``exocorp.billing``: every replica campaigns for the
  Lease, the holder meters and enforces) and releases the Lease on the way out.
- ``finish_destroys``: deletes an exocorp whose destroy was accepted but whose delete never
  came (the gateway died between its spec write and its delete), every 30 seconds.
- ``purge``: forgets idempotency keys older than their retention, and throttle counters whose
  window ended a day ago, hourly.

``create_app`` installs them (:func:`install_workers`, by :class:`BackgroundWork`): an app built
by a test runs the system audit alone; the gateway process (``main.serve``) runs them all, which
need the process's settings and the cluster's Lease. Of several processes in one pod
(``--processes``) only process 0 runs them, and the others none, so N processes do not multiply
the passes. A test that wants billing appends ``billing`` to ``app.cleanup_ctx`` itself, with
settings in ``app[BILLING_SETTINGS]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Final

from aiohttp import web

from exocorp.api_gateway.audit.operator_actions import (
    INTERVAL,
    SYSTEM_AUDIT,
    SystemAudit,
    record_operator_actions,
)
from exocorp.api_gateway.keys import CACHE, CLOCK, DATABASE, KUBE, SETTINGS
from exocorp.api_gateway.operations import finish_unfinished_destroys
from exocorp.billing.service import MeteringService, ensure_default_price_book
from exocorp.billing.settings import BillingSettings
from exocorp.store import idempotency, throttle

__all__ = [
    "BILLING_SETTINGS",
    "PURGE_INTERVAL",
    "BackgroundWork",
    "Worker",
    "billing",
    "finish_destroys",
    "install_workers",
    "purge",
    "system_audit",
]

log = logging.getLogger(__name__)

Worker = Callable[[web.Application], AsyncIterator[None]]
"""An aiohttp cleanup context: what runs before its ``yield`` starts the work, the rest stops it."""

BILLING_SETTINGS = web.AppKey("exocorp.billing_settings", BillingSettings)
"""Optional: settings for :func:`billing` (default: from the environment)."""

PURGE_INTERVAL: Final = 3600.0
"""Seconds between purges."""

FINISH_DESTROYS_INTERVAL: Final = 30.0
"""Seconds between sweeps for accepted destroys left without their delete."""


def _periodic(name: str, interval: float, work: Callable[[web.Application], Awaitable[object]],
              failure: str) -> Worker:
    """A worker that runs ``work(app)`` every ``interval`` seconds. A failed pass is logged and
    the next one retries: a database hiccup must not end the loop."""
    async def loop(app: web.Application) -> None:
        while True:
            try:
                await work(app)
            except Exception:
                log.exception(failure)
            await asyncio.sleep(interval)

    async def context(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(loop(app), name=name)
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return context


async def _record_operator_actions(app: web.Application) -> None:
    if app[CACHE].ready:
        await record_operator_actions(app)


async def _finish_destroys(app: web.Application) -> None:
    if app[CACHE].ready:
        await finish_unfinished_destroys(app)


async def _purge_expired(app: web.Application) -> None:
    async with app[DATABASE].sessionmaker.begin() as s:
        purged = await idempotency.purge_idempotency_records(
            s, older_than=app[SETTINGS].idempotency_retention, now=app[CLOCK]())
        await throttle.purge(s, older_than=timedelta(days=1), now=app[CLOCK]())
    if purged:
        log.info("purged %d expired idempotency keys", purged)


system_audit = _periodic("system-audit", INTERVAL, _record_operator_actions,
                         "could not record the operator's actions in the audit trail")
finish_destroys = _periodic("finish-destroys", FINISH_DESTROYS_INTERVAL,
                            _finish_destroys, "could not finish accepted destroys")
purge = _periodic("idempotency-purge", PURGE_INTERVAL, _purge_expired,
                  "could not purge expired idempotency keys")


async def billing(app: web.Application) -> AsyncIterator[None]:
    """Needs ``app[DATABASE]`` and ``app[KUBE]``; settings from ``app[BILLING_SETTINGS]`` if set,
    else from the environment."""
    settings = app.get(BILLING_SETTINGS) or BillingSettings.from_env(
        suspension_grace=app[SETTINGS].suspension_grace)
    database = app[DATABASE]
    await ensure_default_price_book(database, settings)
    service = MeteringService(app[KUBE], database, settings)
    await service.start()
    try:
        yield
    finally:
        await service.stop()


class BackgroundWork(enum.Enum):
    """Which workers an app runs."""

    ALL = "all"
    """The gateway process (process 0 of several)."""
    SYSTEM_AUDIT = "system audit"
    """An app built by a test: no billing, purge or destroy sweep of its own."""
    NONE = "none"
    """Processes 1 to N-1 of several in a pod: process 0 runs them for the pod."""


def install_workers(app: web.Application, work: BackgroundWork) -> None:
    """Start the workers ``work`` names with the app."""
    app[SYSTEM_AUDIT] = SystemAudit()
    if work is not BackgroundWork.NONE:
        app.cleanup_ctx.append(system_audit)
    if work is BackgroundWork.ALL:
        app.cleanup_ctx.extend((billing, purge, finish_destroys))
