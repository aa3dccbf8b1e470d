"""`/metrics` in the Prometheus text format, from a registry private to this app."""

from __future__ import annotations

from collections.abc import Callable, Iterator, MutableMapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from infrastructure.bootstrap import PoolRuntime


class PoolCollector(Collector):
    """Figures read at scrape time: events, projection lag, scheduler, outbox, live clients."""

    def __init__(self, runtime: PoolRuntime, live_clients: Callable[[], int]) -> None:
        self._runtime = runtime
        self._live_clients = live_clients

    def collect(self) -> Iterator[GaugeMetricFamily]:
        pool = self._runtime.pool
        head_position = int(pool.store.recorder.max_notification_id() or 0)
        yield self._gauge(
            "archipel_event_store_head", "Position of the newest stored event", head_position
        )
        yield self._gauge(
            "archipel_events_recorded", "Events recorded in this pool's store", head_position
        )
        lag = GaugeMetricFamily(
            "archipel_projection_lag_events", "Events not yet in each read model", labels=["view"]
        )
        position = GaugeMetricFamily(
            "archipel_projection_position", "Last event applied to each read model", labels=["view"]
        )
        for runner in pool.runners.values():
            at = runner.position()
            position.add_metric([runner.name], at)
            lag.add_metric([runner.name], max(0, head_position - at))
        yield position
        yield lag
        scheduler = self._runtime.scheduler
        yield self._gauge(
            "archipel_scheduler_leader",
            "1 if this process is the pool's scheduler",
            1 if scheduler is not None and scheduler.is_leader else 0,
        )
        with pool.database.connection() as conn:
            row = conn.execute("SELECT count(*) AS n FROM outbox WHERE sent_at IS NULL").fetchone()
        yield self._gauge(
            "archipel_outbox_unsent",
            "Background messages not yet sent",
            int(row["n"]) if row else 0,
        )
        yield self._gauge(
            "archipel_sse_clients",
            "Live SSE clients connected to this process",
            self._live_clients(),
        )

    @staticmethod
    def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
        gauge = GaugeMetricFamily(name, documentation)
        gauge.add_metric([], value)
        return gauge


class HttpMetrics:
    def __init__(self, runtime: PoolRuntime, live_clients: Callable[[], int]) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.requests = Counter(
            "archipel_http_requests",
            "HTTP requests by route and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "archipel_http_request_duration_seconds",
            "HTTP request latency by route",
            ["method", "route"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.registry.register(PoolCollector(runtime, live_clients))

    def observe(self, scope: MutableMapping[str, Any], status: int, seconds: float) -> None:
        route = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        method = str(scope.get("method", ""))
        if template != "/api/stream":  # a stream's duration is its lifetime, not latency
            self.latency.labels(method, template).observe(seconds)
        self.requests.labels(method, template, str(status)).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
