"""Metering windows as a pure function of a status snapshot and the marks (no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from exocorp.billing.metering import (
    InvalidStatus,
    parse_timestamp,
    plan_windows,
    read_counters,
)
from exocorp.store.metering import MarkValue

pytestmark = pytest.mark.unit

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def body(counters: dict[str, int], accrued: datetime | None, *, uid: str = "uid-1",
         created: datetime = T0, name: str = "acme") -> dict[str, Any]:
    status: dict[str, Any] = {"runningSeconds": counters}
    if accrued is not None:
        status["runningSecondsAccruedAt"] = _stamp(accrued)
    return {"metadata": {"name": name, "uid": uid, "creationTimestamp": _stamp(created)},
            "status": status}


def mark(counter: int, accrued: datetime, *, uid: str = "uid-1",
         created: datetime = T0) -> MarkValue:
    return MarkValue(incarnation=uid, incarnation_created_at=created, counter=counter,
                     accrued_at=accrued)


def test_first_window_starts_at_creation_and_covers_the_whole_counter() -> None:
    later = T0 + timedelta(seconds=90)
    windows = plan_windows(read_counters(body({"portal": 90, "agents": 180}, later)), {})
    assert [(w.component, w.counter_from, w.counter_to, w.start, w.end, w.seconds)
            for w in windows] == [
        ("agents", 0, 180, T0, later, 180),
        ("portal", 0, 90, T0, later, 90),
    ]
    assert all(w.expected is None for w in windows)
    assert windows[0].new == mark(180, later)


def test_next_window_starts_where_the_mark_was_observed() -> None:
    first, second = T0 + timedelta(seconds=30), T0 + timedelta(seconds=75)
    marks = {"portal": mark(30, first)}
    (window,) = plan_windows(read_counters(body({"portal": 75}, second)), marks)
    assert (window.counter_from, window.counter_to, window.start, window.end) == (
        30, 75, first, second)
    assert window.expected == marks["portal"]


def test_a_window_key_depends_only_on_the_mark() -> None:
    # A retry after a crash sees a larger counter, but keys the window the same way.
    marks = {"portal": mark(30, T0 + timedelta(seconds=30))}
    early = plan_windows(read_counters(body({"portal": 40}, T0 + timedelta(seconds=40))), marks)
    late = plan_windows(read_counters(body({"portal": 95}, T0 + timedelta(seconds=95))), marks)
    assert early[0].start == late[0].start == T0 + timedelta(seconds=30)


@pytest.mark.parametrize("counter", [0, 10, 30])
def test_nothing_new_or_a_stale_snapshot_bills_nothing(counter: int) -> None:
    marks = {"portal": mark(30, T0 + timedelta(seconds=30))}
    snapshot = read_counters(body({"portal": counter}, T0 + timedelta(seconds=counter)))
    assert plan_windows(snapshot, marks) == []


def test_a_recreated_object_starts_over_and_an_older_one_bills_nothing() -> None:
    recreated = T0 + timedelta(hours=1)
    marks = {"portal": mark(500, T0 + timedelta(seconds=500))}
    new = read_counters(body({"portal": 20}, recreated + timedelta(seconds=20), uid="uid-2",
                             created=recreated))
    (window,) = plan_windows(new, marks)
    assert (window.counter_from, window.counter_to, window.start) == (0, 20, recreated)
    assert window.new.incarnation == "uid-2"
    # Once the mark follows the new object, a stale snapshot of the old one changes nothing.
    old = read_counters(body({"portal": 900}, T0 + timedelta(seconds=900)))
    assert plan_windows(old, {"portal": window.new}) == []


def test_a_counter_that_grows_without_its_accrual_instant_is_refused() -> None:
    marks = {"portal": mark(30, T0 + timedelta(seconds=30))}
    with pytest.raises(InvalidStatus, match="did not advance"):
        plan_windows(read_counters(body({"portal": 31}, T0 + timedelta(seconds=30))), marks)
    with pytest.raises(InvalidStatus, match="did not advance"):
        plan_windows(read_counters(body({"portal": 31}, None)), {})


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: b["metadata"].pop("uid"), "metadata.uid"),
        (lambda b: b["metadata"].pop("creationTimestamp"), "creationTimestamp"),
        (lambda b: b["status"].update(runningSeconds={"portal": -1}), "map of counters"),
        (lambda b: b["status"].update(runningSeconds={"portal": "9"}), "map of counters"),
        (lambda b: b["status"].update(runningSeconds={"portal": True}), "map of counters"),
        (lambda b: b["status"].update(runningSeconds=[1]), "map of counters"),
        (lambda b: b["status"].update(runningSecondsAccruedAt="yesterday"), "RFC 3339"),
        (lambda b: b["status"].update(runningSecondsAccruedAt="2030-01-01T00:00:00"),
         "time zone"),
    ],
)
def test_malformed_objects_are_refused(mutate: Any, message: str) -> None:
    b = body({"portal": 1}, T0 + timedelta(seconds=1))
    mutate(b)
    with pytest.raises(InvalidStatus, match=message):
        read_counters(b)


def test_an_object_without_status_has_nothing_to_bill() -> None:
    b = body({}, None)
    del b["status"]
    assert plan_windows(read_counters(b), {}) == []


def test_timestamps_parse_to_utc() -> None:
    assert parse_timestamp("2030-01-01T13:00:00+01:00") == T0
    assert parse_timestamp("2030-01-01t12:00:00z") == T0
    assert parse_timestamp(None) is None
    with pytest.raises(InvalidStatus):
        parse_timestamp(12)
