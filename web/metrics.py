"""`/metrics` in the Prometheus text format, from a registry private to this app."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from infrastructure.bootstrap import PoolRuntime


class PoolCollector(Collector):
    def __init__(self, runtime: PoolRuntime) -> None:
        self._runtime = runtime

    def collect(self) -> Iterator[GaugeMetricFamily]:
        pool = self._runtime.pool
        head = GaugeMetricFamily("archipel_event_store_head", "Position of the newest stored event")
        head_position = int(pool.store.recorder.max_notification_id() or 0)
        head.add_metric([], head_position)
        yield head
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
        leader = GaugeMetricFamily(
            "archipel_scheduler_leader", "1 if this process is the pool's scheduler"
        )
        scheduler = self._runtime.scheduler
        leader.add_metric([], 1 if scheduler is not None and scheduler.is_leader else 0)
        yield leader
        with pool.database.connection() as conn:
            row = conn.execute("SELECT count(*) AS n FROM outbox WHERE sent_at IS NULL").fetchone()
        unsent = GaugeMetricFamily("archipel_outbox_unsent", "Background messages not yet sent")
        unsent.add_metric([], int(row["n"]) if row else 0)
        yield unsent


def render_metrics(runtime: PoolRuntime) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PoolCollector(runtime))
    return generate_latest(registry)
