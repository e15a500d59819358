"""The operator's Prometheus metrics (names documented in docs/monitoring.md)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from exocorp.build_info import register_process_metrics
from exocorp.model import Phase

REGISTRY = CollectorRegistry()
register_process_metrics(REGISTRY, "operator")

RECONCILES = Counter(
    "exocorp_operator_reconciles", "Reconcile passes by result.", ["result"], registry=REGISTRY)
RECONCILE_DURATION = Histogram(
    "exocorp_operator_reconcile_duration_seconds", "Duration of one reconcile pass.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10), registry=REGISTRY)


class PhaseCounts(Collector):
    """``exocorp_exocorps{phase}``, counted from the cache when scraped: counting on every
    watch event would cost a scan of the fleet per event."""

    def __init__(self) -> None:
        self.phases: Callable[[], Iterable[str | None]] = lambda: ()

    def collect(self) -> Iterator[Metric]:
        counts = dict.fromkeys((p.value for p in Phase), 0)
        for phase in self.phases():
            if phase:
                counts[phase] = counts.get(phase, 0) + 1
        family = GaugeMetricFamily("exocorp_exocorps", "Exocorps by display phase.",
                                   labels=["phase"])
        for phase, count in counts.items():
            family.add_metric([phase], count)
        yield family


EXOCORPS = PhaseCounts()
REGISTRY.register(EXOCORPS)
ROLLOUTS_IN_PROGRESS = Gauge(
    "exocorp_operator_rollouts_in_progress", "Revisions rolling out now.", registry=REGISTRY)
ROLLOUTS_QUEUED = Gauge(
    "exocorp_operator_rollouts_queued", "Rollouts waiting for a slot (throttle).",
    registry=REGISTRY)
ROLLBACKS = Counter(
    "exocorp_operator_rollbacks", "Rollbacks started, automatic or asked for.", ["kind"],
    registry=REGISTRY)
REVISIONS_FAILED = Counter(
    "exocorp_operator_revisions_failed", "Revisions whose rollout failed.", registry=REGISTRY)
LAST_WATCH_EVENT = Gauge(
    "exocorp_operator_last_watch_event_timestamp_seconds",
    "Unix time of the last watch event the operator received.", registry=REGISTRY)
CACHE_SWEPT = Counter(
    "exocorp_operator_cache_swept",
    "Cached objects dropped after a relist because they were deleted while a watch was down.",
    registry=REGISTRY)
RECONCILE_LATENCY = Histogram(
    "exocorp_operator_spec_to_observed_seconds",
    "Time from a spec change (lastAction.at) to the operator observing its generation.",
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60), registry=REGISTRY)

for _result in ("success", "error", "conflict"):
    RECONCILES.labels(result=_result)
for _kind in ("automatic", "manual"):
    ROLLBACKS.labels(kind=_kind)
