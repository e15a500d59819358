"""The metering service: leader election, then, in the leader only, a metering pass followed
by an enforcement pass every ``interval_seconds``.

    service = MeteringService(kube, database, BillingSettings.from_env())
    await service.start()     # background tasks; or: await service.run() (until cancelled)
    ...
    await service.stop()      # releases the lease so another replica takes over at once
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from exocorp.billing import admin, metrics
from exocorp.billing.enforcement import EnforcementReport, Enforcer
from exocorp.billing.leader import LeaderElector
from exocorp.billing.metering import Meter, PassReport
from exocorp.billing.settings import BillingSettings
from exocorp.k8s import Kube, Obj
from exocorp.k8s import resources as r
from exocorp.store import Conflict, Database

__all__ = ["ExocorpSource", "MeteringService", "RunReport", "ensure_default_price_book"]

log = logging.getLogger(__name__)

ExocorpSource = Callable[[], Awaitable[Sequence[Obj]]]
"""Where a pass reads the Exocorp objects from (default: a list from the API server; the
gateway may pass its watch cache instead)."""


@dataclass(frozen=True)
class RunReport:
    metering: PassReport
    enforcement: EnforcementReport | None
    """None when the pass was cut short because the lease was lost."""


async def ensure_default_price_book(database: Database, settings: BillingSettings) -> None:
    """Create the configured default price book if no default exists (start-up)."""
    for _attempt in range(3):
        try:
            async with database.sessionmaker.begin() as session:
                book = await admin.ensure_default_price_book(session, settings.default_price_book)
        except Conflict:
            continue  # another replica created it at the same time: look again
        if book is not None:
            log.info("default price book: %s (%s)", book.name, book.id)
        else:
            log.warning("no default price book: provisioning is refused for accounts without "
                        "an assigned one (set EXOCORP_DEFAULT_PRICE_BOOK)")
        return


class MeteringService:
    """Runs metering and enforcement in the replica that holds the metering lease."""

    def __init__(self, kube: Kube, database: Database, settings: BillingSettings, *,
                 exocorps: ExocorpSource | None = None, meter: Meter | None = None,
                 enforcer: Enforcer | None = None,
                 elector: LeaderElector | None = None) -> None:
        self.kube = kube
        self.database = database
        self.settings = settings
        self.elector = elector or LeaderElector(kube, settings)
        self.meter = meter or Meter(database)
        self.enforcer = enforcer or Enforcer(kube, database, settings.namespace,
                                             stop_after=settings.suspension_grace)
        self._source = exocorps or self._list_exocorps
        self._task: asyncio.Task[None] | None = None
        self.passes = 0

    @property
    def is_leader(self) -> bool:
        return self.elector.is_leader

    async def _list_exocorps(self) -> Sequence[Obj]:
        items: list[Obj] = (await self.kube.list_all(r.EXOCORPS))["items"]
        return items

    async def run_once(self) -> RunReport:
        """One metering pass and, unless leadership was lost meanwhile, one enforcement pass."""
        bodies: Sequence[Any] = await self._source()
        metering = await self.meter.run_pass(bodies, still_leader=lambda: self.is_leader)
        enforcement = None
        if not metering.interrupted and self.is_leader:
            enforcement = await self.enforcer.run_pass(bodies)
        metrics.LAST_RUN.set(time.time())
        self.passes += 1
        return RunReport(metering=metering, enforcement=enforcement)

    async def _loop(self) -> None:
        while True:
            await self.elector.wait_until_leader()
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("metering pass failed; retrying after the interval")
            await asyncio.sleep(self.settings.interval_seconds)

    async def run(self, *, release: bool = True) -> None:
        """Campaign and meter until cancelled."""
        elector = asyncio.create_task(self.elector.run(release=release), name="metering-lease")
        try:
            await self._loop()
        finally:
            elector.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await elector

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name="metering")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
