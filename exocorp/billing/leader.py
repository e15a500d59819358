"""Leader election on a Kubernetes Lease (``coordination.k8s.io/v1``), as client-go does it.

Every replica runs a :class:`LeaderElector` on the same Lease. Each ``retry_period`` a replica
reads the Lease and

- creates it (holding it) when it does not exist;
- takes it over when it is free (no holder) or *expired*: its record has not changed for
  ``leaseDurationSeconds`` as measured by this replica's own monotonic clock since it first saw
  that record (so clocks of different machines are never compared);
- renews it when it holds it.

Every write is a create or an update carrying the ``resourceVersion`` that was read, so of two
replicas writing at once exactly one succeeds (the other gets 409 and stays a follower). A
leader that cannot renew for ``renew_deadline`` steps down (``is_leader`` turns False by itself
even if the renew call hangs), and one that finds another holder in the Lease steps down at once.
On a clean stop the leader releases the Lease so a follower takes over without waiting.

Billing stays correct without mutual exclusion (see :mod:`exocorp.billing.metering`); the lease
only keeps the replicas from doing the same work twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from exocorp.billing import metrics
from exocorp.billing.settings import BillingSettings
from exocorp.k8s import ApiError, Kube, Obj
from exocorp.k8s import resources as r

__all__ = ["LeaderElector", "LeaseRecord", "format_micro_time"]

log = logging.getLogger(__name__)


def format_micro_time(moment: datetime) -> str:
    """A Kubernetes ``MicroTime``: RFC 3339 with microseconds, in UTC."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class LeaseRecord:
    """The parts of a Lease's spec that leader election reads."""

    holder: str | None
    duration_seconds: float | None
    acquire_time: str | None
    renew_time: str | None
    transitions: int

    @classmethod
    def of(cls, lease: Obj) -> LeaseRecord:
        spec: dict[str, Any] = lease.get("spec") or {}
        duration = spec.get("leaseDurationSeconds")
        return cls(
            holder=spec.get("holderIdentity") or None,
            duration_seconds=float(duration) if isinstance(duration, int) else None,
            acquire_time=spec.get("acquireTime"),
            renew_time=spec.get("renewTime"),
            transitions=int(spec.get("leaseTransitions") or 0),
        )


class LeaderElector:
    """Campaigns for one Lease for as long as :meth:`run` runs."""

    def __init__(
        self,
        kube: Kube,
        settings: BillingSettings,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.kube = kube
        self.settings = settings
        self.identity = settings.identity
        self._monotonic = monotonic
        self._wall = wall
        self._leader = False
        self._last_renew = -math.inf
        self._observed: LeaseRecord | None = None
        self._observed_at = -math.inf
        self._changed = asyncio.Condition()

    # -- state ------------------------------------------------------------------------------------

    @property
    def is_leader(self) -> bool:
        """True while this replica holds the lease and renewed it within the renew deadline."""
        return self._leader and (
            self._monotonic() - self._last_renew < self.settings.renew_deadline_seconds
        )

    async def wait_until_leader(self) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self.is_leader)

    async def _set_leader(self, leader: bool) -> None:
        if leader != self._leader:
            log.info("%s %s the metering lease %s/%s", self.identity,
                     "acquired" if leader else "lost", self.settings.namespace,
                     self.settings.lease_name)
        self._leader = leader
        metrics.IS_LEADER.set(1 if leader else 0)
        async with self._changed:
            self._changed.notify_all()

    # -- one attempt ------------------------------------------------------------------------------

    def _spec(self, acquire_time: str, transitions: int) -> dict[str, Any]:
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": max(1, math.ceil(self.settings.lease_duration_seconds)),
            "acquireTime": acquire_time,
            "renewTime": format_micro_time(self._wall()),
            "leaseTransitions": transitions,
        }

    async def try_acquire_or_renew(self) -> bool:
        """One attempt; True if this replica holds the lease afterwards."""
        ns, name = self.settings.namespace, self.settings.lease_name
        lease = await self.kube.get_or_none(r.LEASES, name, ns)
        now = self._monotonic()
        if lease is None:
            body = {
                "apiVersion": r.LEASES.api_version,
                "kind": r.LEASES.kind,
                "metadata": {"name": name, "namespace": ns},
                "spec": self._spec(format_micro_time(self._wall()), 0),
            }
            try:
                created = await self.kube.create(r.LEASES, body, ns)
            except ApiError as err:
                if err.conflict:
                    return False  # another replica created it first
                raise
            self._observe(LeaseRecord.of(created), now)
            return True
        record = LeaseRecord.of(lease)
        if record != self._observed:
            self._observe(record, now)
        ours = record.holder == self.identity
        if record.holder and not ours:
            duration = record.duration_seconds or self.settings.lease_duration_seconds
            if now < self._observed_at + duration:
                return False  # held by another replica, and not expired
        acquired = record.acquire_time if ours and record.acquire_time else None
        spec = self._spec(acquired or format_micro_time(self._wall()),
                          record.transitions if ours else record.transitions + 1)
        body = {**lease, "spec": spec}
        try:
            replaced = await self.kube.replace(r.LEASES, name, body, ns)
        except ApiError as err:
            if err.conflict:
                return False  # written by someone else since we read it
            raise
        self._observe(LeaseRecord.of(replaced), now)
        if not ours:
            log.info("%s took over the metering lease from %s", self.identity,
                     record.holder or "nobody")
        return True

    def _observe(self, record: LeaseRecord, at: float) -> None:
        self._observed = record
        self._observed_at = at

    async def release(self) -> None:
        """Give the lease up if this replica holds it (a clean stop); errors are logged."""
        was_leader = self._leader
        await self._set_leader(False)
        if not was_leader:
            return
        ns, name = self.settings.namespace, self.settings.lease_name
        try:
            lease = await self.kube.get_or_none(r.LEASES, name, ns)
            if lease is None or LeaseRecord.of(lease).holder != self.identity:
                return
            spec = dict(lease.get("spec") or {})
            spec.pop("holderIdentity", None)
            spec["leaseDurationSeconds"] = 1
            spec["renewTime"] = format_micro_time(self._wall())
            await self.kube.replace(r.LEASES, name, {**lease, "spec": spec}, ns)
        except (TimeoutError, ApiError, OSError) as err:
            log.warning("could not release the metering lease: %s", err)

    # -- campaign ---------------------------------------------------------------------------------

    async def _attempt(self) -> bool:
        try:
            return await asyncio.wait_for(
                self.try_acquire_or_renew(), timeout=self.settings.renew_deadline_seconds
            )
        except asyncio.CancelledError:
            raise
        except Exception as err:
            log.warning("metering lease %s/%s: %s", self.settings.namespace,
                        self.settings.lease_name, err)
            return False

    async def step(self) -> None:
        """One round of the campaign: attempt, then update leadership."""
        held = await self._attempt()
        now = self._monotonic()
        if held:
            self._last_renew = now
            await self._set_leader(True)
            return
        if not self._leader:
            return
        taken = self._observed is not None and self._observed.holder not in (None, self.identity)
        if taken or now - self._last_renew >= self.settings.renew_deadline_seconds:
            await self._set_leader(False)

    async def run(self, *, release: bool = True) -> None:
        """Campaign until cancelled; then release the lease if held (``release=False`` leaves it
        to expire, as a crashed replica would)."""
        try:
            while True:
                await self.step()
                period = self.settings.retry_period_seconds
                # Jitter spreads followers' attempts (client-go: JitterFactor 1.2 on acquire).
                delay = period if self._leader else period * (1 + 0.2 * random.random())  # noqa: S311
                await asyncio.sleep(delay)
        finally:
            if release:
                with contextlib.suppress(Exception):
                    await self.release()
            else:
                self._leader = False
                metrics.IS_LEADER.set(0)
