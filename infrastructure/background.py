"""Background work on Dramatiq with a Redis broker: actors, the outbox relay, worker threads."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from infrastructure.database import Database

log = logging.getLogger(__name__)

QUEUE = "archipel"


class Background:
    """One process's view of the background machinery."""

    def __init__(self, redis_url: str, database: Database) -> None:
        self.broker = RedisBroker(url=redis_url, namespace="archipel")  # type: ignore[no-untyped-call]
        # Actors declared elsewhere must never fall back to a default localhost broker.
        dramatiq.set_broker(self.broker)
        self._db = database
        self._actors: dict[str, dramatiq.Actor[Any, Any]] = {}
        self._worker: dramatiq.Worker | None = None

    def register(
        self, name: str, handler: Callable[[dict[str, Any]], Any], max_retries: int = 10
    ) -> None:
        """Declare an actor; `handler` receives the outbox message and must be idempotent."""
        declare = dramatiq.actor(
            actor_name=name,
            queue_name=QUEUE,
            broker=self.broker,
            max_retries=max_retries,
            min_backoff=1000,
            max_backoff=60000,
        )
        self._actors[name] = declare(handler)

    def enqueue(self, name: str, message: dict[str, Any]) -> None:
        """Send a message to an actor directly (periodic work; event-driven work uses the
        outbox)."""
        self._actors[name].send(message)

    def relay(self, *, older_than_seconds: float = 0, limit: int = 200) -> int:
        """Send outbox rows not yet sent; returns how many were sent."""
        event_ids: list[str] = []
        actors: list[str] = []
        with self._db.connection() as conn:
            rows = conn.execute(
                """SELECT event_id, actor, message FROM outbox
                   WHERE sent_at IS NULL AND created_at <= now() - make_interval(secs => %s)
                   ORDER BY position LIMIT %s FOR UPDATE SKIP LOCKED""",
                (older_than_seconds, limit),
            ).fetchall()
            for row in rows:
                actor = self._actors.get(row["actor"])
                if actor is None:
                    log.error("outbox: no actor %s for event %s", row["actor"], row["event_id"])
                    continue
                actor.send(row["message"])
                event_ids.append(row["event_id"])
                actors.append(row["actor"])
            if event_ids:  # (a send that fails rolls back the marks of those sent before it)
                conn.execute(
                    """UPDATE outbox SET sent_at = now(), attempts = attempts + 1
                       WHERE (event_id, actor) IN (SELECT * FROM unnest(%s::text[], %s::text[]))""",
                    (event_ids, actors),
                )
        return len(event_ids)

    def start_worker(self, threads: int = 2) -> None:
        self._worker = dramatiq.Worker(self.broker, queues={QUEUE}, worker_threads=threads)
        self._worker.start()

    def stop_worker(self) -> None:
        if self._worker is not None:
            self._worker.stop(timeout=10_000)
            self._worker = None

    def ping(self) -> bool:
        return bool(self.broker.client.ping())

    def close(self) -> None:
        self.stop_worker()
        self.broker.close()
