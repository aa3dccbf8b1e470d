"""An in-memory pool event store for unit tests: the real application class, POPO persistence."""

from __future__ import annotations

from infrastructure.eventstore import PoolEventStore, memory_env


def memory_store(pool_id: str = "pool-test") -> PoolEventStore:
    return PoolEventStore(memory_env(), pool_id=pool_id)
