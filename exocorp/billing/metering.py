"""Metering: turn the operator's running-time counters into usage events, exactly once.

The operator keeps, in each Exocorp's status, ``runningSeconds`` (per component: ready replicas
x seconds, monotonic, never reset) and ``runningSecondsAccruedAt`` (the instant they are counted
up to). For each (exocorp, component) the store keeps a **mark**: the counter value already
billed and the ``accruedAt`` it was observed at (:mod:`exocorp.store.metering`).

A **window** is the counter range ``(mark.counter, counter]`` observed in one status snapshot.
It is billed in one transaction that

1. reads the exocorp's marks *for update*,
2. moves the mark from its old value to the new one (compare-and-set on the old value), and
3. records a usage event keyed (exocorp, component, ``window_start = mark.accrued_at``) and
   debits the owner's account (:func:`exocorp.store.billing.record_usage`).

Why this bills every counted second exactly once, whatever crashes, restarts or leader changes
happen (the argument in full is in docs/billing.md):

- The event and the mark commit together or not at all. A crash before the commit leaves the
  old mark, so the range is billed again later under the *same* key (``window_start`` is a
  function of the old mark only); a crash after it leaves the new mark, so the range is never
  offered again.
- Two meterers racing on one range: the mark's compare-and-set (and, on PostgreSQL, the row
  lock) lets exactly one commit; the other's transaction changes nothing and rolls back. A
  usage event whose key already exists also rolls the whole transaction back.
- A stale snapshot (a counter at or below the mark) bills nothing; it never moves a mark back.
- Windows of one (exocorp, component) have strictly increasing ``window_start``: a counter only
  grows when ``accruedAt`` advances by whole seconds, so the next window starts strictly later
  and keys never collide.

The sum of the seconds of an (exocorp, component)'s events therefore equals its mark, which
follows the operator's counter; ``runningSecondsTotal`` at the end equals the seconds billed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from exocorp.billing import metrics
from exocorp.model.base import parse_rfc3339
from exocorp.store import Conflict, Database, NotFound, billing, registry
from exocorp.store import metering as marks_repo
from exocorp.store.clock import Clock, utcnow
from exocorp.store.metering import MarkValue

__all__ = [
    "Counters",
    "InvalidStatus",
    "LostRace",
    "Meter",
    "MeteredWindow",
    "PassReport",
    "Window",
    "parse_timestamp",
    "plan_windows",
    "read_counters",
]

log = logging.getLogger(__name__)

_MAX_WINDOW_SECONDS = 2**31 - 1  # usage_events.seconds is a 32-bit integer


class InvalidStatus(ValueError):  # noqa: N818 (named for what it reports)
    """An Exocorp's metadata or status cannot be metered (the message says why)."""


class LostRace(Exception):  # noqa: N818
    """Another meterer billed (part of) this range first; this transaction must roll back."""


def parse_timestamp(value: Any) -> datetime | None:
    """An RFC 3339 string as a timezone-aware UTC datetime (None stays None)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidStatus(f"expected a timestamp, got {type(value).__name__}")
    try:
        return parse_rfc3339(value)
    except ValueError as error:
        raise InvalidStatus(str(error)) from None


@dataclass(frozen=True)
class Counters:
    """What metering reads from one Exocorp object."""

    exocorp_id: str
    """metadata.name (the platform record's id)."""
    incarnation: str
    """metadata.uid."""
    created_at: datetime
    """metadata.creationTimestamp: the start of each component's first window."""
    accrued_at: datetime | None
    """status.runningSecondsAccruedAt."""
    running_seconds: Mapping[str, int]
    """status.runningSeconds."""


def read_counters(body: Mapping[str, Any]) -> Counters:
    """Counters of an Exocorp object as the API server returns it. ``InvalidStatus`` if the
    object lacks what metering needs or its counters are malformed."""
    meta = body.get("metadata") or {}
    status = body.get("status") or {}
    name, uid = meta.get("name"), meta.get("uid")
    if not isinstance(name, str) or not name or not isinstance(uid, str) or not uid:
        raise InvalidStatus("the object has no metadata.name or metadata.uid")
    created = parse_timestamp(meta.get("creationTimestamp"))
    if created is None:
        raise InvalidStatus(f"{name}: no metadata.creationTimestamp")
    running = status.get("runningSeconds") or {}
    if not isinstance(running, dict) or not all(
        isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v >= 0
        for k, v in running.items()
    ):
        raise InvalidStatus(f"{name}: status.runningSeconds is not a map of counters")
    return Counters(
        exocorp_id=name,
        incarnation=uid,
        created_at=created,
        accrued_at=parse_timestamp(status.get("runningSecondsAccruedAt")),
        running_seconds=dict(running),
    )


@dataclass(frozen=True)
class Window:
    """One range of one component's counter to bill."""

    component: str
    expected: MarkValue | None
    """The mark the range starts from (None: the component has no mark yet)."""
    new: MarkValue
    """The mark after billing the range."""
    counter_from: int
    counter_to: int
    start: datetime
    """The idempotency key's time part: the accrual instant the range starts from."""
    end: datetime

    @property
    def seconds(self) -> int:
        return self.counter_to - self.counter_from


def plan_windows(counters: Counters, marks: Mapping[str, MarkValue]) -> list[Window]:
    """The windows a snapshot has to bill beyond ``marks`` (component -> mark), in component
    order. Pure: the same snapshot and marks always give the same windows and keys.

    Components whose counter is at or below their mark bill nothing (no running, or a stale
    snapshot). A newer incarnation of the object (re-created: counters restart at zero) starts
    over from zero; a snapshot of an older one bills nothing.
    """
    windows = []
    for component, value in sorted(counters.running_seconds.items()):
        mark = marks.get(component)
        if mark is None or mark.incarnation != counters.incarnation:
            if mark is not None and counters.created_at <= mark.incarnation_created_at:
                continue  # a snapshot of an older (or indistinguishable) incarnation
            base, start = 0, counters.created_at
        else:
            base, start = mark.counter, mark.accrued_at
        if value <= base:
            continue
        end = counters.accrued_at
        if end is None or end <= start:
            raise InvalidStatus(
                f"{counters.exocorp_id}: runningSeconds[{component}] grew to {value} but "
                f"runningSecondsAccruedAt ({end}) did not advance past {start}"
            )
        if value - base > _MAX_WINDOW_SECONDS:
            raise InvalidStatus(
                f"{counters.exocorp_id}: a window of {value - base} replica-seconds of "
                f"{component} is larger than one usage event can hold"
            )
        windows.append(
            Window(
                component=component,
                expected=mark,
                new=MarkValue(
                    incarnation=counters.incarnation,
                    incarnation_created_at=counters.created_at,
                    counter=value,
                    accrued_at=end,
                ),
                counter_from=base,
                counter_to=value,
                start=start,
                end=end,
            )
        )
    return windows


@dataclass(frozen=True)
class MeteredWindow:
    """A window billed (committed only if its transaction committed)."""

    exocorp_id: str
    component: str
    counter_from: int
    counter_to: int
    window_start: datetime
    window_end: datetime
    seconds: int
    rate: int
    amount: int
    account_id: str
    event_id: int


@dataclass
class PassReport:
    """What one metering pass did."""

    seen: int = 0
    """Exocorp objects read."""
    windows: list[MeteredWindow] = field(default_factory=list)
    """Windows committed."""
    errors: dict[str, list[str]] = field(default_factory=dict)
    """Reason -> exocorps skipped for it (retried on the next pass)."""
    interrupted: bool = False
    """The pass stopped early because this replica lost the lease."""

    def skipped(self, reason: str, exocorp: str) -> None:
        self.errors.setdefault(reason, []).append(exocorp)
        metrics.METERING_ERRORS.labels(reason=reason).inc()


class Meter:
    """Bills windows. Holds no state of its own between passes: every decision is taken from
    the marks in the database, so a new Meter (a restart, another replica) continues exactly
    where the last committed transaction left off."""

    def __init__(self, database: Database, *, clock: Clock = utcnow) -> None:
        self.database = database
        self.clock = clock
        self._unregistered: set[str] = set()

    async def meter_exocorp(self, session: AsyncSession, counters: Counters) -> list[MeteredWindow]:
        """Bill everything ``counters`` shows beyond the marks, inside the caller's transaction
        (which must be committed for any of it to count). Raises ``LostRace`` (roll back),
        ``NotFound`` (no platform record for the object), ``Conflict`` (no price book),
        ``InvalidStatus``."""
        await registry.get_exocorp(session, counters.exocorp_id)
        marks = await marks_repo.lock_marks(session, counters.exocorp_id)
        now = self.clock()
        metered = []
        for window in plan_windows(counters, marks):
            moved = await marks_repo.advance_mark(
                session,
                exocorp_id=counters.exocorp_id,
                component=window.component,
                expected=window.expected,
                new=window.new,
                now=now,
            )
            if not moved:
                raise LostRace(f"{counters.exocorp_id}/{window.component}: mark moved")
            usage = await billing.record_usage(
                session,
                exocorp_id=counters.exocorp_id,
                component=window.component,
                window_start=window.start,
                seconds=window.seconds,
                now=now,
            )
            if not usage.created:
                raise LostRace(
                    f"{counters.exocorp_id}/{window.component}: window {window.start} exists"
                )
            event = usage.event
            metered.append(
                MeteredWindow(
                    exocorp_id=counters.exocorp_id,
                    component=window.component,
                    counter_from=window.counter_from,
                    counter_to=window.counter_to,
                    window_start=window.start,
                    window_end=window.end,
                    seconds=window.seconds,
                    rate=event.rate,
                    amount=event.amount,
                    account_id=event.account_id,
                    event_id=event.id,
                )
            )
        return metered

    async def meter_one(self, counters: Counters, report: PassReport) -> list[MeteredWindow]:
        """Bill one exocorp in a transaction of its own; failures are reported, not raised."""
        exocorp = counters.exocorp_id
        try:
            async with self.database.sessionmaker.begin() as session:
                windows = await self.meter_exocorp(session, counters)
        except LostRace as err:
            log.info("metering %s: another meterer got there first (%s)", exocorp, err)
            report.skipped("lost_race", exocorp)
            return []
        except NotFound:
            if exocorp not in self._unregistered:
                self._unregistered.add(exocorp)
                log.warning("metering %s: no platform record for this exocorp; not billed",
                            exocorp)
            report.skipped("no_record", exocorp)
            return []
        except Conflict as err:
            log.warning("metering %s: %s; billed once a price book applies", exocorp, err)
            report.skipped("no_price_book", exocorp)
            return []
        except InvalidStatus as err:
            log.warning("metering %s: %s", exocorp, err)
            report.skipped("invalid_status", exocorp)
            return []
        except Exception:
            log.exception("metering %s failed; retried on the next pass", exocorp)
            report.skipped("error", exocorp)
            return []
        self._unregistered.discard(exocorp)
        for window in windows:
            metrics.USAGE_EVENTS.inc()
            metrics.METERED_SECONDS.inc(window.seconds)
        report.windows.extend(windows)
        return windows

    async def run_pass(
        self,
        bodies: Iterable[Mapping[str, Any]],
        *,
        still_leader: Callable[[], bool] = lambda: True,
    ) -> PassReport:
        """Meter every object of ``bodies`` that has something new. Only exocorps whose counters
        moved past their marks open a write transaction."""
        report = PassReport()
        async with self.database.sessionmaker() as session:
            known = await marks_repo.list_marks(session)
        by_exocorp: dict[str, dict[str, MarkValue]] = {}
        for (exocorp, component), mark in known.items():
            by_exocorp.setdefault(exocorp, {})[component] = mark
        for body in bodies:
            report.seen += 1
            try:
                counters = read_counters(body)
                pending = plan_windows(counters, by_exocorp.get(counters.exocorp_id, {}))
            except InvalidStatus as err:
                name = str((body.get("metadata") or {}).get("name", "?"))
                log.warning("metering %s: %s", name, err)
                report.skipped("invalid_status", name)
                continue
            if not pending:
                continue
            if not still_leader():
                report.interrupted = True
                break
            await self.meter_one(counters, report)
        return report
