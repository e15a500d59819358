"""Billing's metrics: the names the alert rules, the dashboard and docs/monitoring.md use."""

from __future__ import annotations

import pytest
from prometheus_client import generate_latest

from exocorp.billing.metrics import REGISTRY

pytestmark = pytest.mark.unit


def test_metric_names_on_the_billing_registry() -> None:
    text = generate_latest(REGISTRY).decode()
    for name in (
        "exocorp_metering_last_run_timestamp_seconds",
        "exocorp_metering_usage_events_total",
        "exocorp_metering_replica_seconds_total",
        'exocorp_metering_errors_total{reason="lost_race"}',
        'exocorp_metering_errors_total{reason="no_price_book"}',
        "exocorp_metering_leader",
        "exocorp_billing_enforcement_pauses_total",
        "exocorp_billing_enforcement_stops_total",
    ):
        assert f"\n{name} " in f"\n{text}", name
