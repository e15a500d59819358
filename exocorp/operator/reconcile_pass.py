"""The state of one reconcile pass: the exocorp as read, the status being built, the events to
post once it is written; and the pass's clock."""

from __future__ import annotations

from datetime import UTC, datetime

from exocorp.model import (
    ConditionStatus,
    ConditionType,
    Exocorp,
    ExocorpStatus,
    RevisionOutcome,
    RolloutStatus,
    format_timestamp,
    set_condition,
)
from exocorp.model.base import parse_rfc3339_or_none


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


parse_time = parse_rfc3339_or_none


class Pass:
    """State of one reconcile pass."""

    def __init__(self, exo: Exocorp, status: ExocorpStatus, now: datetime, generation: int):
        self.exo = exo
        self.status = status
        self.now = now
        self.generation = generation
        self.events: list[tuple[str, str, str]] = []
        self.failure_reason: str | None = None

    def condition(self, type_: ConditionType, status: ConditionStatus, reason: str,
                  message: str) -> None:
        self.status.conditions = set_condition(
            self.status.conditions, type_, status, reason=reason, message=message, now=self.now,
            observed_generation=self.generation)

    def finish_entry(self, rollout: RolloutStatus, outcome: RevisionOutcome,
                     reason: str | None) -> None:
        rollout.outcome = outcome
        for entry in self.status.history:
            if entry.name == rollout.revision and entry.number == rollout.number:
                entry.outcome = outcome
                entry.finished_at = format_timestamp(self.now)
                if reason:
                    entry.reason = reason[:500]
