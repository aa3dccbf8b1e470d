"""Live worker telemetry in Redis, with a TTL: latency, version, models, in-flight requests.

This is live state, not history: it expires when checks stop, and the status transitions
that matter are recorded as events by the health automation.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

import redis

from application.workers import CheckResult

PREFIX = "archipel:telemetry:"


class RedisTelemetry:
    def __init__(self, client: redis.Redis) -> None:
        self._redis = client

    def record(self, results: Iterable[CheckResult], ttl_seconds: int) -> dict[str, int]:
        """Store each result (keeping slow fields from earlier rounds); returns failure streaks."""
        results = list(results)
        if not results:
            return {}
        keys = [PREFIX + r.worker_id for r in results]
        previous = self._redis.mget(keys)
        streaks: dict[str, int] = {}
        pipe = self._redis.pipeline(transaction=False)
        for key, result, raw in zip(keys, results, previous, strict=True):
            before: dict[str, Any] = json.loads(raw) if raw else {}
            failures = 0 if result.ok else int(before.get("failures", 0)) + 1
            streaks[result.worker_id] = failures
            data = {
                "checked_at": time.time(),
                "ok": result.ok,
                "reason": result.reason,
                "failures": failures,
                "latency_ms": result.latency_ms,
                "version": result.version or before.get("version"),
                "installed": result.installed
                if result.installed is not None
                else before.get("installed", []),
                "loaded": result.loaded if result.ok else [],
                "inflight": result.inflight if result.ok else None,
            }
            pipe.set(key, json.dumps(data), ex=ttl_seconds)
        pipe.execute()
        return streaks

    def read(self, worker_ids: list[str]) -> dict[str, dict[str, Any]]:
        if not worker_ids:
            return {}
        raws = self._redis.mget([PREFIX + wid for wid in worker_ids])
        return {wid: json.loads(raw) for wid, raw in zip(worker_ids, raws, strict=True) if raw}
