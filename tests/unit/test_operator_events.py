"""The events the operator posts: events.k8s.io/v1 with a microsecond eventTime (kubectl
describe orders by it), a note within the API's 1 KiB, and what kubectl shows as "From"."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from exocorp import names
from exocorp.operator.events import NOTE_BYTES, event_body, micro_time

pytestmark = pytest.mark.unit

EXOCORP = {"metadata": {"name": "acme", "uid": "u-1", "resourceVersion": "7"}}


def test_event_time_keeps_microseconds_so_one_second_of_events_stays_in_order() -> None:
    first = datetime(2026, 1, 2, 3, 4, 5, 100, tzinfo=UTC)
    second = datetime(2026, 1, 2, 3, 4, 5, 200, tzinfo=UTC)
    assert micro_time(first) == "2026-01-02T03:04:05.000100Z"
    assert micro_time(first) < micro_time(second)


def test_the_body_is_an_events_v1_event_without_second_precision_timestamps() -> None:
    body = event_body(EXOCORP, "Normal", "PhaseChanged", "Draft -> Provisioning",
                      action="Reconcile", now=datetime(2026, 1, 2, tzinfo=UTC),
                      instance="operator-0")
    assert body["apiVersion"] == "events.k8s.io/v1"
    assert body["eventTime"] == "2026-01-02T00:00:00.000000Z"
    assert body["regarding"] == {"apiVersion": names.API_VERSION, "kind": "Exocorp",
                                 "name": "acme", "uid": "u-1", "resourceVersion": "7"}
    assert (body["reportingController"], body["reportingInstance"], body["action"]) == (
        names.MANAGER, "operator-0", "Reconcile")
    assert not {"lastTimestamp", "firstTimestamp", "deprecatedLastTimestamp"} & set(body)
    meta = body["metadata"]
    assert isinstance(meta, dict)
    assert re.fullmatch(r"acme\.[0-9a-f]{19,}", meta["name"])  # time first, then unique


def test_a_long_note_is_cut_to_the_api_limit_in_bytes_not_characters() -> None:
    body = event_body(EXOCORP, "Warning", "InvalidSpec", "é" * 2000, action="Reconcile",
                      now=datetime(2026, 1, 2, tzinfo=UTC), instance="i")
    note = body["note"]
    assert isinstance(note, str)
    assert len(note.encode()) <= NOTE_BYTES
    assert note == "é" * (NOTE_BYTES // 2)
