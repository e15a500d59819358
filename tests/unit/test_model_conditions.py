"""Condition helpers: lastTransitionTime moves only when the status changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from exocorp.model import (
    ConditionStatus,
    ConditionType,
    Reason,
    condition_is,
    get_condition,
    initial_conditions,
    set_condition,
)

pytestmark = pytest.mark.unit

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)


def test_a_new_condition_is_appended_with_the_current_time() -> None:
    conditions = set_condition(
        [],
        ConditionType.READY,
        ConditionStatus.FALSE,
        reason="ComponentsNotReady",
        now=T0,
        observed_generation=3,
    )
    assert [c.to_wire() for c in conditions] == [
        {
            "type": "Ready",
            "status": "False",
            "reason": "ComponentsNotReady",
            "message": "",
            "lastTransitionTime": "2024-05-01T12:00:00Z",
            "observedGeneration": 3,
        }
    ]


def test_same_status_keeps_the_transition_time_but_updates_the_rest() -> None:
    first = set_condition([], ConditionType.READY, ConditionStatus.FALSE, reason="A", now=T0)
    again = set_condition(
        first,
        ConditionType.READY,
        ConditionStatus.FALSE,
        reason="B",
        message="m",
        now=T1,
        observed_generation=4,
    )
    ready = get_condition(again, ConditionType.READY)
    assert ready is not None
    assert (ready.reason, ready.message, ready.observed_generation) == ("B", "m", 4)
    assert ready.last_transition_time == "2024-05-01T12:00:00Z"


def test_a_status_change_moves_the_transition_time() -> None:
    first = set_condition([], ConditionType.READY, ConditionStatus.FALSE, reason="A", now=T0)
    changed = set_condition(first, ConditionType.READY, ConditionStatus.TRUE, reason="A", now=T1)
    assert changed[0].last_transition_time == "2024-05-01T12:05:00Z"
    assert condition_is(changed, ConditionType.READY, ConditionStatus.TRUE)
    assert not condition_is(changed, ConditionType.STALLED, ConditionStatus.TRUE)


def test_setting_one_condition_keeps_the_order_of_the_others_and_the_input() -> None:
    conditions = initial_conditions(T0, observed_generation=1)
    updated = set_condition(
        conditions, ConditionType.PAUSED, ConditionStatus.TRUE, reason=Reason.PAUSED, now=T1
    )
    assert [c.type for c in updated] == list(ConditionType)
    assert all(c.status is ConditionStatus.UNKNOWN for c in conditions)
    assert get_condition(updated, ConditionType.PAUSED) != get_condition(
        conditions, ConditionType.PAUSED
    )


def test_initial_conditions_are_all_unknown() -> None:
    conditions = initial_conditions(T0)
    assert {c.type for c in conditions} == set(ConditionType)
    assert {c.status for c in conditions} == {ConditionStatus.UNKNOWN}


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        set_condition(
            [], ConditionType.READY, ConditionStatus.TRUE, reason="A", now=datetime(2024, 5, 1)
        )
