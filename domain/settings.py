"""The flag values a pool runs with: pool-local ones and cluster-wide ones, one aggregate each.

Only values that differ from the registry default are stored; a flag never set reads as its
default, so declaring a new flag needs no migration.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
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
        # key -> [changed_at, pool where the change was made]: cluster flags merge across
        # pools by last writer wins on this stamp.
        self.stamps: dict[str, list[str]] = {}

    def value_of(self, spec: FlagSpec) -> FlagValue:
        if spec.key in self.values:
            return from_event_value(spec, self.values[spec.key])
        return spec.default

    def change_flag(self, spec: FlagSpec, value: FlagValue) -> bool:
        """Set `spec` to an already validated `value`; False when it already had it."""
        if spec.scope is not self.scope:
            raise ValueError(f"{spec.key} is a {spec.scope} flag, not {self.scope}")
        return self._set(spec, value, (datetime.now(UTC).isoformat(), self.pool_id))

    def adopt_flag(self, spec: FlagSpec, value: FlagValue, stamp: tuple[str, str]) -> bool:
        """A paired pool's change of a cluster flag: taken if it is newer than what we have."""
        if spec.scope is not self.scope or stamp <= self.stamp_of(spec.key):
            return False
        return self._set(spec, value, stamp)

    def _set(self, spec: FlagSpec, value: FlagValue, stamp: tuple[str, str]) -> bool:
        old = self.value_of(spec)
        if old == value:
            return False
        self._flag_changed(
            key=spec.key,
            old_value=to_event_value(spec, old),
            new_value=to_event_value(spec, value),
            changed_at=stamp[0],
            changed_in=stamp[1],
        )
        return True

    def stamp_of(self, key: str) -> tuple[str, str]:
        stamp = getattr(self, "stamps", {}).get(key)
        return (stamp[0], stamp[1]) if stamp else ("", "")

    @event("FlagChanged")
    def _flag_changed(
        self,
        key: str,
        old_value: Any,
        new_value: Any,
        changed_at: str | None = None,
        changed_in: str | None = None,
    ) -> None:
        self.values[key] = new_value
        if not hasattr(self, "stamps"):
            self.stamps = {}  # state from before stamps existed (snapshots, old events)
        self.stamps[key] = [changed_at or "", changed_in or self.pool_id]


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
