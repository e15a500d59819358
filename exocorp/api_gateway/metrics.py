"""The gateway's Prometheus metrics, on a registry of its own (names in docs/monitoring.md).

``route`` is the route template (``/api/registry/companies/{id}``), never a raw path, so label
cardinality stays bounded; requests that match no route are counted under ``unmatched``.
"""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest

from exocorp.billing import metrics as billing_metrics
from exocorp.build_info import register_process_metrics

UNMATCHED_ROUTE = "unmatched"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        register_process_metrics(self.registry, "gateway")
        self.requests = Counter(
            "exocorp_gateway_http_requests", "HTTP requests answered.",
            ["method", "route", "status"], registry=self.registry)
        self.duration = Histogram(
            "exocorp_gateway_http_request_duration_seconds", "Time to answer a request.",
            ["method", "route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry)
        self.watch_last_event = Gauge(
            "exocorp_gateway_watch_cache_last_event_timestamp_seconds",
            "Unix time of the last watch event, bookmark or (re)connection of the watch cache.",
            registry=self.registry)
        self.streams_open = Gauge(
            "exocorp_gateway_event_streams_open", "Server-sent event streams open now.",
            registry=self.registry)
        # Each request's children, found once: ``labels()`` costs more than the count itself.
        # Bounded like the label sets: methods are folded, routes are templates.
        self._counts: dict[tuple[str, str, int], Counter] = {}
        self._durations: dict[tuple[str, str], Histogram] = {}

    def observe(self, method: str, route: str, status: int, seconds: float | None) -> None:
        """Count a request; ``seconds`` None (an event stream, open for as long as its client
        wants) stays out of the duration histogram, so latency alerts see requests only."""
        method = method if method in _METHODS else "OTHER"
        count = self._counts.get((method, route, status))
        if count is None:
            count = self._counts[method, route, status] = self.requests.labels(
                method=method, route=route, status=str(status))
        count.inc()
        if seconds is not None:
            duration = self._durations.get((method, route))
            if duration is None:
                duration = self._durations[method, route] = self.duration.labels(
                    method=method, route=route)
            duration.observe(seconds)

    def exposition(self) -> bytes:
        # The metering loop's metrics live on the billing package's registry.
        return generate_latest(self.registry) + generate_latest(billing_metrics.REGISTRY)


def route_label(request: web.Request) -> str:
    """The route template the request matched, or ``unmatched``."""
    match = request.match_info
    route = getattr(match, "route", None)
    resource = getattr(route, "resource", None)
    if resource is None or getattr(match, "http_exception", None) is not None:
        return UNMATCHED_ROUTE
    canonical: str = resource.canonical
    return canonical


def metrics_response(metrics: GatewayMetrics) -> web.Response:
    response = web.Response(body=metrics.exposition())
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


def metrics_app(metrics: GatewayMetrics) -> web.Application:
    """The metrics listener (``--metrics-port``): /metrics alone, apart from the public port,
    whose every path the chart's Ingress routes to the internet."""

    async def scrape(request: web.Request) -> web.Response:
        return metrics_response(metrics)

    app = web.Application()
    app.router.add_get("/metrics", scrape)
    return app
