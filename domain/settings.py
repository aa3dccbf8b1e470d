"""The flag values a pool runs with: pool-local ones and cluster-wide ones, one aggregate each.

Only values that differ from the registry default are stored; a flag never set reads as its
default, so declaring a new flag needs no migration.
"""

from __future__ import annotations

import uuid
from typing import Any

from eventsourcing.domain import event

from domain.aggregate import PoolAggregate
from domain.context import Scope
from domain.flags import FlagSpec, FlagValue, from_event_value, to_event_value

SETTINGS_NAMESPACE = uuid.UUID("6d0e7a2c-3f4b-4c39-9a55-0e3c1f2b8a10")


class FlagSet(PoolAggregate):
    """Shared behaviour of both flag sets; its event topics are stable names in the store."""

    scope = Scope.LOCAL  # overridden by each concrete set

    def _start(self, pool_id: str) -> None:
        self.pool_id = pool_id
        self.values: dict[str, Any] = {}

    def value_of(self, spec: FlagSpec) -> FlagValue:
        if spec.key in self.values:
            return from_event_value(spec, self.values[spec.key])
        return spec.default

    def change_flag(self, spec: FlagSpec, value: FlagValue) -> bool:
        """Set `spec` to an already validated `value`; False when it already had it."""
        if spec.scope is not self.scope:
            raise ValueError(f"{spec.key} is a {spec.scope} flag, not {self.scope}")
        old = self.value_of(spec)
        if old == value:
            return False
        self._flag_changed(
            key=spec.key, old_value=to_event_value(spec, old), new_value=to_event_value(spec, value)
        )
        return True

    @event("FlagChanged")
    def _flag_changed(self, key: str, old_value: Any, new_value: Any) -> None:
        self.values[key] = new_value


class PoolSettings(FlagSet):
    """Flags that belong to this pool alone (sovereign)."""

    scope = Scope.LOCAL

    @event("Created")
    def __init__(self, pool_id: str) -> None:
        self._start(pool_id)

    @staticmethod
    def create_id(pool_id: str) -> uuid.UUID:
        return uuid.uuid5(SETTINGS_NAMESPACE, f"pool-settings:{pool_id}")


class ClusterSettings(FlagSet):
    """Flags every paired pool shares; replicated with signed batches."""

    scope = Scope.REPLICATED

    @event("Created")
    def __init__(self, pool_id: str) -> None:
        self._start(pool_id)

    @staticmethod
    def create_id(pool_id: str) -> uuid.UUID:
        # One cluster settings stream per pool; federation later merges peers' streams.
        return uuid.uuid5(SETTINGS_NAMESPACE, f"cluster-settings:{pool_id}")
