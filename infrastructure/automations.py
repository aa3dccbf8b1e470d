"""The background automations' actors, and the health-check round they run."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from application.workers import verdict
from projections.workers import list_workers

if TYPE_CHECKING:
    from infrastructure.bootstrap import Pool

log = logging.getLogger(__name__)

ROUND_LOCK = "archipel:health:round"
TELEMETRY_VIEW = "telemetry"


def register_actors(pool: Pool) -> None:
    background = pool.background

    def announce_flag_change(message: dict[str, Any]) -> None:
        pool.notifier.announce_flag_change(message["payload"], message["meta"])

    def check_workers(message: dict[str, Any]) -> None:
        run_health_round(pool)

    background.register("announce_flag_change", announce_flag_change)
    background.register("check_workers", check_workers)


def run_health_round(pool: Pool) -> int:
    """Check every registered worker once; returns how many were checked.

    Rounds never overlap (a Redis lock): if one is still running when the next is due, the
    next is skipped rather than piled up.
    """
    interval = pool.settings.int_value("workers.health_check_interval_seconds")
    if not pool.redis.set(ROUND_LOCK, "1", nx=True, ex=max(10, interval * 3)):
        return 0
    try:
        with pool.database.connection() as conn:
            rows = list_workers(conn)
        results = pool.health_checker().check([(str(r["id"]), r["url"]) for r in rows])
        streaks = pool.telemetry.record(results, ttl_seconds=max(30, interval * 3))
        known = {str(row["id"]): row["status"] for row in rows}
        for result in results:
            decision = verdict(result, streaks.get(result.worker_id, 0))
            if decision is not None and decision[0].value != known.get(result.worker_id):
                pool.health.apply(result, streaks.get(result.worker_id, 0))
        head = int(pool.store.recorder.max_notification_id() or 0)
        pool.redis.publish(
            "archipel:changes", json.dumps([{"view": TELEMETRY_VIEW, "key": "*", "position": head}])
        )
        return len(results)
    finally:
        pool.redis.delete(ROUND_LOCK)
