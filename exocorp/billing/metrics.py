"""Billing's Prometheus metrics, on a registry of their own that the gateway merges into its
``/metrics`` (names documented in docs/billing.md and docs/monitoring.md)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = [
    "ENFORCEMENT_PAUSES",
    "ENFORCEMENT_STOPS",
    "IS_LEADER",
    "LAST_RUN",
    "METERED_SECONDS",
    "METERING_ERRORS",
    "REGISTRY",
    "USAGE_EVENTS",
]

REGISTRY = CollectorRegistry()

LAST_RUN = Gauge(
    "exocorp_metering_last_run_timestamp_seconds",
    "Unix time the metering loop last finished a run (in the replica holding the lease).",
    registry=REGISTRY,
)
USAGE_EVENTS = Counter(
    "exocorp_metering_usage_events",
    "Usage events the metering loop has written.",
    registry=REGISTRY,
)
METERED_SECONDS = Counter(
    "exocorp_metering_replica_seconds",
    "Replica-seconds of running time turned into usage events.",
    registry=REGISTRY,
)
METERING_ERRORS = Counter(
    "exocorp_metering_errors",
    "Exocorps the metering loop could not meter in a run, by reason (retried next run).",
    ["reason"],
    registry=REGISTRY,
)
IS_LEADER = Gauge(
    "exocorp_metering_leader",
    "1 while this replica holds the metering lease.",
    registry=REGISTRY,
)
ENFORCEMENT_PAUSES = Counter(
    "exocorp_billing_enforcement_pauses",
    "Exocorps paused because their owner's credit ran out.",
    registry=REGISTRY,
)

ENFORCEMENT_STOPS = Counter(
    "exocorp_billing_enforcement_stops",
    "Exocorps stopped because their owner's account stayed suspended beyond the grace period.",
    registry=REGISTRY,
)

for _reason in ("lost_race", "no_record", "no_price_book", "invalid_status", "error"):
    METERING_ERRORS.labels(reason=_reason)
